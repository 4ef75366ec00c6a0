"""Task life cycle: retries with backoff, science-failure policy, cancel, retry of failed tasks."""
from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import select, update

from eas_runtime import events
from eas_runtime.control import Control, scheduler
from eas_runtime.db.models import (A_FINISHED, A_RUNNING, CANCELLED, DONE, FAILED, WAITING, Attempt,
                                   Product, ProductVersion, Task, utcnow)
from eas_runtime.db.products import ensure_product
from eas_runtime.lifecycle import LifecycleError, cancel_job, retry_failed
from eas_runtime.resources import Resources


def _submit(control, tasks, id="j"):
    return control.handle(events.make_event(events.JOB_SUBMITTED, "/t", {"task_list": tasks}, id=id))


def _fail(resources, ready_event, kind="science"):
    """Play a function whose science code raised."""
    attempt_id, task_id = int(ready_event["attemptid"]), int(ready_event["taskid"])
    with resources.db.session() as s:
        s.execute(update(Attempt).where(Attempt.id == attempt_id)
                  .values(state=A_FINISHED, error=True, error_kind=kind, error_text="boom"))
        s.execute(update(Task).where(Task.id == task_id).values(state=FAILED))
    return events.make_event(events.TASK_FAILED, "/f", {"error_kind": kind}, id=f"failed-{attempt_id}",
                             taskid=task_id)


def _stall(resources):
    old = utcnow() - dt.timedelta(seconds=60)
    with resources.db.session() as s:
        s.execute(update(Attempt).where(Attempt.state == "queued")
                  .values(state=A_RUNNING, started_at=old, heartbeat_at=old))
        s.execute(update(Task).where(Task.state == "queued").values(state="running"))


def test_lost_attempt_waits_for_its_backoff(settings, resources, event_log):
    res = Resources(settings.replace(retry_backoff_s=600.0), send=event_log, store=resources.store, db=resources.db)
    control = Control(res)
    _submit(control, [{"task": "null"}])
    _stall(res)
    summary = control.reconcile()
    assert summary["retried"] == 1 and summary["claimed"] == 0   # not before the backoff
    with res.db.read() as s:
        task = s.scalars(select(Task)).one()
        assert task.state == WAITING
        wait = (task.retry_at - utcnow()).total_seconds()
        assert 590 < wait <= 600                                  # first retry: base backoff
    with res.db.session() as s:
        s.execute(update(Task).values(retry_at=utcnow() - dt.timedelta(seconds=1)))
    assert control.reconcile()["claimed"] == 1
    _stall(res)
    control.reconcile()
    with res.db.read() as s:
        wait = (s.scalars(select(Task)).one().retry_at - utcnow()).total_seconds()
    assert 1190 < wait <= 1200                                    # second retry: doubled


def test_science_failure_is_not_retried_by_default(resources, event_log):
    control = Control(resources)
    _submit(control, [{"task": "error"}])
    end = _fail(resources, event_log.of_type("task.ready")[0])
    assert control.handle(end)["retried"] is False
    control.reconcile()
    with resources.db.read() as s:
        assert s.scalars(select(Task)).one().state == FAILED
        assert len(s.scalars(select(Attempt)).all()) == 1


def test_science_failure_is_retried_when_the_job_asks(resources, event_log):
    control = Control(resources)
    _submit(control, [{"task": "error", "retry_science_failures": True}])
    for n in range(resources.settings.max_attempts):
        end = _fail(resources, event_log.of_type("task.ready")[-1])
        retried = control.handle(end)["retried"]
        assert retried is (n + 1 < resources.settings.max_attempts)
        control.reconcile()
    with resources.db.read() as s:
        assert s.scalars(select(Task)).one().state == FAILED
        assert [a.number for a in s.scalars(select(Attempt).order_by(Attempt.number))] == [1, 2, 3]


def test_cancel_stops_new_work_and_keeps_finished_products(resources, event_log):
    control = Control(resources)
    _submit(control, [{"task": "null", "name": "a", "outputs": {"r": "a.json"}},
                      {"task": "null", "name": "b", "inputs": {"x": "a.json"}, "outputs": {"r": "b.json"}},
                      {"task": "null", "name": "other"}])
    first, other = event_log.of_type("task.ready")
    with resources.db.session() as s:       # the first task finished with its product
        s.add(ProductVersion(product_id=ensure_product(s, "a.json").id, attempt_id=int(first["attemptid"]),
                             passed_qc=True))
        s.execute(update(Attempt).where(Attempt.id == int(first["attemptid"])).values(state=A_FINISHED))
        s.execute(update(Task).where(Task.id == int(first["taskid"])).values(state=DONE))
    job_id = int(first["jobid"])
    out = cancel_job(resources.db, job_id)
    assert out["cancelled_tasks"] == 2        # the waiting second task and the queued "other"
    end = events.make_event(events.TASK_FINISHED, "/f", {}, id="fin", taskid=int(first["taskid"]))
    assert control.handle(end)["claimed"] == 0
    with resources.db.read() as s:
        states = dict(s.execute(select(Task.name, Task.state)).all())
        assert states == {"a": DONE, "b": CANCELLED, "other": CANCELLED}
        other_attempt = s.get(Attempt, int(other["attemptid"]))
        assert other_attempt.state == A_FINISHED and other_attempt.error_kind == "cancelled"
        assert s.scalar(select(Product).where(Product.key == "a.json")) is not None
    with pytest.raises(LifecycleError, match="cancelled"):
        retry_failed(resources.db, event_log, job_id)


def test_retry_failed_tasks_of_a_job(resources, event_log):
    control = Control(resources)
    _submit(control, [{"task": "error", "name": "e"}, {"task": "null", "name": "n"}])
    error_ready = [e for e in event_log.of_type("task.ready") if e["tasktype"] == "error"][0]
    control.handle(_fail(resources, error_ready))
    out = retry_failed(resources.db, event_log, int(error_ready["jobid"]))
    assert out == {"job_id": int(error_ready["jobid"]), "retried_tasks": 1, "claimed": 1}
    with resources.db.read() as s:
        attempts = s.scalars(select(Attempt).where(Attempt.task_id == int(error_ready["taskid"]))
                             .order_by(Attempt.number)).all()
    assert [a.number for a in attempts] == [1, 2] and attempts[0].error
    with pytest.raises(LifecycleError, match="no job 999"):
        retry_failed(resources.db, event_log, 999)


def test_claim_after_retry_clears_the_backoff(resources):
    from eas_runtime.db.models import Job
    with resources.db.session() as s:
        job = Job(name="x")
        s.add(job)
        s.flush()
        task = Task(job_id=job.id, task_type="null", retry_at=utcnow() - dt.timedelta(seconds=1))
        s.add(task)
        s.flush()
        task_id = task.id
    assert scheduler.claim(resources.db, task_id) is not None
    with resources.db.read() as s:
        assert s.get(Task, task_id).retry_at is None


def test_metadata_keeps_floats_floats_and_strings_strings(resources):
    from eas_runtime.db import metadata as md
    with resources.db.session() as s:
        warnings = md.set_metadata(s, "task", 1, {"period": 50.0, "n": 3, "name": "50", "ok": True,
                                                  "bad": float("nan")})
    assert warnings == ["metadata 'bad': non-finite value nan stored as null"]
    with resources.db.read() as s:
        got = md.get_metadata(s, "task", 1)
    assert got == {"period": 50.0, "n": 3, "name": "50", "ok": True, "bad": None}
    assert type(got["period"]) is float and type(got["n"]) is int and type(got["name"]) is str
