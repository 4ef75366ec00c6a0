"""Timings and pass/fail tables per (job, task type), keyed by loop parameters; real CSV.

A row is one task. Its parameters are its loop variables (what a job's loops set, e.g. ``tda``,
``cadence``, ``size`` and their ``*_index``: the ``params["metadata"]`` the job compiler hands
each task, and any metadata items recorded for the task) and its params (the task's own
settings, nested ones as dotted names such as ``specs.duration``); its results are the current
attempt's run times and metadata (for searches ``period``, ``target_period``, ``outcome``, ...).
The column set is computed over the whole (job, task type), so every page and the CSV export
have the same columns. Names are unique: a param that repeats a metadata key is left out, and a
name already taken gets a prefix (``metadata.``, ``params.``, ``result.``).

``columns`` (the JSON's and the CSV header's order) stays bookkeeping first (``task_id`` is the
CSV's first cell, which scripts read by position), then parameters, run times and results.
The page shows ``shown_columns`` instead: the loop parameters, then the science results (a
search's period, outcome...), then the run times, then the bookkeeping (task id, name, path,
state, attempts), because what a reader compares across a grid is the parameters against the
results; the ids are there to click through. ``units`` gives each column's unit (recorded by
the function, else from the name's suffix: :mod:`._units`).
"""
from __future__ import annotations

import csv
import datetime as dt
import json
from dataclasses import dataclass
from typing import IO, Any, Iterable, Iterator

from sqlalchemy import Text, and_, case, cast, func, select
from sqlalchemy.orm import aliased

from eas_runtime.db.models import DONE, FAILED, Attempt, Job, MetadataItem, Task, utcnow
from eas_runtime.diagnostics._common import (DEFAULT_PAGE_SIZE, NotFound, check_id, check_page, flatten,
                                             paged)
from eas_runtime.diagnostics._units import unit_of
from eas_runtime.diagnostics.states import current_attempt_join, display_state

FIXED = ("task_id", "name", "path", "state", "attempts")
TIMES = ("wall_s", "cpu_s", "cpu_children_s")
#: Result fields shown first when present (the search outcome); the rest follow by name.
PREFERRED_RESULTS = ("period", "target_period", "outcome")
#: Task metadata every task carries, shown as fixed columns rather than parameters.
HIDDEN_TASK_METADATA = frozenset({"path", "job_name"})
OUTCOME = "outcome"
#: The parameter that carries a task's loop metadata (eas_runtime.jobs.compiler).
LOOP_METADATA_PARAM = "metadata"
_CHUNK = 1000


@dataclass(frozen=True)
class Column:
    name: str
    source: str          # fixed | metadata | params | time | result
    key: str


def _group(job_id: int, task_type: str):
    return and_(Task.job_id == job_id, Task.task_type == task_type)


def _add(columns: list[Column], taken: set[str], source: str, key: str) -> None:
    name = key if key not in taken else f"{source}.{key}"
    taken.add(name)
    columns.append(Column(name, source, key))


def _loop_metadata(params: Any) -> dict[str, Any]:
    """The loop metadata of a task's params (``params["metadata"]``, flattened)."""
    loop = params.get(LOOP_METADATA_PARAM) if isinstance(params, dict) else None
    return flatten(loop) if isinstance(loop, dict) else {}


