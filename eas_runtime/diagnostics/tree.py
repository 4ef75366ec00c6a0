"""The job tree: tasks in depth-first order, one page at a time, without walking every job.

Order: jobs by id; within a job, each task's sort key is its ancestors' keys followed by its
own id written as a fixed-width number (id + 10**10 has 11 digits), so comparing keys as text
gives depth-first order (parents before children, siblings by id) on SQLite and PostgreSQL.

Three plans, each a recursive CTE over only the tasks it needs:

* the whole tree (or one job): count each job's tasks (a grouped index scan; with a depth limit,
  jobs with nested tasks are counted by walking them), find the jobs that overlap the page, and
  walk down from their top-level tasks only;
* a subtree: walk down from that task;
* running only: walk *up* from the running tasks to their roots, which gives each one its
  depth and sort key, whatever the size of the tree around it.
"""
from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import Integer, String, cast, func, literal, select
from sqlalchemy.orm import aliased

from eas_runtime.db.models import RUNNING, Job, Task
from eas_runtime.diagnostics._common import (DEFAULT_PAGE_SIZE, DiagnosticsError, NotFound, check_id,
                                             check_page, paged)
from eas_runtime.diagnostics.states import display_state

#: Deepest level ``tree(depth=...)`` accepts (top-level tasks, or the subtree's root, are 0).
MAX_DEPTH = 6
_KEY_OFFSET = 10_000_000_000


def _segment(column):
    return cast(column + _KEY_OFFSET, String)


def _walk_down(roots, depth: int | None):
    """CTE (id, depth, key) of the tasks under the roots selected by ``roots`` (conditions)."""
    base = select(Task.id.label("id"), literal(0, Integer).label("depth"),
                  (_segment(Task.job_id) + _segment(Task.id)).label("key")).where(*roots)
    walk = base.cte("task_tree", recursive=True)
    child = aliased(Task)
    step = select(child.id, walk.c.depth + 1, walk.c.key + _segment(child.id)) \
        .where(child.parent_id == walk.c.id)
    if depth is not None:
        step = step.where(walk.c.depth < depth)
    return walk.union_all(step)


def _walk_up(job_id: int | None, subtree: int | None, depth: int | None):
    """(id, depth, key) of the running tasks (under ``subtree`` if given), found by climbing
    from each to its top-level task (or to ``subtree``)."""
    start = select(Task.id.label("start"), Task.id.label("node"), Task.parent_id.label("parent"),
                   Task.job_id.label("job"), literal(0, Integer).label("level"),
                   _segment(Task.id).label("key")).where(Task.state == RUNNING)
    if job_id is not None:
        start = start.where(Task.job_id == job_id)
    up = start.cte("task_path", recursive=True)
    parent = aliased(Task)
    step = select(up.c.start, parent.id, parent.parent_id, up.c.job, up.c.level + 1,
                  _segment(parent.id) + up.c.key).where(parent.id == up.c.parent)
    if subtree is not None:
        step = step.where(up.c.node != subtree)
    up = up.union_all(step)
    top = up.c.node == subtree if subtree is not None else up.c.parent.is_(None)
    q = select(up.c.start.label("id"), up.c.level.label("depth"),
               (_segment(up.c.job) + up.c.key).label("key")).where(top)
    if depth is not None:
        q = q.where(up.c.level <= depth)
    return q.subquery("running_tree")


