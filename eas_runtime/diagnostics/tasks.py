"""Tasks and jobs: progress per task type, one task in full, the job list (the tree: tree.py)."""
from __future__ import annotations

import datetime as dt

from sqlalchemy import func, select

from eas_runtime.db import metadata as md
from eas_runtime.db.models import (Attempt, AttemptInput, Job, LogMessage, Product, ProductVersion, Task,
                                   TaskInput, TaskMetadataInput, TaskOutput, utcnow)
from eas_runtime.diagnostics._common import DEFAULT_PAGE_SIZE, NotFound, age_s, check_page, iso, paged
from eas_runtime.diagnostics._common import check_id
from eas_runtime.diagnostics.states import DISPLAY_STATES, display_state
from eas_runtime.diagnostics._units import units_of
from eas_runtime.diagnostics.errors import error_cause


def _counts(rows) -> dict:
    counts = {st: 0 for st in DISPLAY_STATES}
    for st, n in rows:
        counts[st] = counts.get(st, 0) + n
    total = sum(counts.values())
    percent = {st: round(100.0 * n / total, 1) if total else 0.0 for st, n in counts.items()}
    return {"total": total, "counts": counts, "percent": percent}


def progress(db, *, job_id: int | None = None, stall_s: float = 300.0,
             now: dt.datetime | None = None) -> dict:
    """Counts and percentages of each display state per task type (of one job, or all).

    Not paged: one row per task type. ``all`` sums every type.
    """
    check_id("job", job_id)
    state = display_state(Task, stall_s=stall_s, now=now)
    query = select(Task.task_type.label("task_type"), state.label("state"))
    if job_id is not None:
        query = query.where(Task.job_id == job_id)
    inner = query.subquery()
    with db.read() as s:
        if job_id is not None and s.get(Job, job_id) is None:
            raise NotFound(f"no job {job_id}")
        rows = s.execute(select(inner.c.task_type, inner.c.state, func.count())
                         .group_by(inner.c.task_type, inner.c.state)).all()
    by_type: dict[str, list] = {}
    for task_type, st, n in rows:
        by_type.setdefault(task_type, []).append((st, n))
    return {"job_id": job_id, "states": list(DISPLAY_STATES),
            "task_types": [{"task_type": tt, **_counts(by_type[tt])} for tt in sorted(by_type)],
            "all": _counts([(st, n) for _, st, n in rows])}


def jobs(db, *, page: int = 0, page_size: int = DEFAULT_PAGE_SIZE, stall_s: float = 300.0,
         now: dt.datetime | None = None) -> dict:
    """Jobs, newest first, each with its task counts per display state; a job refused at
    submission has no tasks and says why in ``rejected`` (None for an accepted job)."""
    offset, limit = check_page(page, page_size)
    with db.read() as s:
        total = s.scalar(select(func.count()).select_from(Job))
        page_jobs = s.execute(select(Job.id, Job.name, Job.working_directory, Job.cancelled, Job.created_at,
                                     Job.rejection)
                              .order_by(Job.id.desc()).offset(offset).limit(limit)).all()
        ids = [j.id for j in page_jobs]
        inner = select(Task.job_id.label("job_id"),
                       display_state(Task, stall_s=stall_s, now=now).label("state")) \
            .where(Task.job_id.in_(ids)).subquery()
        per_job: dict[int, list] = {i: [] for i in ids}
        for job_id, st, n in s.execute(select(inner.c.job_id, inner.c.state, func.count())
                                       .group_by(inner.c.job_id, inner.c.state)):
            per_job[job_id].append((st, n))
    items = [{"job_id": j.id, "name": j.name, "working_directory": j.working_directory,
              "cancelled": j.cancelled, "rejected": j.rejection, "created": iso(j.created_at),
              **_counts(per_job[j.id])}
             for j in page_jobs]
    return paged(items, total, page, page_size, states=list(DISPLAY_STATES))


