"""eas-control's handlers, called directly (the HTTP face is tested end to end elsewhere)."""
from __future__ import annotations

import datetime as dt

import pytest

from sqlalchemy import func, select, update

from eas_runtime import events
from eas_runtime.control import Control, scheduler
from eas_runtime.db.models import (A_FINISHED, A_RUNNING, DONE, FAILED, Attempt, DeadLetter, Job,
                                   ProductVersion, Task, TaskOutput, WatchRule, utcnow)
from eas_runtime.db.products import ensure_product
from eas_runtime.store.base import product_created_event


def _upload(resources, key: str, data: bytes = b"1,2,0\n") -> object:
    """Put an object without notifying, and return its product.created event."""
    resources.store.notify = None
    info = resources.store.put_bytes(key, data)
    return product_created_event(info, sequencer=info.version_id)


def _finish(resources, ready: scheduler.Ready, *, passed=True, outputs=()) -> None:
    """Play the part of a function: finish an attempt with QC-passed outputs."""
    with resources.db.session() as s:
        for key in outputs:
            s.add(ProductVersion(product_id=ensure_product(s, key, generator_task_id=ready.task_id).id,
                                 attempt_id=ready.attempt_id, passed_qc=passed))
        s.execute(update(Attempt).where(Attempt.id == ready.attempt_id).values(state=A_FINISHED))
        s.execute(update(Task).where(Task.id == ready.task_id).values(state=DONE if passed else FAILED))


def _first_task(resources, event_log, upload_key: str, task_types: list[str]):
    """A watch rule over ``inbox/`` with ``task_types``, an upload of ``upload_key`` handled by a
    new Control: (control, the claimed first task, the object key of its declared output)."""
    with resources.db.session() as s:
        s.add(WatchRule(prefix="inbox/", task_types=task_types))
    control = Control(resources)
    control.handle(_upload(resources, upload_key))
    first = event_log.of_type("task.ready")[0]
    ready = scheduler.Ready(int(first["taskid"]), int(first["attemptid"]), first["tasktype"], int(first["jobid"]))
    with resources.db.read() as s:
        key = s.scalar(select(TaskOutput.key).where(TaskOutput.task_id == ready.task_id))
    return control, ready, key


def test_upload_under_watched_prefix_creates_a_job_and_claims_its_first_task(resources, event_log):
    with resources.db.session() as s:
        s.add(WatchRule(prefix="inbox/", task_types=["ingest_external_lcs", "verify", "transit_search_bls_reference"]))
    control = Control(resources)
    event = _upload(resources, "inbox/star1.csv")
    summary = control.handle(event)
    assert summary["jobs"] == 1 and summary["claimed"] == 1
    ready = event_log.of_type("task.ready")
    assert [e["tasktype"] for e in ready] == ["ingest_external_lcs"]
    # the same notification again (MinIO retries, the broker redelivers): nothing new
    again = control.handle(event)
    assert again["jobs"] == 0 and again["claimed"] == 0
    assert len(event_log.of_type("task.ready")) == 1
    with resources.db.read() as s:
        assert s.scalar(select(func.count()).select_from(Job)) == 1
        tasks = s.scalars(select(Task).order_by(Task.id)).all()
        assert [t.task_type for t in tasks] == ["ingest_external_lcs", "verify", "transit_search_bls_reference"]
        assert [t.state for t in tasks] == ["queued", "waiting", "waiting"]


def test_chain_advances_when_outputs_pass_qc(resources, event_log):
    control, ready, key = _first_task(resources, event_log, "inbox/star2.csv",
                                      ["ingest_external_lcs", "verify", "transit_search_bls_reference"])
    _finish(resources, ready, outputs=[key])
    end = events.make_event(events.TASK_FINISHED, "/test", {}, id="f1", taskid=ready.task_id)
    assert control.handle(end)["claimed"] == 2          # verify and the search both read the light curve
    assert sorted(e["tasktype"] for e in event_log.of_type("task.ready")[1:]) == [
        "transit_search_bls_reference", "verify"]
    assert control.handle(end)["claimed"] == 0          # duplicate task.finished: no-op


