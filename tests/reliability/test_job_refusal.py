"""Issue 11, defect 10: jobs that can never finish are refused, wherever they come from.

A task type no function serves, or outputs another job already plans, used to be accepted
(``eas submit`` exit 0, ``POST /api/jobs`` 202) and then queued forever or dropped as a dead
letter. Here every front runs against a real embedded runtime (broker, eas-control, index site
as processes): ``eas submit`` and ``eas submit --dry-run`` as subprocesses, ``POST /api/jobs``
over HTTP, and ``job.submitted`` events posted to the broker, each delivered twice.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid

import pytest
import requests
from sqlalchemy import func, select

from eas_runtime import events
from eas_runtime.db.models import Delivery, Job
from eas_runtime.embedded import EmbeddedRuntime
from eas_runtime.settings import PROJECT_ROOT
from tests.e2e.helpers import embedded_settings, wait_for
from tests.integration.conftest import postgres_server, postgres_url  # noqa: F401 - fixtures

TOKEN = "refusal-token"
TYPO = {"job_name": "typo", "task_list": [{"task": "null"}, {"task": "verfy", "name": "v"}]}

pytestmark = pytest.mark.timeout(300)


@pytest.fixture(scope="module")
def runtime(tmp_path_factory):
    started = EmbeddedRuntime(embedded_settings(tmp_path_factory.mktemp("refusal"), api_token=TOKEN)).start()
    wait_for(lambda: _healthy(started.index_url), timeout_s=60, what="the index site")
    yield started
    started.stop()


def _healthy(url: str) -> bool:
    try:
        return requests.get(url + "healthz", timeout=2).status_code == 200
    except requests.RequestException:
        return False


def eas(runtime, tmp_path, *argv, spec=None, env=None) -> subprocess.CompletedProcess:
    """``eas --home ... --broker-url ... <argv> [job file]`` as a real process."""
    if spec is not None:
        job = tmp_path / f"job-{uuid.uuid4().hex[:8]}.json"
        job.write_text(json.dumps(spec))
        argv = (*argv, str(job))
    clean = {k: v for k, v in os.environ.items() if not k.startswith("EAS_")}
    clean.update(PYTHONPATH=str(PROJECT_ROOT), **(env or {}))
    return subprocess.run([sys.executable, "-m", "eas_runtime.cli", "--home", str(runtime.settings.home_path),
                           "--broker-url", runtime.broker_url, *argv], capture_output=True, text=True,
                          env=clean, timeout=120)


def post_job(runtime, spec) -> requests.Response:
    return requests.post(runtime.index_url + "api/jobs", json=spec, timeout=30,
                         headers={"Authorization": f"Bearer {TOKEN}"})


def jobs_count(runtime) -> int:
    with runtime.db.read() as s:
        return s.scalar(select(func.count()).select_from(Job))


def assert_one_line_refusal(done: subprocess.CompletedProcess, *words: str, lines: int = 1) -> None:
    assert done.returncode == 2, done
    assert "Traceback" not in done.stderr and done.stderr.count("\n") == lines, done.stderr
    last = done.stderr.splitlines()[-1]
    for word in words:
        assert word in last, done.stderr


def test_defect_10_unknown_task_type_is_refused_by_every_front(runtime, tmp_path):
    before = jobs_count(runtime)
    answer = post_job(runtime, TYPO)
    assert answer.status_code == 400
    message = answer.json()["error"]
    assert "task_list[1].task" in message and "'verfy'" in message and "did you mean 'verify'" in message
    for argv in (("submit",), ("submit", "--dry-run"), ("submit", "--dry-run", "--json")):
        done = eas(runtime, tmp_path, *argv, spec=TYPO)
        assert_one_line_refusal(done, "task_list[1].task", "no function serves task type 'verfy'",
                                "transit_search_tls")
        assert done.stdout == ""
    assert jobs_count(runtime) == before                 # nothing was sent
    # Without the broker configuration here the command cannot tell; eas-control can, and the
    # command waits for its verdict instead of printing success.
    done = eas(runtime, tmp_path, "submit", spec=TYPO, env={"EAS_BROKER_CONFIG_DIR": str(tmp_path / "none")})
    assert "WARNING" in done.stderr and "no task.ready Triggers under" in done.stderr     # it says so
    assert_one_line_refusal(done, "refused by eas-control", "task_list[1].task", "'verfy'", lines=2)
    assert jobs_count(runtime) == before + 1


def test_defect_10_clashing_outputs_are_refused_by_every_front(runtime, tmp_path):
    # The first job plans clash/out.json; its task waits for an upload that never comes.
    first = {"job_name": "first", "working_directory": "clash", "task_list": [
        {"task": "null", "inputs": {"x": "never.json"}, "outputs": {"y": "out.json"}, "wait_for_upload": True}]}
    done = eas(runtime, tmp_path, "submit", spec=first)
    assert done.returncode == 0 and " as job " in done.stdout, done
    first_id = int(done.stdout.split(" as job ")[1].split()[0])
    second = {"job_name": "second", "working_directory": "clash", "task_list": [
        {"task": "null"}, {"task": "null", "name": "late", "outputs": {"z": "out.json"}}]}
    clash = ["task_list[1]", "'clash/out.json'", f"of job {first_id} ('first')"]
    answer = post_job(runtime, second)
    assert answer.status_code == 409 and all(w in answer.json()["error"] for w in clash), answer.text
    before = jobs_count(runtime)
    for argv in (("submit",), ("submit", "--dry-run"), ("submit", "--dry-run", "--json")):
        assert_one_line_refusal(eas(runtime, tmp_path, *argv, spec=second), *clash)
    assert jobs_count(runtime) == before
    corrected = {**second, "working_directory": "clash-2"}
    assert post_job(runtime, corrected).status_code == 202


def test_defect_10_refused_events_are_rejected_jobs_listed_once(runtime, tmp_path):
    clashing = {"job_name": "clashing", "working_directory": "taken", "task_list": [
        {"task": "null", "inputs": {"x": "never.json"}, "outputs": {"y": "a.json"}, "wait_for_upload": True},
        {"task": "null", "name": "b"}]}
    assert eas(runtime, tmp_path, "submit", spec=clashing).returncode == 0
    again = {**clashing, "job_name": "clashing again"}
    sent = {}
    for name, spec in (("typo", TYPO), ("clash", again)):
        event = events.make_event(events.JOB_SUBMITTED, "/test/curl", spec, id=uuid.uuid4().hex)
        for _ in range(2):                               # a duplicate delivery
            events.send(event, runtime.broker_url, token=runtime.settings.internal_token)
        sent[name] = event

    def delivered_twice() -> bool:
        with runtime.db.read() as s:
            return all(s.scalar(select(func.count()).select_from(Delivery).where(
                Delivery.event_key == f"/test/curl#{e['id']}", Delivery.trigger == "eas-control-jobs",
                Delivery.state == "delivered")) == 2 for e in sent.values())
    wait_for(delivered_twice, timeout_s=60, what="both deliveries of both events")
    with runtime.db.read() as s:
        rows = {name: s.execute(select(Job.id, Job.rejection).where(
            Job.source_event == f"/test/curl {e['id']}")).all() for name, e in sent.items()}
    assert [len(r) for r in rows.values()] == [1, 1]     # once, though delivered twice
    (typo_id, typo_reason), (clash_id, clash_reason) = rows["typo"][0], rows["clash"][0]
    assert "task_list[1].task" in typo_reason and "'verfy'" in typo_reason
    assert "task_list[0]" in clash_reason and "'taken/a.json'" in clash_reason

    listing = eas(runtime, tmp_path, "jobs")
    assert listing.returncode == 0, listing
    assert f"job {typo_id} rejected: task_list[1].task: no function serves task type 'verfy'" in listing.stdout
    assert f"job {clash_id} rejected: task_list[0]: output 'taken/a.json' is already planned" in listing.stdout
    items = {j["job_id"]: j for j in requests.get(runtime.index_url + "api/jobs", timeout=30).json()["items"]}
    assert items[typo_id]["rejected"] == typo_reason and items[typo_id]["total"] == 0
    assert items[clash_id]["rejected"] == clash_reason
    page = requests.get(runtime.index_url + "jobs", timeout=30).text
    assert page.count(">rejected</span>") >= 2 and "no function serves task type &#39;verfy&#39;" in page
    one = requests.get(runtime.index_url + f"api/jobs/{typo_id}", timeout=30).json()
    assert one["rejected"] == typo_reason

    # A rejected job blocks nothing: the corrected job, a new event, is accepted.
    fixed = events.make_event(events.JOB_SUBMITTED, "/test/curl", {**TYPO, "task_list": [{"task": "null"}]},
                              id=uuid.uuid4().hex)
    events.send(fixed, runtime.broker_url, token=runtime.settings.internal_token)
    found = wait_for(lambda: _job(runtime, f"/test/curl {fixed['id']}"), timeout_s=60, what="the corrected job")
    assert found.rejection is None


def _job(runtime, source_event: str):
    with runtime.db.read() as s:
        return s.execute(select(Job.id, Job.rejection).where(Job.source_event == source_event)).first()


@pytest.mark.postgres
def test_defect_10_rejected_jobs_on_postgresql(settings, postgres_url, event_log, resources):  # noqa: F811
    """The migration and the rejected rows on PostgreSQL, whose JSON refuses NaN: a refused
    description that is not strict JSON is kept as a note instead."""
    from eas_runtime.control import Control
    from eas_runtime.db.session import Database
    from eas_runtime.resources import Resources
    db = Database(postgres_url)
    db.create_schema()
    try:
        control = Control(Resources(settings, send=event_log, store=resources.store, db=db))
        odd = {"job_name": "odd", "task_list": [{"task": "nope", "x": float("nan")}]}
        for spec in (TYPO, odd):
            event = events.make_event(events.JOB_SUBMITTED, "/test/pg", spec, id=uuid.uuid4().hex)
            first, second = control.handle(event), control.handle(event)
            assert first["rejected"] == second["rejected"] and first["job_id"] == second["job_id"]
        with db.read() as s:
            rows = s.execute(select(Job.name, Job.rejection, Job.spec).where(Job.rejection.is_not(None))
                             .order_by(Job.id)).all()
        assert [r.name for r in rows] == ["typo", "odd"]
        assert "'verfy'" in rows[0].rejection and rows[0].spec == TYPO
        assert "not a finite number" in rows[1].rejection and "not_kept" in rows[1].spec
    finally:
        db.dispose()


def test_defect_10_watch_rule_naming_an_unserved_type_is_refused(tmp_path):
    """`eas watch add --tasks` with a type no function serves is refused (exit 2, one line)."""
    env = {**os.environ, "EAS_HOME": str(tmp_path / "home")}
    done = subprocess.run([sys.executable, "-m", "eas_runtime.cli", "watch", "add", "--prefix", "inbox/",
                           "--tasks", "ingest_external_lcs,verfy"], capture_output=True, text=True, env=env)
    assert done.returncode == 2, done
    assert "no function serves task type 'verfy'" in done.stderr and "did you mean 'verify'" in done.stderr
    assert "Traceback" not in done.stderr and len(done.stderr.strip().splitlines()) == 1
