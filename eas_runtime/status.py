"""Counts of the pipeline's state, shared by ``eas status`` and the index site."""
from __future__ import annotations

from sqlalchemy import func, select

from eas_runtime.db.models import (TASK_STATES, Attempt, DeadLetter, Delivery, Job, Product, Task)


def status_summary(db) -> dict:
    with db.read() as s:
        states = dict(s.execute(select(Task.state, func.count()).group_by(Task.state)).all())
        by_type: dict[str, dict[str, int]] = {}
        for task_type, state, n in s.execute(select(Task.task_type, Task.state, func.count())
                                             .group_by(Task.task_type, Task.state)).all():
            by_type.setdefault(task_type, {st: 0 for st in TASK_STATES})[state] = n
        return {
            "jobs": s.scalar(select(func.count()).select_from(Job)),
            "tasks": {st: states.get(st, 0) for st in TASK_STATES},
            "by_type": dict(sorted(by_type.items())),
            "products": s.scalar(select(func.count()).select_from(Product)),
            "failed_attempts": s.scalar(select(func.count()).select_from(Attempt).where(Attempt.error.is_(True))),
            "dead_letters": s.scalar(select(func.count()).select_from(DeadLetter)),
            "deliveries_pending": s.scalar(select(func.count()).select_from(Delivery)
                                           .where(Delivery.state == "pending")),
            "retries_pending": s.scalar(select(func.count()).select_from(Task)
                                        .where(Task.state == "waiting", Task.retry_at.is_not(None))),
        }


def quiescent(db) -> bool:
    """True when nothing is in flight: no event awaiting delivery, no task queued, running or
    waiting for its retry.

    Tasks still waiting then wait for something that is not coming by itself (an upload that
    has not happened, or an input whose producer failed and can be retried).
    """
    summary = status_summary(db)
    return summary["deliveries_pending"] == 0 and summary["retries_pending"] == 0 \
        and summary["tasks"]["queued"] == 0 and summary["tasks"]["running"] == 0