def test_a_declared_output_is_scheduled_by_its_task_end_not_by_its_product_event(resources, event_log):
    """The product.created of a declared output only checks the claim: the version is recorded
    with the attempt's end, whose task.finished schedules the readers (one schedule per task,
    not two). An output in the task's folder that nobody declared is still scheduled from its
    event (a later job may read it), and a forged claim is still refused."""
    control, ready, key = _first_task(resources, event_log, "inbox/star4.csv", ["ingest_external_lcs", "verify"])
    with resources.db.session() as s:
        folder = s.get(Task, ready.task_id).working_directory.rstrip("/")
        s.execute(update(Attempt).where(Attempt.id == ready.attempt_id).values(state=A_RUNNING))
    meta = {"eas-task-id": str(ready.task_id), "eas-attempt-id": str(ready.attempt_id)}

    def output_event(k: str):
        resources.store.notify = None
        info = resources.store.put_bytes(k, b"1,2,0\n", metadata=meta)
        return product_created_event(info, sequencer=info.version_id)

    _finish(resources, ready, outputs=[key])
    assert control.handle(output_event(key)) == {"key": key, "jobs": 0, "claimed": 0}
    assert len(event_log.of_type("task.ready")) == 1           # verify waits for the task's end
    end = events.make_event(events.TASK_FINISHED, "/test", {}, id="f4", taskid=ready.task_id)
    assert control.handle(end)["claimed"] == 1
    assert [e["tasktype"] for e in event_log.of_type("task.ready")[1:]] == ["verify"]
    # an undeclared file in the task's folder goes through the scheduler (nothing reads it here)
    extra = control.handle(output_event(f"{folder}/extra.csv"))
    assert extra["claimed"] == 0 and "refused" not in extra
    # the same claim on a key outside the task's outputs and folder is refused
    assert "neither declares it" in control.handle(output_event("elsewhere/x.csv"))["refused"]


def test_failed_qc_output_does_not_release_downstream(resources, event_log):
    control, ready, key = _first_task(resources, event_log, "inbox/star3.csv", ["ingest_external_lcs", "verify"])
    _finish(resources, ready, passed=False, outputs=[key])
    end = events.make_event(events.TASK_FAILED, "/test", {}, id="f2", taskid=ready.task_id)
    assert control.handle(end)["claimed"] == 0


def test_job_submission_and_rejection(resources, event_log):
    control = Control(resources)
    good = {"job_name": "j", "task_list": [{"task": "null"}, {"task": "null", "name": "b"}]}
    event = events.make_event(events.JOB_SUBMITTED, "/test", good, id="job-1")
    summary = control.handle(event)
    assert summary["tasks"] == 2 and summary["claimed"] == 2
    assert control.handle(event)["created"] is False     # duplicate delivery: same job
    bad = {"task_list": [{"task": "null", "inputs": "not-a-map"}]}
    summary = control.handle(events.make_event(events.JOB_SUBMITTED, "/test", bad, id="job-2"))
    assert "task_list[0].inputs" in summary["rejected"]
    with resources.db.read() as s:
        letter = s.scalars(select(DeadLetter)).one()
        assert "task_list[0].inputs" in letter.reason and letter.event_id == "job-2"


def test_task_waits_for_an_input_that_is_uploaded_later(resources, event_log):
    control = Control(resources)
    job = {"task_list": [{"task": "verify", "inputs": {"lightcurve": "later/lc.fits"}}]}
    assert control.handle(events.make_event(events.JOB_SUBMITTED, "/t", job, id="j"))["claimed"] == 0
    assert control.handle(_upload(resources, "later/lc.fits"))["claimed"] == 1


def test_reconcile_retries_a_stalled_attempt_as_a_new_attempt(resources, event_log):
    control = Control(resources)
    control.handle(events.make_event(events.JOB_SUBMITTED, "/t", {"task_list": [{"task": "null"}]}, id="j"))
    first = event_log.of_type("task.ready")[0]
    old = utcnow() - dt.timedelta(seconds=60)
    with resources.db.session() as s:
        s.execute(update(Attempt).values(state=A_RUNNING, started_at=old, heartbeat_at=old))
        s.execute(update(Task).values(state="running"))
    summary = control.reconcile()
    assert summary["retried"] == 1
    with resources.db.read() as s:
        attempts = s.scalars(select(Attempt).order_by(Attempt.number)).all()
        assert [a.number for a in attempts] == [1, 2]
        assert attempts[0].error and attempts[0].error_kind == "infrastructure"
        assert "stalled" in attempts[0].error_text
        assert attempts[1].state == "queued"
    retry = event_log.of_type("task.ready")[-1]
    assert retry["attemptid"] != first["attemptid"] and retry["taskid"] == first["taskid"]


def test_reconcile_gives_up_after_max_attempts(resources, event_log):
    control = Control(resources)
    control.handle(events.make_event(events.JOB_SUBMITTED, "/t", {"task_list": [{"task": "null"}]}, id="j"))
    for _ in range(resources.settings.max_attempts):
        old = utcnow() - dt.timedelta(seconds=60)
        with resources.db.session() as s:
            s.execute(update(Attempt).where(Attempt.state == "queued")
                      .values(state=A_RUNNING, started_at=old, heartbeat_at=old))
        control.reconcile()
    with resources.db.read() as s:
        assert s.scalar(select(func.count()).select_from(Attempt)) == resources.settings.max_attempts
        assert s.scalars(select(Task)).one().state == FAILED


def test_reconcile_resends_ready_events_that_were_lost(resources, event_log):
    control = Control(resources)
    event_log.fail = True                         # the broker is down when the task is claimed
    control.handle(events.make_event(events.JOB_SUBMITTED, "/t", {"task_list": [{"task": "null"}]}, id="j"))
    event_log.fail = False
    assert event_log.of_type("task.ready") == []
    with resources.db.session() as s:
        s.execute(update(Attempt).values(sent_at=utcnow() - dt.timedelta(seconds=60)))
    assert control.reconcile()["resent"] == 1
    assert len(event_log.of_type("task.ready")) == 1


