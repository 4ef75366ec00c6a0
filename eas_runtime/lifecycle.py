"""What users do to jobs: cancel them, retry their failed tasks.

Both change the task database directly and are safe to repeat. Cancelling stops new work:
waiting and queued tasks become cancelled (a queued attempt that reaches a function is finished
there as cancelled), running attempts are left to finish, and finished products stay.
Retrying puts failed tasks back to waiting (their attempts are kept) and schedules the ready ones.
"""
from __future__ import annotations

from sqlalchemy import select, update

from eas_runtime.control import scheduler
from eas_runtime.db.models import (A_FINISHED, A_QUEUED, CANCELLED, FAILED, QUEUED, WAITING,
                                   Attempt, Job, Task, utcnow)


class LifecycleError(LookupError):
    """The job or task named does not exist (the message names it)."""


def cancel_job(db, job_id: int) -> dict:
    with db.session() as s:
        job = s.get(Job, job_id)
        if job is None:
            raise LifecycleError(f"no job {job_id}")
        job.cancelled = True
        queued = list(s.scalars(select(Task.id).where(Task.job_id == job_id, Task.state == QUEUED)))
        s.execute(update(Attempt).where(Attempt.task_id.in_(queued), Attempt.state == A_QUEUED)
                  .values(state=A_FINISHED, ended_at=utcnow(), error=True, error_kind="cancelled",
                          error_text="job cancelled before the attempt started"))
        n = s.execute(update(Task).where(Task.job_id == job_id, Task.state.in_((WAITING, QUEUED)))
                      .values(state=CANCELLED)).rowcount
    return {"job_id": job_id, "cancelled_tasks": n}


def retry_failed(db, send, job_id: int, task_ids: list[int] | None = None) -> dict:
    """Failed tasks of ``job_id`` (or only ``task_ids``) go back to waiting and are scheduled."""
    with db.session() as s:
        job = s.get(Job, job_id)
        if job is None:
            raise LifecycleError(f"no job {job_id}")
        if job.cancelled:
            raise LifecycleError(f"job {job_id} is cancelled; its tasks are not retried")
        cond = [Task.job_id == job_id, Task.state == FAILED]
        if task_ids:
            cond.append(Task.id.in_(task_ids))
        n = s.execute(update(Task).where(*cond).values(state=WAITING, retry_at=None)).rowcount
    claimed = scheduler.schedule(db, send, job_id=job_id)
    return {"job_id": job_id, "retried_tasks": n, "claimed": len(claimed)}
