"""Control-flow tasks at run time: eas-control runs them itself, no function serves them.

A deferred control-flow task (a conditional, a do-while loop or one of its iteration checks, a
chain or for-loop that reads ``requested_metadata``) is a task row like any other: it becomes
ready when its inputs and its ``requires_metadata_from`` tasks are done, and the scheduler
claims it (the claim creates its attempt; only one claimer wins). Its ``task.ready`` event is
not posted to the broker: :meth:`eas_runtime.control.Control.send` hands it to :func:`execute`,
which in one transaction marks the attempt running (a compare-and-set, so a duplicate
delivery finds nothing to do), evaluates the task with the metadata it requested
(:func:`eas_runtime.jobs.expand`), inserts the children, and records the attempt finished (or
failed, with the message quoting the expression) and the task done. Then the new children and
the tasks that waited on this one are scheduled. If eas-control dies between the claim and
:func:`execute`, the attempt stays queued and the reconcile tick resends its ``task.ready``,
which comes back here.

Plain tasks whose parameters read ``requested_metadata`` are created not fully configured;
:func:`configure` binds their parameters when their sources are done (:func:`release`).
"""
from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable

from sqlalchemy import bindparam, exists, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, aliased

from eas_runtime import events
from eas_runtime.control import scheduler
from eas_runtime.db import metadata as md
from eas_runtime.db.models import (
    A_FINISHED,
    A_QUEUED,
    A_RUNNING,
    CANCELLED,
    DONE,
    FAILED,
    QUEUED,
    RUNNING,
    WAITING,
    Attempt,
    Job,
    LogMessage,
    Task,
    TaskMetadataInput,
    utcnow,
)
from eas_runtime.jobs import CONTROL_FLOW, JobError, bind_parameters, expand, insert

log = logging.getLogger("eas.control.flow")
HOST = "eas-control"
IDS_PER_QUERY = 2000


def is_control_ready(event) -> bool:
    """A ``task.ready`` event for a control-flow task (eas-control runs it)."""
    return event["type"] == events.TASK_READY and event.get("tasktype") in CONTROL_FLOW


def requested_metadata(session: Session, task_id: int) -> dict[str, dict]:
    """``{source task name: result metadata of its latest successful attempt}``."""
    out: dict[str, dict] = {}
    for source_id, name in session.execute(
            select(Task.id, Task.name).join(TaskMetadataInput, TaskMetadataInput.source_task_id == Task.id)
            .where(TaskMetadataInput.task_id == task_id)).all():
        best = session.scalar(select(Attempt.id).where(Attempt.task_id == source_id, Attempt.state == A_FINISHED,
                                                       Attempt.error.is_(False))
                              .order_by(Attempt.number.desc()).limit(1))
        out[name or str(source_id)] = md.get_metadata(session, "attempt", best) if best else {}
    return out


def execute(db, send: Callable, task_id: int, attempt_id: int, *, stat=None) -> list:
    """Run the control-flow task's claimed attempt; return what was scheduled after it."""
    started, cpu = time.perf_counter(), time.process_time()
    now = utcnow()
    with db.session() as s:
        won = s.execute(update(Attempt).where(Attempt.id == attempt_id, Attempt.task_id == task_id,
                                              Attempt.state == A_QUEUED)
                        .values(state=A_RUNNING, started_at=now, heartbeat_at=now, host=HOST, pid=os.getpid()))
        if won.rowcount != 1:
            return []                                  # a duplicate: the attempt ran already
        task = s.get(Task, task_id)
        job = s.get(Job, task.job_id)
        attempt = s.get(Attempt, attempt_id)
        if job.cancelled or task.state == CANCELLED:
            _finish(s, attempt, task, error_kind="cancelled", text="job cancelled before the task ran")
            return []
        s.execute(update(Task).where(Task.id == task_id, Task.state == QUEUED).values(state=RUNNING))
        params = dict(task.params or {})
        error, new_ids, expansion = "", [], None
        try:
            expansion = expand(task.task_type, params, path=task.path, working_directory=task.working_directory,
                               job_name=params.get("job_name") or job.name,
                               requested=requested_metadata(s, task_id),
                               wait=params.get("wait_for_upload") is True)
            with s.begin_nested():
                outputs = {k: t.path for root in expansion.children for t in root.walk() for k in t.outputs.values()}
                uploads = insert.check(s, outputs, expansion.external_inputs, stat)
                insert.record_uploads(s, uploads)
                new_ids = insert.insert_tree(s, job.id, job.name, expansion.children, parent_id=task_id)
        except JobError as exc:
            error = str(exc)
        except IntegrityError as exc:
            error = f"{task.path}: its tasks could not be created: {exc.orig}"
        if expansion is not None and not error:
            md.set_metadata(s, "attempt", attempt_id, expansion.metadata)
            s.add(LogMessage(attempt_id=attempt_id, severity="INFO", text=f"{task.task_type} {task.path}: "
                             f"{expansion.message}; {len(new_ids)} tasks created"))
        _finish(s, attempt, task, error_kind="parameters" if error else "", text=error,
                wall_s=time.perf_counter() - started, cpu_s=time.process_time() - cpu)
    if error:
        log.warning("control-flow task %s failed: %s", task_id, error)
    claimed = []
    for i in range(0, len(new_ids), IDS_PER_QUERY):
        claimed += scheduler.schedule(db, send, task_ids=new_ids[i:i + IDS_PER_QUERY])
    return claimed + release(db, send, task_id)


