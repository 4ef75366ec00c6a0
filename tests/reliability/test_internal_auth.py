"""Defect 11: no authentication inside.

Any local process could post to the embedded broker ingress, to eas-control or to a function
replica: submit jobs without ``EAS_API_TOKEN``, forge ``task.finished``. Now the embedded runtime
demands its per-installation token (``$EAS_HOME/internal-token``, mode 0600) on all three, and
everything internal sends it. Each test runs against a real embedded runtime (its own processes
and ports), except the one about the token file, which needs none.
"""
from __future__ import annotations

import os
import stat
import subprocess
import sys
import uuid

import pytest
import requests
from sqlalchemy import func, select

from eas_runtime import events, internal_auth
from eas_runtime.db.models import DONE, Attempt, DeadLetter, Delivery, Job, Task
from eas_runtime.embedded import EmbeddedRuntime
from eas_runtime.settings import PROJECT_ROOT, Settings, SettingsError
from tests.e2e.helpers import embedded_settings, settled, wait_for

SAMPLE = PROJECT_ROOT / "functions" / "ingest_external_lcs" / "sample" / "lcsg_example.csv"
API_TOKEN = "site-api-token"


def _snapshot(runtime) -> dict:
    """What a forged event could change: jobs, tasks, attempts, deliveries, dead letters."""
    with runtime.db.read() as s:
        return {
            "jobs": s.scalar(select(func.count()).select_from(Job)),
            "tasks": sorted(s.execute(select(Task.id, Task.state)).all()),
            "attempts": sorted(s.execute(select(Attempt.id, Attempt.state)).all()),
            # the reconcile tick adds a delivery every second: count the others
            "deliveries": s.scalar(select(func.count()).select_from(Delivery).where(
                Delivery.event_type.not_in((events.PING, events.RECONCILE)))),
            "dead_letters": s.scalar(select(func.count()).select_from(DeadLetter)),
        }


def _post(url: str, event, token: str | None = None) -> requests.Response:
    headers, body = events.to_http(event)
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    return requests.post(url, headers=headers, data=body, timeout=30)


def _assert_refused(answer: requests.Response, status: int) -> None:
    assert answer.status_code == status, (answer.status_code, answer.text)
    assert answer.headers["WWW-Authenticate"].startswith("Bearer")
    assert len(answer.text.strip().splitlines()) == 1 and "internal token" in answer.text


def _job_event(name: str):
    return events.make_event(events.JOB_SUBMITTED, "/test/intruder",
                             {"job_name": name, "task_list": [{"task": "null"}]}, id=uuid.uuid4().hex)


@pytest.mark.timeout(180)
def test_defect_11_ingress_refuses_events_without_the_internal_token(runtime):
    token_file = runtime.settings.home_path / "internal-token"
    assert stat.S_IMODE(token_file.stat().st_mode) == 0o600
    assert runtime.settings.internal_token == token_file.read_text().strip()
    assert len(runtime.settings.internal_token) >= 43                # 32 random bytes
    before = _snapshot(runtime)

    _assert_refused(_post(runtime.broker_url, _job_event("no token")), 401)
    _assert_refused(_post(runtime.broker_url, _job_event("wrong token"), "x" * 43), 403)
    assert _snapshot(runtime) == before                               # nothing stored
    assert requests.get(runtime.broker_url.rsplit("/", 2)[0] + "/healthz", timeout=30).status_code == 200

    # The same event with the token goes through: the refusal was the token's, not the event's.
    accepted = _post(runtime.broker_url, _job_event("with token"), runtime.settings.internal_token)
    assert accepted.status_code == 202, accepted.text
    wait_for(lambda: _snapshot(runtime)["jobs"] == before["jobs"] + 1, timeout_s=60, what="the job")


