"""Readiness, the atomic claim, and the reconcile tick.

A task is ready (PARITY.md section 4) when it is waiting, fully configured, its job is not
cancelled, every input object has a QC-passed version and every task it reads metadata from is
done. Claiming is a compare-and-set on ``tasks.state`` (waiting -> queued) that also bumps
``attempt_count``; it runs inside one transaction with the new attempt row, so of any number of
concurrent claimers (threads, processes, control replicas) exactly one wins, on PostgreSQL
(row lock, WHERE re-checked after the winner commits) and SQLite (one writer at a time) alike.
``task.ready`` is sent after the commit; if sending fails the attempt stays queued and the
reconcile tick sends the same event again (same id: receivers drop duplicates).
"""
from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass
from typing import Callable, Iterable

from sqlalchemy import and_, exists, or_, select, update
from sqlalchemy.orm import aliased

from eas_runtime import events
from eas_runtime.db.models import (A_FINISHED, A_QUEUED, A_RUNNING, DONE, FAILED, QUEUED, RUNNING,
                                   WAITING, Attempt, Job, LogMessage, Product, ProductVersion,
                                   Task, TaskInput, TaskMetadataInput, TaskOutput, utcnow)

log = logging.getLogger("eas.control")
Send = Callable[..., bool]


@dataclass(frozen=True)
class Ready:
    task_id: int
    attempt_id: int
    task_type: str
    job_id: int

    def event(self):
        return events.make_event(
            events.TASK_READY, events.SOURCE_CONTROL,
            {"task_id": self.task_id, "attempt_id": self.attempt_id, "job_id": self.job_id,
             "task_type": self.task_type},
            id=events.stable_id("task.ready", self.attempt_id), subject=str(self.task_id),
            tasktype=self.task_type, jobid=self.job_id, taskid=self.task_id, attemptid=self.attempt_id)


def _ready_filter(now: dt.datetime):
    """SQL condition: the Task row is ready to run (at ``now``)."""
    version_ok = exists(select(ProductVersion.id).join(Product, Product.id == ProductVersion.product_id)
                        .where(Product.key == TaskInput.key, ProductVersion.passed_qc.is_(True)))
    missing_input = exists(select(TaskInput.id).where(TaskInput.task_id == Task.id, ~version_ok))
    source = aliased(Task)
    metadata_pending = exists(select(TaskMetadataInput.id)
                              .join(source, source.id == TaskMetadataInput.source_task_id)
                              .where(TaskMetadataInput.task_id == Task.id, source.state != DONE))
    return and_(Task.state == WAITING, Task.fully_configured.is_(True), Job.cancelled.is_(False),
                or_(Task.retry_at.is_(None), Task.retry_at <= now), ~missing_input, ~metadata_pending)


def find_ready(session, *, task_ids: Iterable[int] | None = None, input_keys: Iterable[str] | None = None,
               metadata_source: int | None = None, job_id: int | None = None, limit: int = 5000) -> list[int]:
    """Ids of ready tasks among the candidates named (all waiting tasks when none is named)."""
    q = select(Task.id).join(Job, Job.id == Task.job_id).where(_ready_filter(utcnow()))
    if task_ids is not None:
        q = q.where(Task.id.in_(list(task_ids)))
    if input_keys is not None:
        q = q.where(Task.id.in_(select(TaskInput.task_id).where(TaskInput.key.in_(list(input_keys)))))
    if metadata_source is not None:
        q = q.where(Task.id.in_(select(TaskMetadataInput.task_id)
                                .where(TaskMetadataInput.source_task_id == metadata_source)))
    if job_id is not None:
        q = q.where(Task.job_id == job_id)
    return list(session.scalars(q.order_by(Task.id).limit(limit)))


def claim(db, task_id: int, *, from_states: tuple[str, ...] = (WAITING,),
          expected_attempts: int | None = None) -> Ready | None:
    """Create the next attempt of ``task_id`` if nobody else did; None when another claimer won."""
    with db.session() as s:
        cond = [Task.id == task_id, Task.state.in_(from_states)]
        if expected_attempts is not None:
            cond.append(Task.attempt_count == expected_attempts)
        won = s.execute(update(Task).where(*cond)
                        .values(state=QUEUED, attempt_count=Task.attempt_count + 1, retry_at=None))
        if won.rowcount != 1:
            return None
        number, task_type, job_id = s.execute(
            select(Task.attempt_count, Task.task_type, Task.job_id).where(Task.id == task_id)).one()
        attempt = Attempt(task_id=task_id, number=number, state=A_QUEUED, sent_at=utcnow())
        s.add(attempt)
        s.flush()
        return Ready(task_id, attempt.id, task_type, job_id)