def _finish(s: Session, attempt: Attempt, task: Task, *, error_kind: str, text: str,
            wall_s: float | None = None, cpu_s: float | None = None) -> None:
    failed = bool(error_kind)
    if failed:
        s.add(LogMessage(attempt_id=attempt.id, severity="ERROR", text=text))
    s.execute(update(Attempt).where(Attempt.id == attempt.id).values(
        state=A_FINISHED, ended_at=utcnow(), error=failed, error_kind=error_kind, error_text=text,
        all_products_passed_qc=not failed, wall_s=wall_s, cpu_s=cpu_s, cpu_children_s=0.0 if cpu_s else None))
    state = CANCELLED if error_kind == "cancelled" else (FAILED if failed else DONE)
    s.execute(update(Task).where(Task.id == task.id, Task.attempt_count == attempt.number,
                                 Task.state.in_((QUEUED, RUNNING))).values(state=state))


# ---------------------------------------------------------------------- late-bound parameters
def _sources_done():
    source = aliased(Task)
    return ~exists(select(TaskMetadataInput.id).join(source, source.id == TaskMetadataInput.source_task_id)
                   .where(TaskMetadataInput.task_id == Task.id, source.state != DONE))


_UNCONFIGURED: dict[tuple[bool, int], object] = {}


def _unconfigured(by_source: bool, limit: int):
    """Statement: tasks waiting for their parameters whose sources are done, built once."""
    query = _UNCONFIGURED.get((by_source, limit))
    if query is None:
        query = select(Task.id).where(Task.fully_configured.is_(False), Task.state == WAITING, _sources_done())
        if by_source:
            query = query.where(Task.id.in_(select(TaskMetadataInput.task_id)
                                            .where(TaskMetadataInput.source_task_id == bindparam("source"))))
        query = _UNCONFIGURED[(by_source, limit)] = query.order_by(Task.id).limit(limit)
    return query


def configure(db, *, source: int | None = None, limit: int = 5000) -> int:
    """Bind the parameters of tasks that read ``requested_metadata`` once their sources are
    done (those fed by ``source`` only, when given); return how many were configured. A
    parameter that cannot be evaluated fails the task with the expression and the reason."""
    with db.connect() as conn:
        ids = list(conn.execute(_unconfigured(source is not None, limit),
                                {"source": source}).scalars())
    if not ids:
        return 0
    done = 0
    for task_id in ids:
        with db.session() as s:
            task = s.get(Task, task_id)
            if task is None or task.fully_configured or task.state != WAITING:
                continue
            try:
                task.params = bind_parameters(dict(task.params or {}), requested_metadata(s, task_id), task.path)
                task.fully_configured = True
                done += 1
            except JobError as exc:
                number = task.attempt_count + 1
                task.attempt_count, task.state = number, FAILED
                now = utcnow()
                attempt = Attempt(task_id=task_id, number=number, state=A_FINISHED, queued_at=now, started_at=now,
                                  ended_at=now, host=HOST, error=True, error_kind="parameters", error_text=str(exc),
                                  all_products_passed_qc=False)
                s.add(attempt)
                s.flush()
                s.add(LogMessage(attempt_id=attempt.id, severity="ERROR", text=str(exc)))
    return done


def release(db, send: Callable, task_id: int) -> list:
    """A task ended: bind the parameters of the tasks that read its metadata, then schedule
    what waited on its outputs or its metadata."""
    configure(db, source=task_id)
    return scheduler.after_task(db, send, task_id)