@pytest.mark.timeout(240)
def test_defect_11_forged_events_to_control_and_replicas_are_refused(runtime):
    events.send(_job_event("real"), runtime.broker_url, token=runtime.settings.internal_token)
    wait_for(settled(runtime.db, expected_tasks=1), timeout_s=120, what="the real job")
    with runtime.db.read() as s:
        task_id, attempt_id, job_id = s.execute(select(Attempt.task_id, Attempt.id, Task.job_id)
                                                .join(Task, Task.id == Attempt.task_id)).one()
    ports = {svc["name"]: [r["port"] for r in svc["replicas"]] for svc in runtime.serving.status()}
    control = f"http://127.0.0.1:{ports['eas-control'][0]}"
    replica = f"http://127.0.0.1:{ports['eas-null'][0]}"             # still up: idle_s is 120 s
    forged_finish = events.make_event(
        events.TASK_FINISHED, "/eas/functions/null",
        {"task_id": task_id, "attempt_id": attempt_id + 1, "job_id": job_id, "task_type": "null",
         "state": DONE, "error_kind": "", "outputs": []},
        id=uuid.uuid4().hex, tasktype="null", jobid=job_id, taskid=task_id, attemptid=attempt_id + 1)
    forged_ready = events.make_event(events.TASK_READY, "/eas/control", {}, id=uuid.uuid4().hex,
                                     tasktype="null", jobid=job_id, taskid=task_id, attemptid=attempt_id)
    before = _snapshot(runtime)

    _assert_refused(_post(control + "/", forged_finish), 401)
    _assert_refused(_post(control + "/", _job_event("straight to control")), 401)
    _assert_refused(_post(control + "/dead-letter", forged_finish), 401)
    _assert_refused(_post(control + "/", forged_finish, "wrong"), 403)
    _assert_refused(_post(replica + "/", forged_finish), 401)
    _assert_refused(_post(replica + "/", forged_ready), 401)
    _assert_refused(_post(replica + "/", forged_ready, "wrong"), 403)
    assert requests.get(control + "/healthz", timeout=30).status_code == 200
    # Without the token check, control would have made a job and the replica recorded a dead
    # letter for the task.finished it does not serve.
    assert _snapshot(runtime) == before


@pytest.mark.timeout(300)
def test_defect_11_pipeline_carries_the_token_end_to_end(make_runtime, tmp_path):
    runtime = make_runtime(api_token=API_TOKEN)
    with runtime.db.session() as s:
        from eas_runtime.db.models import WatchRule
        s.add(WatchRule(prefix="inbox/", task_types=["ingest_external_lcs", "verify"]))
    # `eas upload` in a process of its own, with only --home: it reads the token file.
    env = {k: v for k, v in os.environ.items() if not k.startswith("EAS_")}
    env["PYTHONPATH"] = os.pathsep.join([str(PROJECT_ROOT), env.get("PYTHONPATH", "")])
    upload = subprocess.run([sys.executable, "-m", "eas_runtime.cli", "--home", str(runtime.settings.home_path),
                             "--broker-url", runtime.broker_url, "upload", "--key", "inbox/star.csv", str(SAMPLE)],
                            env=env, capture_output=True, text=True, timeout=120)
    assert upload.returncode == 0, upload.stderr
    # The site posts job.submitted to the broker with the token too.
    answer = requests.post(runtime.index_url + "api/jobs", json={"job_name": "from the site", "task_list": [
        {"task": "null"}]}, headers={"Authorization": f"Bearer {API_TOKEN}"}, timeout=60)
    assert answer.status_code == 202, answer.text

    wait_for(settled(runtime.db, expected_tasks=3), timeout_s=240, what="the upload's job and the site's job")
    with runtime.db.read() as s:
        states = s.execute(select(Task.task_type, Task.state)).all()
        dead = s.scalars(select(DeadLetter.reason)).all()
        refused = s.scalar(select(func.count()).select_from(Delivery).where(Delivery.state != "delivered"))
    assert sorted(states) == [("ingest_external_lcs", DONE), ("null", DONE), ("verify", DONE)], (states, dead)
    assert not dead and not refused


def test_defect_11_token_file_is_private_and_a_readable_one_is_refused(tmp_path):
    home = tmp_path / "home"
    runtime = EmbeddedRuntime(embedded_settings(tmp_path, home=str(home)))      # made on first use
    token_file = home / "internal-token"
    assert stat.S_IMODE(token_file.stat().st_mode) == 0o600
    runtime.db.dispose()
    assert Settings.load(environ={}, home=str(home)).internal_token == runtime.settings.internal_token
    assert Settings.load(environ={"EAS_INTERNAL_TOKEN": "from-env"}, home=str(home)).internal_token == "from-env"
    assert internal_auth.ensure_token(home) == runtime.settings.internal_token   # kept, not replaced

    token_file.chmod(0o640)
    with pytest.raises(SettingsError, match="chmod 600") as refused:
        Settings.load(environ={}, home=str(home))
    assert str(token_file) in str(refused.value) and "0640" in str(refused.value)
    with pytest.raises(SettingsError, match="chmod 600"):
        EmbeddedRuntime(Settings(home=str(home)))
    status = subprocess.run([sys.executable, "-m", "eas_runtime.cli", "--home", str(home), "status"],
                            env={**{k: v for k, v in os.environ.items() if not k.startswith("EAS_")},
                                 "PYTHONPATH": str(PROJECT_ROOT)}, capture_output=True, text=True, timeout=120)
    assert status.returncode == 2 and "chmod 600" in status.stderr and "Traceback" not in status.stderr
    assert Settings.load(environ={}, home=str(tmp_path / "none")).internal_token == ""   # nothing demanded
