"""Work in flight: claimed attempts, events awaiting delivery, and the dead letters."""
from __future__ import annotations

import datetime as dt

from sqlalchemy import func, select

from eas_runtime.db.models import A_QUEUED, A_RUNNING, Attempt, DeadLetter, Delivery, Task, utcnow
from eas_runtime.diagnostics._common import (DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE, DiagnosticsError, age_s,
                                             check_page, iso, paged)
from eas_runtime.diagnostics.errors import dead_letters
from eas_runtime.diagnostics.states import display_state

PENDING = "pending"


def claimed_attempts(db, *, page: int = 0, page_size: int = DEFAULT_PAGE_SIZE, stall_s: float = 300.0,
                     now: dt.datetime | None = None) -> dict:
    """Attempts that are queued (``task.ready`` sent, not started) or running, oldest first,
    with host, pid, heartbeat age and the task's display state."""
    offset, limit = check_page(page, page_size)
    now = now or utcnow()
    cond = Attempt.state.in_((A_QUEUED, A_RUNNING))
    with db.read() as s:
        total = s.scalar(select(func.count()).select_from(Attempt).where(cond))
        rows = s.execute(select(Attempt, Task.job_id, Task.task_type, Task.name,
                                display_state(Task, stall_s=stall_s, now=now).label("task_state"))
                         .join(Task, Task.id == Attempt.task_id).where(cond)
                         .order_by(Attempt.queued_at, Attempt.id).offset(offset).limit(limit)).all()
    items = [{"attempt_id": a.id, "task_id": a.task_id, "job_id": job, "task_type": tt, "name": name,
              "number": a.number, "attempt_state": a.state, "task_state": st, "host": a.host,
              "pid": a.pid, "queued": iso(a.queued_at), "sent": iso(a.sent_at), "started": iso(a.started_at),
              "heartbeat": iso(a.heartbeat_at), "heartbeat_age_s": age_s(a.heartbeat_at, now),
              "queued_for_s": age_s(a.queued_at, now) if a.state == A_QUEUED else None}
             for a, job, tt, name, st in rows]
    return paged(items, total, page, page_size)


def pending_deliveries(db, *, page: int = 0, page_size: int = DEFAULT_PAGE_SIZE,
                       now: dt.datetime | None = None) -> dict:
    """The broker's deliveries not yet done (first attempt or waiting for a retry), soonest
    due first, with the trigger, tries so far, due time and the last error."""
    offset, limit = check_page(page, page_size)
    now = now or utcnow()
    cond = Delivery.state == PENDING
    with db.read() as s:
        total = s.scalar(select(func.count()).select_from(Delivery).where(cond))
        rows = s.scalars(select(Delivery).where(cond).order_by(Delivery.due_at, Delivery.id)
                         .offset(offset).limit(limit)).all()
    items = [{"id": d.id, "event_key": d.event_key, "event_type": d.event_type, "trigger": d.trigger,
              "tries": d.tries, "due": iso(d.due_at),
              "due_in_s": round((d.due_at - now).total_seconds(), 1) if d.due_at else None,
              "last_error": d.last_error, "created": iso(d.created_at)} for d in rows]
    return paged(items, total, page, page_size)


def inflight(db, *, page: int = 0, page_size: int = DEFAULT_PAGE_SIZE, newest_dead_letters: int = 5,
             stall_s: float = 300.0, now: dt.datetime | None = None) -> dict:
    """Everything in flight: ``attempts`` and ``deliveries`` (both paged with ``page``), and
    ``dead_letters`` (their count and the newest few, without payloads)."""
    if not isinstance(newest_dead_letters, int) or not 0 <= newest_dead_letters <= MAX_PAGE_SIZE:
        raise DiagnosticsError(f"the number of dead letters to show must be a whole number from 0 to "
                               f"{MAX_PAGE_SIZE}, got {newest_dead_letters!r}")
    now = now or utcnow()
    letters = dead_letters(db, page=0, page_size=max(1, newest_dead_letters), payload=False, now=now)
    with db.read() as s:
        count = s.scalar(select(func.count()).select_from(DeadLetter))
    return {"attempts": claimed_attempts(db, page=page, page_size=page_size, stall_s=stall_s, now=now),
            "deliveries": pending_deliveries(db, page=page, page_size=page_size, now=now),
            "dead_letters": {"count": count, "newest": letters["items"][:newest_dead_letters]}}
