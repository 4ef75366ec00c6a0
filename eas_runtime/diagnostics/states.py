"""Display states of tasks: derived from the stored state, never stored twice.

``tasks.state`` says where the life cycle is (waiting, queued, running, done, failed,
cancelled). The display state adds *stalled*, which is not a stored state but a judgement made
at read time:

* a running task whose current attempt has not sent a heartbeat for more than ``stall_s``
  seconds (the reconcile tick will give it up soon), or
* a task waiting for the retry of an attempt that was lost to an infrastructure failure
  (stalled and given up, or killed): it is still recovering, not waiting for its inputs.

A waiting task with a pending retry after a *science* failure (the job asked for such retries)
is plain waiting. :func:`display_state` is the only definition: a SQL expression that every
query selects, filters or groups by, so that counts, trees and lists always agree.
"""
from __future__ import annotations

import datetime as dt

from sqlalchemy import and_, case, exists, select
from sqlalchemy.orm import aliased

from eas_runtime.db.models import A_RUNNING, RUNNING, WAITING, Attempt, Task, utcnow

STALLED = "stalled"
#: Every display state, in the order tables show them.
DISPLAY_STATES = ("waiting", "queued", "running", STALLED, "done", "failed", "cancelled")
#: Error kind of attempts lost to the infrastructure (stalled heartbeat, killed process).
INFRASTRUCTURE = "infrastructure"


def stall_cutoff(stall_s: float, now: dt.datetime | None = None) -> dt.datetime:
    """Heartbeats older than this make a running attempt stalled."""
    return (now or utcnow()) - dt.timedelta(seconds=stall_s)


def display_state(task=Task, *, stall_s: float, now: dt.datetime | None = None):
    """SQL expression for the display state of ``task`` (the Task entity or an alias of it).

    The current attempt is the one numbered ``task.attempt_count``; it is looked up through the
    unique (task_id, number) index, and only for running tasks and tasks waiting for a retry
    (a CASE evaluates its branches lazily), so grouping 100,000 tasks by display state costs
    one scan of ``tasks``.
    """
    cutoff = stall_cutoff(stall_s, now)
    current = aliased(Attempt)
    is_current = and_(current.task_id == task.id, current.number == task.attempt_count)
    heartbeat_lost = exists(select(current.id).where(
        is_current, current.state == A_RUNNING, current.heartbeat_at < cutoff))
    lost_to_infrastructure = exists(select(current.id).where(
        is_current, current.error.is_(True), current.error_kind == INFRASTRUCTURE))
    return case(
        (and_(task.state == RUNNING, heartbeat_lost), STALLED),
        (and_(task.state == WAITING, task.retry_at.is_not(None), lost_to_infrastructure), STALLED),
        else_=task.state)


def current_attempt_join(task=Task, attempt=Attempt):
    """ON clause joining ``task`` to its current (newest) attempt."""
    return and_(attempt.task_id == task.id, attempt.number == task.attempt_count)