def _columns(s, job_id: int, task_type: str, *, results: bool = True, params: bool = True) -> list[Column]:
    group = _group(job_id, task_type)
    task_ids = select(Task.id).where(group)
    meta_keys = set(s.scalars(select(MetadataItem.key).distinct().where(
        MetadataItem.owner_kind == "task", MetadataItem.owner_id.in_(task_ids))))
    param_keys: set[str] = set()
    for blob in s.scalars(select(cast(Task.params, Text)).distinct().where(group)):
        try:
            decoded = json.loads(blob) if blob else {}
        except ValueError:
            continue
        # The loop variables: what the job compiler hands each task as params["metadata"]
        # (eas_runtime.jobs) are its metadata columns, under their own names; the task's
        # metadata items, where a caller recorded some, join them.
        meta_keys.update(_loop_metadata(decoded))
        if params:
            param_keys.update(k for k in flatten(decoded if isinstance(decoded, dict) else {})
                              if not k.startswith(LOOP_METADATA_PARAM + "."))
    meta_keys -= HIDDEN_TASK_METADATA
    columns = [Column(name, "fixed", name) for name in FIXED]
    taken = set(FIXED)
    for key in sorted(meta_keys):
        _add(columns, taken, "metadata", key)
    for key in sorted(param_keys - meta_keys):
        _add(columns, taken, "params", key)
    if results:
        for key in TIMES:
            _add(columns, taken, "time", key)
        current = select(Attempt.id).join(Task, current_attempt_join(Task, Attempt)).where(group)
        result_keys = set(s.scalars(select(MetadataItem.key).distinct().where(
            MetadataItem.owner_kind == "attempt", MetadataItem.owner_id.in_(current))))
        ordered = [k for k in PREFERRED_RESULTS if k in result_keys] \
            + sorted(result_keys - set(PREFERRED_RESULTS))
        for key in ordered:
            _add(columns, taken, "result", key)
    else:
        _add(columns, taken, "result", OUTCOME)
    return columns


def _metadata(s, kind: str, owner_ids: list[int], keys: list[str]) -> dict[int, dict[str, Any]]:
    """Metadata items named ``keys`` of the owners, in one query."""
    out: dict[int, dict[str, Any]] = {i: {} for i in owner_ids}
    if owner_ids and keys:
        for owner, key, value in s.execute(select(MetadataItem.owner_id, MetadataItem.key, MetadataItem.value)
                                           .where(MetadataItem.owner_kind == kind,
                                                  MetadataItem.owner_id.in_(owner_ids),
                                                  MetadataItem.key.in_(keys))):
            out[owner][key] = value
    return out


def _rows(s, job_id: int, task_type: str, columns: list[Column], *, stall_s: float, now: dt.datetime,
          offset: int | None = None, limit: int = _CHUNK, after_id: int | None = None) -> list[dict]:
    """One batch of rows, in task id order: 3 queries whatever the batch size."""
    a = aliased(Attempt)
    q = select(Task.id, Task.name, Task.path, Task.attempt_count, Task.params,
               display_state(Task, stall_s=stall_s, now=now).label("state"),
               a.id.label("attempt_id"), a.wall_s, a.cpu_s, a.cpu_children_s) \
        .outerjoin(a, current_attempt_join(Task, a)).where(_group(job_id, task_type)).order_by(Task.id)
    if after_id is not None:
        q = q.where(Task.id > after_id)
    if offset:
        q = q.offset(offset)
    rows = s.execute(q.limit(limit)).all()
    task_meta = _metadata(s, "task", [r.id for r in rows],
                          [c.key for c in columns if c.source == "metadata"])
    attempt_meta = _metadata(s, "attempt", [r.attempt_id for r in rows if r.attempt_id],
                             [c.key for c in columns if c.source == "result"])
    out = []
    for r in rows:
        sources: dict[str, dict[str, Any]] = {
            "fixed": {"task_id": r.id, "name": r.name, "path": r.path, "state": r.state,
                      "attempts": r.attempt_count},
            "metadata": {**task_meta.get(r.id, {}), **_loop_metadata(r.params)},
            "params": flatten(r.params or {}),
            "time": {"wall_s": r.wall_s, "cpu_s": r.cpu_s, "cpu_children_s": r.cpu_children_s},
            "result": attempt_meta.get(r.attempt_id, {}) if r.attempt_id else {},
        }
        out.append({c.name: sources[c.source].get(c.key) for c in columns})
    return out


def _units(s, job_id: int, task_type: str, columns: list[Column]) -> dict[str, str]:
    """``{column: unit}`` of the columns that have one: results take the unit their function
    recorded (any current attempt of the group), every column the unit of its name's suffix."""
    current = select(Attempt.id).join(Task, current_attempt_join(Task, Attempt)).where(_group(job_id, task_type))
    recorded = dict(s.execute(select(MetadataItem.key, func.max(MetadataItem.unit))
                              .where(MetadataItem.owner_kind == "attempt", MetadataItem.owner_id.in_(current),
                                     MetadataItem.unit != "")
                              .group_by(MetadataItem.key)).all())
    out = {c.name: unit_of(c.key, recorded if c.source == "result" else None) for c in columns}
    return {k: u for k, u in out.items() if u}


