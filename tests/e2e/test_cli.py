"""The ``eas`` command as a user runs it: ``eas up`` in one process, uploads from another."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys

import pytest

from eas_runtime import devservers
from eas_runtime.settings import PROJECT_ROOT
from tests.e2e.helpers import wait_for

SAMPLE = PROJECT_ROOT / "functions" / "ingest_external_lcs" / "sample" / "lcsg_example.csv"
EAS = [sys.executable, "-m", "eas_runtime.cli"]


@pytest.fixture
def eas_env(tmp_path):
    env = dict(os.environ, EAS_HOME=str(tmp_path / "home"), EAS_GATEWAY_PORT=str(devservers.free_port()),
               EAS_INDEX_PORT=str(devservers.free_port()), EAS_ADAPTER_PORT=str(devservers.free_port()),
               EAS_RECONCILE_S="2")
    return env


def run(env, *args, check=True) -> subprocess.CompletedProcess:
    return subprocess.run([*EAS, *args], env=env, capture_output=True, text=True, timeout=120, check=check,
                          cwd=PROJECT_ROOT)


def test_eas_up_processes_an_upload_with_no_other_command(eas_env, tmp_path):
    run(eas_env, "watch", "add", "--prefix", "inbox/")
    up = subprocess.Popen([*EAS, "up"], env=eas_env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                          text=True, cwd=PROJECT_ROOT)
    try:
        wait_for(lambda: "EAS is up" in (up.stdout.readline() or ""), timeout_s=60, what="eas up")
        out = run(eas_env, "upload", str(SAMPLE)).stdout
        assert "inbox/lcsg_example.csv" in out

        def finished():
            status = json.loads(run(eas_env, "status", "--json").stdout)
            ended = status["tasks"]["done"] + status["tasks"]["failed"]
            return status if ended == 4 else None
        status = wait_for(finished, timeout_s=300, interval_s=1, what="the upload to be processed")
        assert status["tasks"]["done"] == 4          # the standard path, the default of watch add
        assert set(status["by_type"]) == {"ingest_external_lcs", "detrend", "planet_search", "vetting"}
        listed = json.loads(run(eas_env, "watch", "list", "--json").stdout)
        assert listed[0]["prefix"] == "inbox/"
    finally:
        up.send_signal(signal.SIGTERM)
        up.wait(timeout=60)


def test_submit_dry_run_counts_tasks(eas_env, tmp_path):
    job = tmp_path / "job.json"
    job.write_text(json.dumps({"job_name": "j", "task_list": [
        {"task": "null"}, {"task": "execution_chain", "task_list": [{"task": "null"}, {"task": "verify",
                                                                     "inputs": {"lightcurve": "x.fits"}}]}]}))
    out = json.loads(run(eas_env, "submit", "--dry-run", "--json", str(job)).stdout)
    assert out["task_counts"] == {"null": 2, "verify": 1}


def test_bad_job_file_is_a_clear_error(eas_env, tmp_path):
    job = tmp_path / "job.json"
    job.write_text(json.dumps({"task_list": [{"task": "null", "outputs": {"x": 3}}]}))
    result = run(eas_env, "submit", str(job), check=False)
    assert result.returncode == 2
    assert "task_list[0].outputs.x" in result.stderr


def test_upload_of_a_missing_file_is_a_clear_error(eas_env):
    result = run(eas_env, "upload", "/no/such/file.fits", check=False)
    assert result.returncode == 2 and "no such file: /no/such/file.fits" in result.stderr