def _age_sends(resources, seconds: float = 60.0) -> None:
    """Make every queued attempt's last send ``seconds`` old, as if the redeliver time had passed."""
    with resources.db.session() as s:
        s.execute(update(Attempt).where(Attempt.state == "queued")
                  .values(sent_at=utcnow() - dt.timedelta(seconds=seconds)))


def test_an_attempt_no_function_takes_is_given_up_after_the_bound_and_its_task_fails(resources, event_log):
    """No event is resent without bound: a function that takes nothing (never deployed, failing
    to start) costs each attempt ``max_unanswered_sends`` sends, then the task fails."""
    bound, attempts = resources.settings.max_unanswered_sends, resources.settings.max_attempts
    assert bound >= 2
    control = Control(resources)
    control.handle(events.make_event(events.JOB_SUBMITTED, "/t", {"task_list": [{"task": "null"}]}, id="j"))
    for _ in range(bound * attempts + 3):
        _age_sends(resources)
        control.reconcile()
    with resources.db.read() as s:
        rows = s.execute(select(Attempt.error_kind, Attempt.error_text, Attempt.unanswered_sends)
                         .order_by(Attempt.number)).all()
        assert s.scalars(select(Task)).one().state == FAILED
    assert len(rows) == attempts
    for kind, text, sends in rows:
        assert kind == "infrastructure" and sends == bound
        assert text.startswith(f"never started: {bound} sends of task.ready over ")
        assert "task type 'null' takes nothing" in text
    # each attempt: its first send and bound - 1 resends; nothing after the task failed
    assert len(event_log.of_type("task.ready")) == attempts * bound


@pytest.mark.parametrize("other", ["null", "verify"])
def test_a_queued_attempt_waiting_while_others_run_is_resent_without_counting(resources, event_log, other):
    """A wait for capacity is not a function that takes nothing: while another attempt, of the
    same task type or another (node CPU is shared), heartbeats, the queued one is resent and
    never given up."""
    control = Control(resources)
    for name, task in (("a", other), ("b", "null")):
        control.handle(events.make_event(events.JOB_SUBMITTED, "/t", {"task_list": [{"task": task}]},
                                         id=name))
    with resources.db.read() as s:
        running, waiting = s.scalars(select(Attempt.id).order_by(Attempt.id)).all()
    long_ago = utcnow() - dt.timedelta(hours=1)   # started before any send: only its heartbeat answers
    with resources.db.session() as s:
        s.execute(update(Attempt).where(Attempt.id == running)
                  .values(state=A_RUNNING, started_at=long_ago, heartbeat_at=long_ago))
    for _ in range(3 * resources.settings.max_unanswered_sends):
        _age_sends(resources)
        with resources.db.session() as s:           # the running attempt's heartbeat
            s.execute(update(Attempt).where(Attempt.id == running).values(heartbeat_at=utcnow()))
        assert control.reconcile()["resent"] == 1
    with resources.db.read() as s:
        attempt = s.get(Attempt, waiting)
        assert (attempt.state, attempt.unanswered_sends, attempt.error) == ("queued", 0, False)
    # once nothing of its type runs any more, the count starts
    with resources.db.session() as s:
        s.execute(update(Attempt).where(Attempt.id == running).values(state=A_FINISHED, ended_at=utcnow()))
    _age_sends(resources)
    control.reconcile()
    with resources.db.read() as s:
        assert s.get(Attempt, waiting).unanswered_sends == 1


def test_a_resend_while_the_broker_is_down_does_not_count(resources, event_log):
    """A send that did not reach the broker is not an unanswered one: the bound is about the
    function, and the broker coming back resumes the count where it was."""
    control = Control(resources)
    control.handle(events.make_event(events.JOB_SUBMITTED, "/t", {"task_list": [{"task": "null"}]}, id="j"))
    event_log.fail = True
    for _ in range(3 * resources.settings.max_unanswered_sends):
        _age_sends(resources)
        assert control.reconcile()["resent"] == 0
    with resources.db.read() as s:
        attempt = s.scalars(select(Attempt)).one()
        assert (attempt.state, attempt.unanswered_sends) == ("queued", 0)


def test_the_unanswered_bound_is_a_setting_that_refuses_a_negative_value(tmp_path):
    import pytest

    from eas_runtime.settings import Settings, SettingsError
    assert Settings.load(environ={"EAS_MAX_UNANSWERED_SENDS": "0"}, home=str(tmp_path)).max_unanswered_sends == 0
    with pytest.raises(SettingsError, match="EAS_MAX_UNANSWERED_SENDS"):
        Settings.load(environ={"EAS_MAX_UNANSWERED_SENDS": "-1"}, home=str(tmp_path))


def test_unknown_event_type_is_rejected(resources):
    import pytest
    with pytest.raises(events.EventError, match="does not handle"):
        Control(resources).handle(events.make_event("org.example.other", "/t", {}, id="x"))
