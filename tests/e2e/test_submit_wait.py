"""``eas submit`` prints the job id once eas-control accepted it, and ``eas submit --wait``
follows the job to its end and prints its results (issue 14: the job id was not printed, and
nothing followed a job). Real processes: an embedded runtime, ``eas`` as a subprocess."""
from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import uuid

import pytest

from eas_runtime.embedded import EmbeddedRuntime
from eas_runtime.settings import PROJECT_ROOT
from tests.e2e.helpers import embedded_settings

pytestmark = pytest.mark.timeout(300)

LOOP = {"task": "execution_for_loop", "parameter": "size", "values": [1, 2, 3], "task_list": [{"task": "null"}]}


@pytest.fixture(scope="module")
def runtime(tmp_path_factory):
    started = EmbeddedRuntime(embedded_settings(tmp_path_factory.mktemp("wait"))).start()
    yield started
    started.stop()


def submit(runtime, tmp_path, spec, *flags) -> subprocess.CompletedProcess:
    job = tmp_path / f"job-{uuid.uuid4().hex[:8]}.json"
    job.write_text(json.dumps(spec))
    env = {k: v for k, v in os.environ.items() if not k.startswith("EAS_")}
    env["PYTHONPATH"] = str(PROJECT_ROOT)
    return subprocess.run([sys.executable, "-m", "eas_runtime.cli", "--home", str(runtime.settings.home_path),
                           "--broker-url", runtime.broker_url, "submit", *flags, str(job)],
                          capture_output=True, text=True, env=env, timeout=240)


def job_id(done: subprocess.CompletedProcess) -> int:
    return int(re.search(r" as job (\d+) ", done.stdout).group(1))


def test_submit_prints_the_job_id_eas_control_gave(runtime, tmp_path):
    done = submit(runtime, tmp_path, {"job_name": "id", "task_list": [{"task": "null"}]})
    assert done.returncode == 0, done
    listed = subprocess.run([sys.executable, "-m", "eas_runtime.cli", "--home", str(runtime.settings.home_path),
                             "jobs", "--json"], capture_output=True, text=True, timeout=60)
    names = {j["job_id"]: j["name"] for j in json.loads(listed.stdout)["items"]}
    assert names[job_id(done)] == "id"


def test_wait_follows_the_job_and_ends_with_its_results(runtime, tmp_path):
    done = submit(runtime, tmp_path, {"job_name": "grid", "task_list": [LOOP]}, "--wait")
    assert done.returncode == 0, done
    job = job_id(done)
    out = done.stdout.splitlines()
    progress = [line for line in out if line.startswith(f"job {job}: ")]
    assert progress and progress[-1].startswith(f"job {job}: 7/7 done, 0 failed, 0 running, 0 waiting")
    assert progress[-1].endswith("finished")
    table = out[out.index("null (3 tasks)") + 1:]
    assert table[0].split()[:2] == ["task_id", "state"] and table[0].split()[2].endswith("size")
    assert [row.split()[1:3] for row in table[1:4]] == [["done", "1"], ["done", "2"], ["done", "3"]]


def test_wait_exits_4_when_a_task_failed_and_says_where_the_errors_are(runtime, tmp_path):
    spec = {"job_name": "fails", "task_list": [{"task": "null"}, {"task": "error", "name": "boom"}]}
    done = submit(runtime, tmp_path, spec, "--wait")
    assert done.returncode == 4, done
    job = job_id(done)
    assert f"job {job}: 1 failed, 0 cancelled; the errors: eas errors --job {job}" in done.stdout
    assert "error (1 tasks)" in done.stdout and "failed" in done.stdout.split("error (1 tasks)")[1]


def test_wait_gives_up_after_its_timeout_and_the_job_goes_on(runtime, tmp_path):
    spec = {"job_name": "waits", "working_directory": f"w-{uuid.uuid4().hex[:6]}", "task_list": [
        {"task": "null", "inputs": {"x": "never.json"}, "wait_for_upload": True}]}
    done = submit(runtime, tmp_path, spec, "--wait", "--wait-timeout", "2")
    assert done.returncode == 3, done
    job = job_id(done)
    assert f"job {job} has not ended after 2 s; it goes on: eas progress --job {job}" in done.stderr
    assert "Traceback" not in done.stderr


@pytest.mark.parametrize("flag, value", [("--wait-timeout", "-1"), ("--wait-timeout", "nan"),
                                         ("--verdict-timeout", "soon")])
def test_bad_timeouts_are_refused_by_name(runtime, tmp_path, flag, value):
    done = submit(runtime, tmp_path, {"task_list": [{"task": "null"}]}, flag, value)
    assert done.returncode == 2 and flag in done.stderr and "must be a number of seconds" in done.stderr
    assert "Traceback" not in done.stderr