def _table(db, job_id: int, task_type: str, page: int, page_size: int, stall_s: float,
           now: dt.datetime | None, results: bool) -> tuple[list[Column], list[dict], int, dict]:
    check_id("job", job_id)
    offset, limit = check_page(page, page_size)
    now = now or utcnow()
    with db.read() as s:
        if s.get(Job, job_id) is None:
            raise NotFound(f"no job {job_id}")
        columns = _columns(s, job_id, task_type, results=results, params=results)
        total = s.scalar(select(func.count()).select_from(Task).where(_group(job_id, task_type)))
        rows = _rows(s, job_id, task_type, columns, stall_s=stall_s, now=now, offset=offset, limit=limit)
        units = _units(s, job_id, task_type, columns)
    return columns, rows, total, units


#: The page's column order by source (see the module docstring: science before bookkeeping).
SHOWN_ORDER = ("metadata", "params", "result", "time", "fixed")


def _described(columns: list[Column], units: dict[str, str]) -> dict:
    shown = sorted(columns, key=lambda c: SHOWN_ORDER.index(c.source))   # stable within a source
    return {"columns": [c.name for c in columns],
            "shown_columns": [c.name for c in shown],
            "parameters": [c.name for c in columns if c.source in ("metadata", "params")],
            "results": [c.name for c in columns if c.source in ("time", "result")],
            "units": units}


def timings(db, job_id: int, task_type: str, *, page: int = 0, page_size: int = DEFAULT_PAGE_SIZE,
            stall_s: float = 300.0, now: dt.datetime | None = None) -> dict:
    """One row per task of ``task_type`` in ``job_id``: parameters and results (see module)."""
    columns, rows, total, units = _table(db, job_id, task_type, page, page_size, stall_s, now, results=True)
    return paged(rows, total, page, page_size, job_id=job_id, task_type=task_type,
                 **_described(columns, units))


def passfail(db, job_id: int, task_type: str, *, page: int = 0, page_size: int = DEFAULT_PAGE_SIZE,
             stall_s: float = 300.0, now: dt.datetime | None = None) -> dict:
    """The ``outcome`` of each task keyed by its loop parameters (task metadata); ``summary``
    counts each outcome over the whole (job, task type), ``null`` for tasks without one."""
    columns, rows, total, units = _table(db, job_id, task_type, page, page_size, stall_s, now, results=False)
    with db.read() as s:
        current = select(Attempt.id).join(Task, current_attempt_join(Task, Attempt)) \
            .where(_group(job_id, task_type))
        counted = s.execute(select(cast(MetadataItem.value, Text), func.count())
                            .where(MetadataItem.owner_kind == "attempt", MetadataItem.key == OUTCOME,
                                   MetadataItem.owner_id.in_(current))
                            .group_by(cast(MetadataItem.value, Text))).all()
    summary: dict[str, int] = {}
    for raw, n in counted:
        value = json.loads(raw) if raw else None
        label = "null" if value is None else str(value)
        summary[label] = summary.get(label, 0) + n
    summary["null"] = summary.get("null", 0) + total - sum(n for _, n in counted)
    if not summary["null"]:
        del summary["null"]
    return paged(rows, total, page, page_size, job_id=job_id, task_type=task_type,
                 summary=dict(sorted(summary.items())), **_described(columns, units))