def _job_window(s, job_id: int | None, depth: int | None, offset: int, limit: int):
    """(total, job ids overlapping rows [offset, offset+limit), rows to skip in the first)."""
    q = select(Task.job_id, func.count()).group_by(Task.job_id).order_by(Task.job_id)
    nested_q = select(Task.job_id).distinct().where(Task.parent_id.is_not(None))
    if job_id is not None:
        q, nested_q = q.where(Task.job_id == job_id), nested_q.where(Task.job_id == job_id)
    per_job = s.execute(q).all()           # (job_id, tasks): a scan of the job_id index
    counts = dict(per_job)
    nested = list(s.scalars(nested_q)) if depth is not None else []
    if nested:                             # only tasks within the depth limit count
        walk = _walk_down([Task.parent_id.is_(None), Task.job_id.in_(nested)], depth)
        t = aliased(Task)
        counts.update(dict(s.execute(select(t.job_id, func.count()).join(walk, walk.c.id == t.id)
                                     .group_by(t.job_id)).all()))
    window: list[Any] = []
    total, skip = 0, 0
    for j, _ in per_job:
        n = counts.get(j, 0)
        if n and total + n > offset and total < offset + limit:
            if not window:
                skip = offset - total
            window.append(j)
        total += n
    return total, window, skip


def tree(db, *, job_id: int | None = None, subtree: int | None = None, depth: int | None = None,
         running_only: bool = False, page: int = 0, page_size: int = DEFAULT_PAGE_SIZE,
         stall_s: float = 300.0, now: dt.datetime | None = None) -> dict:
    """Tasks in depth-first order, one page at a time.

    Roots are the top-level tasks of each job (``parent_id`` null; a plain job is flat, all its
    tasks are roots), or the task ``subtree``. ``depth`` keeps tasks at most that many levels
    below a root (0-6; None: all). ``running_only`` keeps tasks with a running attempt (display
    state running, or stalled when its heartbeat is late). Each item: task_id, job_id,
    parent_id, depth, task_type, name, state (display state), attempts, path. ``jobs`` maps
    each job id on the page to its name and cancelled flag.
    """
    check_id("job", job_id), check_id("subtree", subtree)
    offset, limit = check_page(page, page_size)
    if depth is not None and (not isinstance(depth, int) or isinstance(depth, bool)
                              or not 0 <= depth <= MAX_DEPTH):
        raise DiagnosticsError(f"depth must be a whole number from 0 to {MAX_DEPTH}, got {depth!r}")
    t = aliased(Task)
    state = display_state(t, stall_s=stall_s, now=now)
    with db.read() as s:
        if job_id is not None and s.get(Job, job_id) is None:
            raise NotFound(f"no job {job_id}")
        if subtree is not None:
            root = s.get(Task, subtree)
            if root is None:
                raise NotFound(f"no task {subtree}")
            if job_id is not None and root.job_id != job_id:
                raise DiagnosticsError(f"task {subtree} is in job {root.job_id}, not in job {job_id}")
        if running_only:
            walk, skip = _walk_up(job_id, subtree, depth), offset
            total = s.scalar(select(func.count()).select_from(walk))
        elif subtree is not None:
            walk, skip = _walk_down([Task.id == subtree], depth), offset
            total = s.scalar(select(func.count()).select_from(walk))
        else:
            total, window, skip = _job_window(s, job_id, depth, offset, limit)
            walk = _walk_down([Task.parent_id.is_(None), Task.job_id.in_(window)], depth)
        q = select(t.id, t.job_id, t.parent_id, walk.c.depth, t.task_type, t.name, t.path,
                   t.attempt_count, state.label("state")).join(walk, walk.c.id == t.id)
        rows = s.execute(q.order_by(walk.c.key).offset(skip).limit(limit)).all()
        jobs = {j.id: {"name": j.name, "cancelled": j.cancelled} for j in s.execute(
            select(Job.id, Job.name, Job.cancelled).where(Job.id.in_({r.job_id for r in rows})))}
    items = [{"task_id": r.id, "job_id": r.job_id, "parent_id": r.parent_id, "depth": r.depth,
              "task_type": r.task_type, "name": r.name, "state": r.state,
              "attempts": r.attempt_count, "path": r.path} for r in rows]
    return paged(items, total, page, page_size, jobs={str(k): v for k, v in sorted(jobs.items())},
                 filters={"job_id": job_id, "subtree": subtree, "depth": depth,
                          "running_only": running_only})