def task_detail(db, task_id: int, *, stall_s: float = 300.0, now: dt.datetime | None = None) -> dict:
    """One task in full: every attempt (not only the last), inputs and outputs with their
    versions, metadata, the tasks it reads metadata from, and its children count."""
    check_id("task", task_id)
    now = now or utcnow()
    with db.read() as s:
        row = s.execute(select(Task, display_state(Task, stall_s=stall_s, now=now).label("state"),
                               Job.name.label("job_name"))
                        .join(Job, Job.id == Task.job_id).where(Task.id == task_id)).first()
        if row is None:
            raise NotFound(f"no task {task_id}")
        task = row.Task
        children = s.scalar(select(func.count()).select_from(Task).where(Task.parent_id == task_id))
        inputs = s.execute(select(TaskInput.semantic_name, TaskInput.key, TaskInput.version_id)
                           .where(TaskInput.task_id == task_id).order_by(TaskInput.id)).all()
        outputs = s.execute(select(TaskOutput.semantic_name, TaskOutput.key)
                            .where(TaskOutput.task_id == task_id).order_by(TaskOutput.id)).all()
        keys = [k for _, k, _ in inputs] + [k for _, k in outputs]
        versions: dict[str, list] = {k: [] for k in keys}
        for key, v in s.execute(select(Product.key, ProductVersion)
                                .join(ProductVersion, ProductVersion.product_id == Product.id)
                                .where(Product.key.in_(keys)).order_by(ProductVersion.id)):
            versions[key].append({"id": v.id, "attempt_id": v.attempt_id, "size": v.size, "md5": v.etag,
                                  "passed_qc": v.passed_qc, "created": iso(v.created_at)})
        sources = s.execute(select(Task.id, Task.name, Task.task_type)
                            .join(TaskMetadataInput, TaskMetadataInput.source_task_id == Task.id)
                            .where(TaskMetadataInput.task_id == task_id).order_by(Task.id)).all()
        attempts = s.scalars(select(Attempt).where(Attempt.task_id == task_id).order_by(Attempt.number)).all()
        attempt_meta = md.get_metadata_many(s, "attempt", [a.id for a in attempts])
        attempt_units = md.get_units_many(s, "attempt", [a.id for a in attempts])
        read: dict[int, list] = {a.id: [] for a in attempts}
        for r in s.scalars(select(AttemptInput).where(AttemptInput.attempt_id.in_(list(read)))
                           .order_by(AttemptInput.id)):
            read[r.attempt_id].append({"name": r.semantic_name, "key": r.key, "version_id": r.version_id,
                                       "md5": r.etag, "object_version": r.object_version})
        log_counts = dict(s.execute(select(LogMessage.attempt_id, func.count())
                                    .where(LogMessage.attempt_id.in_([a.id for a in attempts]))
                                    .group_by(LogMessage.attempt_id)).all())
        task_meta = md.get_metadata(s, "task", task_id)
    return {
        "task_id": task.id, "job_id": task.job_id, "job_name": row.job_name, "parent_id": task.parent_id,
        "path": task.path, "name": task.name, "task_type": task.task_type, "state": row.state,
        "stored_state": task.state, "working_directory": task.working_directory,
        "fully_configured": task.fully_configured, "params": task.params or {},
        "metadata": task_meta, "attempts_count": task.attempt_count,
        "retry_at": iso(task.retry_at), "created": iso(task.created_at), "children": children,
        "inputs": [{"name": n, "key": k, "pinned_version": pin, "versions": versions[k]} for n, k, pin in inputs],
        "outputs": [{"name": n, "key": k, "versions": versions[k]} for n, k in outputs],
        "metadata_from": [{"task_id": i, "name": n, "task_type": tt} for i, n, tt in sources],
        "attempts": [{**attempt_dict(a, now, attempt_meta[a.id], log_counts.get(a.id, 0)), "read": read[a.id],
                      "units": units_of(attempt_meta[a.id], attempt_units[a.id])}
                     for a in attempts],
    }


def attempt_dict(a: Attempt, now: dt.datetime, metadata: dict | None = None, logs: int | None = None) -> dict:
    out = {"attempt_id": a.id, "task_id": a.task_id, "number": a.number, "state": a.state,
           "host": a.host, "pid": a.pid, "queued": iso(a.queued_at), "sent": iso(a.sent_at),
           "started": iso(a.started_at), "ended": iso(a.ended_at), "heartbeat": iso(a.heartbeat_at),
           "heartbeat_age_s": age_s(a.heartbeat_at, now) if a.ended_at is None else None,
           "error": a.error, "error_kind": a.error_kind, "error_cause": error_cause(a.error_text),
           "error_text": a.error_text,
           "all_products_passed_qc": a.all_products_passed_qc,
           "wall_s": a.wall_s, "cpu_s": a.cpu_s, "cpu_children_s": a.cpu_children_s}
    if metadata is not None:
        out["metadata"] = metadata
    if logs is not None:
        out["log_lines"] = logs
    return out


__all__ = ["progress", "jobs", "task_detail"]