def timing_groups(db, *, job_id: int | None = None, task_type: str | None = None, page: int = 0,
                  page_size: int = DEFAULT_PAGE_SIZE) -> dict:
    """The (job, task type) pairs with task counts and run-time sums of their current attempts.

    The page of pairs comes from the (job_id, task_type) index; only the tasks of those pairs
    are aggregated.
    """
    check_id("job", job_id)
    offset, limit = check_page(page, page_size)
    pairs = select(Task.job_id, Task.task_type).distinct()
    if job_id is not None:
        pairs = pairs.where(Task.job_id == job_id)
    if task_type:
        pairs = pairs.where(Task.task_type == task_type)
    a = aliased(Attempt)
    with db.read() as s:
        total = s.scalar(select(func.count()).select_from(pairs.subquery()))
        wanted = s.execute(pairs.order_by(Task.job_id, Task.task_type).offset(offset).limit(limit)).all()
        jobs = {j for j, _ in wanted}
        sums = {(r.job_id, r.task_type): r for r in s.execute(
            select(Task.job_id, Task.task_type, func.count(Task.id).label("tasks"),
                   func.sum(case((Task.state == DONE, 1), else_=0)).label("done"),
                   func.sum(case((Task.state == FAILED, 1), else_=0)).label("failed"),
                   func.count(a.wall_s).label("timed"), func.sum(a.wall_s).label("wall_s_total"),
                   func.avg(a.wall_s).label("wall_s_mean"), func.max(a.wall_s).label("wall_s_max"),
                   func.sum(a.cpu_s).label("cpu_s_total"))
            .outerjoin(a, current_attempt_join(Task, a))
            .where(Task.job_id.in_(jobs), Task.task_type.in_({t for _, t in wanted}))
            .group_by(Task.job_id, Task.task_type))}
        names = dict(s.execute(select(Job.id, Job.name).where(Job.id.in_(jobs))).all())
    items = []
    for pair in wanted:
        r = sums[tuple(pair)]
        items.append({"job_id": r.job_id, "job_name": names.get(r.job_id, ""), "task_type": r.task_type,
                      "tasks": r.tasks, "done": int(r.done or 0), "failed": int(r.failed or 0),
                      "timed": r.timed, "wall_s_total": r.wall_s_total, "wall_s_mean": r.wall_s_mean,
                      "wall_s_max": r.wall_s_max, "cpu_s_total": r.cpu_s_total})
    return paged(items, total, page, page_size, filters={"job_id": job_id, "task_type": task_type})


# ---------------------------------------------------------------------- CSV
def cell(value: Any) -> str:
    """One CSV cell: empty for null, JSON for lists and dicts, ``true``/``false`` for booleans,
    the shortest exact text for floats."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (dict, list)):
        return json.dumps(value, sort_keys=True)
    if isinstance(value, float):
        return repr(value)
    return str(value)


def write_csv(fileobj: IO[str], columns: list[str], rows: Iterable[dict]) -> int:
    """Write a header row and one line per row (``csv`` module quoting); return the row count.
    Open the file with ``newline=""``."""
    writer = csv.writer(fileobj)
    writer.writerow(columns)
    n = 0
    for row in rows:
        writer.writerow([cell(row.get(c)) for c in columns])
        n += 1
    return n


def iter_table(db, job_id: int, task_type: str, *, kind: str = "timings", stall_s: float = 300.0,
               now: dt.datetime | None = None) -> tuple[list[str], Iterator[dict]]:
    """Columns and every row of a timings (``kind="timings"``) or pass/fail table, read in
    batches with keyset paging (no OFFSET), all from one read transaction."""
    if kind not in ("timings", "passfail"):
        raise ValueError(f"kind {kind!r} is not one of 'timings', 'passfail'")
    check_id("job", job_id)
    now = now or utcnow()
    results = kind == "timings"
    with db.read() as s:
        if s.get(Job, job_id) is None:
            raise NotFound(f"no job {job_id}")
        columns = _columns(s, job_id, task_type, results=results, params=results)

    def rows() -> Iterator[dict]:
        with db.read() as s:
            after = None
            while True:
                batch = _rows(s, job_id, task_type, columns, stall_s=stall_s, now=now, after_id=after)
                yield from batch
                if len(batch) < _CHUNK:
                    return
                after = batch[-1]["task_id"]
    return [c.name for c in columns], rows()


def export_csv(db, job_id: int, task_type: str, fileobj: IO[str], *, kind: str = "timings",
               stall_s: float = 300.0, now: dt.datetime | None = None) -> int:
    """Write the whole timings or pass/fail table of (job, task type) as CSV; return the rows."""
    columns, rows = iter_table(db, job_id, task_type, kind=kind, stall_s=stall_s, now=now)
    return write_csv(fileobj, columns, rows)