def schedule(db, send: Send, **candidates) -> list[Ready]:
    """Claim every ready task among the candidates and send its ``task.ready``."""
    with db.read() as s:
        ids = find_ready(s, **candidates)
    claimed = []
    for task_id in ids:
        ready = claim(db, task_id)
        if ready is not None:
            send(ready.event())
            claimed.append(ready)
    return claimed


def after_task(db, send: Send, task_id: int) -> list[Ready]:
    """A task ended: schedule what waited on its outputs or its metadata."""
    with db.read() as s:
        keys = list(s.scalars(select(TaskOutput.key).where(TaskOutput.task_id == task_id)))
    claimed = schedule(db, send, input_keys=keys) if keys else []
    return claimed + schedule(db, send, metadata_source=task_id)


# ---------------------------------------------------------------------- reconcile
def backoff_s(base_s: float, attempts_made: int) -> float:
    """Wait before the retry that follows attempt ``attempts_made`` (1, 2, ...): exponential."""
    return base_s * 2 ** max(0, attempts_made - 1)


def schedule_retry(session, task_id: int, attempts_made: int, *, max_attempts: int,
                   backoff_base_s: float) -> bool:
    """Put a task whose latest attempt was lost back to waiting, due after the backoff; or fail
    it when it had ``max_attempts`` already. Returns True when a retry was scheduled."""
    if attempts_made >= max_attempts:
        session.execute(update(Task).where(Task.id == task_id, Task.attempt_count == attempts_made)
                        .values(state=FAILED))
        return False
    due = utcnow() + dt.timedelta(seconds=backoff_s(backoff_base_s, attempts_made))
    done = session.execute(update(Task).where(Task.id == task_id, Task.attempt_count == attempts_made,
                                              Task.state.in_((RUNNING, QUEUED, FAILED)))
                           .values(state=WAITING, retry_at=due))
    return done.rowcount == 1


def recover_stalled(db, *, stall_s: float, max_attempts: int, backoff_base_s: float) -> int:
    """Give up attempts whose heartbeat is older than ``stall_s``; their tasks are retried after
    a backoff (claimed by :func:`schedule` once due) up to ``max_attempts`` attempts in all."""
    cutoff = utcnow() - dt.timedelta(seconds=stall_s)
    with db.read() as s:
        stale = s.execute(select(Attempt.id, Attempt.task_id, Attempt.number, Attempt.heartbeat_at)
                          .where(Attempt.state == A_RUNNING, Attempt.heartbeat_at < cutoff)).all()
    retried = 0
    for attempt_id, task_id, number, beat in stale:
        with db.session() as s:
            gone = s.execute(update(Attempt).where(Attempt.id == attempt_id, Attempt.state == A_RUNNING,
                                                   Attempt.heartbeat_at < cutoff)
                             .values(state=A_FINISHED, ended_at=utcnow(), error=True,
                                     error_kind="infrastructure",
                                     error_text=f"stalled: no heartbeat since {beat.isoformat()} "
                                                f"(limit {stall_s:g} s); the attempt is presumed lost"))
            if gone.rowcount != 1:
                continue
            again = schedule_retry(s, task_id, number, max_attempts=max_attempts, backoff_base_s=backoff_base_s)
            s.add(LogMessage(attempt_id=attempt_id, severity="ERROR",
                             text=f"attempt {number} of task {task_id} stalled; "
                                  + ("retrying after backoff" if again else "no attempts left")))
            retried += int(again)
    return retried


def resend_unstarted(db, send: Send, *, redeliver_s: float) -> int:
    """Send ``task.ready`` again for attempts queued longer than ``redeliver_s`` (lost events)."""
    cutoff = utcnow() - dt.timedelta(seconds=redeliver_s)
    with db.read() as s:
        rows = s.execute(select(Attempt.id, Attempt.task_id, Task.task_type, Task.job_id)
                         .join(Task, Task.id == Attempt.task_id)
                         .where(Attempt.state == A_QUEUED, Attempt.sent_at < cutoff)).all()
    sent = 0
    for attempt_id, task_id, task_type, job_id in rows:
        if send(Ready(task_id, attempt_id, task_type, job_id).event()):
            with db.session() as s:
                s.execute(update(Attempt).where(Attempt.id == attempt_id).values(sent_at=utcnow()))
            sent += 1
    return sent


def reconcile(db, send: Send, *, stall_s: float, redeliver_s: float, max_attempts: int,
              backoff_base_s: float) -> dict:
    retried = recover_stalled(db, stall_s=stall_s, max_attempts=max_attempts, backoff_base_s=backoff_base_s)
    resent = resend_unstarted(db, send, redeliver_s=redeliver_s)
    claimed = schedule(db, send)
    return {"retried": retried, "resent": resent, "claimed": len(claimed)}
