"""Check a compiled job against the task database and the store, and insert it in bulk.

Checks at submission (each problem names the task's path):

* an output that another task in the database already plans, or an object that already
  exists as a product (uploaded or made), is rejected;
* an input that no task of this job makes must be planned by another job, or exist as a
  product with a QC-passed version, or exist in the store (it is then recorded as an upload,
  so that readiness sees it); otherwise the job is rejected, unless the task may wait for the
  upload (``wait_for_upload``), in which case the task waits until the object lands.

A refused job is kept as a job row without tasks (:func:`reject_job`), with the reason.

Task ids are reserved first (:func:`reserve_task_ids`), so parents, children and metadata
inputs can be linked before anything is written; then every table is written with one
executemany per 2,000 tasks, instead of a round trip per row for its id.
"""
from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from typing import Any

from sqlalchemy import func, select, text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from eas_runtime.db.models import (
    DONE,
    WAITING,
    Job,
    Product,
    ProductVersion,
    Task,
    TaskInput,
    TaskMetadataInput,
    TaskOutput,
    utcnow,
)
from eas_runtime.db.products import ensure_product
from eas_runtime.jobs.plan import CompiledJob, JobConflict, JobError, PlannedTask

Stat = Callable[[str], object]          # the store's stat(): ObjectInfo or None
CHUNK = 500                             # keys per IN (...) query
ROWS_PER_STATEMENT = 2000
MAX_KEPT_SPEC = 1_000_000               # characters of a refused job's description kept in its row


def _chunks(items: list, n: int = CHUNK) -> Iterable[list]:
    for i in range(0, len(items), n):
        yield items[i:i + n]


def check(session: Session, outputs: dict[str, str], external: dict[str, list[tuple[str, bool]]],
          stat: Stat | None = None) -> list[tuple[str, object]]:
    """Raise JobConflict for outputs that another job plans or that exist, JobError for inputs
    nobody makes; return the objects found only in the store as (key, ObjectInfo), to be
    recorded as uploads."""
    keys = list(outputs)
    for part in _chunks(keys):
        planned = session.execute(select(TaskOutput.key, TaskOutput.task_id, Task.job_id, Task.path, Job.name)
                                  .join(Task, Task.id == TaskOutput.task_id).join(Job, Job.id == Task.job_id)
                                  .where(TaskOutput.key.in_(part))).first()
        if planned is not None:
            key, task_id, job_id, path, name = planned
            raise JobConflict(f"{outputs[key]}: output {key!r} is already planned by task {task_id} "
                              f"({path}) of job {job_id} ({name!r})")
        existing = session.scalar(select(Product.key).where(Product.key.in_(part)).limit(1))
        if existing is not None:
            raise JobConflict(f"{outputs[existing]}: output {existing!r} already exists in the store")
    wanted = list(external)
    found: set[str] = set()
    for part in _chunks(wanted):
        found.update(session.scalars(select(TaskOutput.key).where(TaskOutput.key.in_(part))))
        found.update(session.scalars(select(Product.key).join(ProductVersion, ProductVersion.product_id == Product.id)
                                     .where(Product.key.in_(part), ProductVersion.passed_qc.is_(True))))
    uploads = []
    for key in wanted:
        if key in found:
            continue
        info = stat(key) if stat is not None else None
        if info is not None:
            uploads.append((key, info))
            continue
        blocking = [where for where, may_wait in external[key] if not may_wait]
        if blocking:
            raise JobError(f"{blocking[0]}: {key!r} is not made by any task and is not in the store; "
                           "upload it first, or let the task wait for it with \"wait_for_upload\": true")
    return uploads


def record_uploads(session: Session, uploads: list[tuple[str, object]]) -> None:
    """Objects already in the store that the database did not know: record them as uploads."""
    for key, info in uploads:
        product = ensure_product(session, key, semantic_type="upload")
        has = session.scalar(select(ProductVersion.id).where(ProductVersion.product_id == product.id,
                                                             ProductVersion.passed_qc.is_(True)).limit(1))
        if has is None:
            session.add(ProductVersion(product_id=product.id, etag=str(getattr(info, "etag", "")),
                                       size=int(getattr(info, "size", 0) or 0),
                                       object_version=getattr(info, "version_id", None), passed_qc=True))
    session.flush()


def insert_job(session: Session, compiled: CompiledJob, *, source_event: str | None,
               spec=None, stat: Stat | None = None) -> tuple[Job, bool]:
    """Create the job and its tasks; return (job, created). A repeated ``source_event`` returns
    the existing job. Raises JobError for the database checks above."""
    existing = _by_source(session, source_event)
    if existing is not None:
        return existing, False
    uploads = check_compiled(session, compiled, stat)
    job, created = _add_job(session, Job(name=compiled.job_name, working_directory=compiled.working_directory,
                                         source_event=source_event, spec=spec if spec is not None else {}))
    if not created:
        return job, False
    record_uploads(session, uploads)
    insert_tree(session, job.id, job.name, compiled.roots)
    return job, True


def check_compiled(session: Session, compiled: CompiledJob, stat: Stat | None = None) -> list[tuple[str, object]]:
    """:func:`check` for every output (deferred parts too) and external input of ``compiled``."""
    outputs = compiled.outputs()
    outputs.update(compiled.deferred_outputs)
    return check(session, outputs, compiled.external_inputs, stat)


def reject_job(session: Session, spec: Any, *, source_event: str | None, reason: str) -> tuple[Job, bool]:
    """Record a refused job: a row without tasks, with the reason. (job, created); a repeated
    ``source_event`` returns the row recorded before, so a duplicate delivery adds nothing."""
    existing = _by_source(session, source_event)
    if existing is not None:
        return existing, False
    name = spec.get("job_name") if isinstance(spec, dict) else None
    return _add_job(session, Job(name=name[:200] if isinstance(name, str) else "", working_directory="",
                                 source_event=source_event, spec=_kept_spec(spec), rejection=reason[:10_000]))


def _by_source(session: Session, source_event: str | None) -> Job | None:
    """The job recorded before for ``source_event`` (a duplicate delivery), if any."""
    if not source_event:
        return None
    return session.scalar(select(Job).where(Job.source_event == source_event))


def _add_job(session: Session, job: Job) -> tuple[Job, bool]:
    """Insert ``job``; when a concurrent delivery of the same event won, (its job, False).
    Any other integrity error is raised (it is no duplicate delivery)."""
    try:
        with session.begin_nested():
            session.add(job)
            session.flush()
    except IntegrityError:
        winner = _by_source(session, job.source_event)
        if winner is None:
            raise
        return winner, False
    return job, True


def _kept_spec(spec: Any) -> Any:
    """The refused description as it can be stored: strict JSON (PostgreSQL refuses NaN) of a
    bounded size, else a note saying why it was left out."""
    try:
        text = json.dumps(spec, allow_nan=False)
    except (TypeError, ValueError, RecursionError) as exc:
        return {"not_kept": f"the description is not storable JSON: {exc}"[:500]}
    if len(text) > MAX_KEPT_SPEC:
        return {"not_kept": f"the description is {len(text)} characters long (kept up to {MAX_KEPT_SPEC})"}
    return spec


def task_row(node: PlannedTask, job_id: int, job_name: str, parent_id: int | None, now) -> dict:
    params = node.params
    extra: dict[str, Any] = {}
    if node.job_name and node.job_name != job_name:
        extra["job_name"] = node.job_name
    if node.is_control and node.wait is True and not node.expanded:
        extra["wait_for_upload"] = True
    if extra:
        params = {**params, **extra}
    return {"job_id": job_id, "parent_id": parent_id, "path": node.path, "name": node.name,
            "task_type": node.task_type, "working_directory": node.working_directory, "params": params,
            "fully_configured": not node.late, "state": DONE if node.expanded else WAITING,
            "retry_science_failures": node.retry_science_failures, "created_at": now}


def reserve_task_ids(session: Session, n: int) -> list[int]:
    """``n`` unused task ids. SQLite: the write transaction holds the database's write lock
    (``BEGIN IMMEDIATE``), so the ids after the largest are free; PostgreSQL: taken from the
    table's sequence, safe against concurrent writers."""
    if n <= 0:
        return []
    if session.get_bind().dialect.name == "postgresql":
        return sorted(session.execute(text("SELECT nextval(pg_get_serial_sequence('tasks', 'id')) "
                                           "FROM generate_series(1, :n)"), {"n": n}).scalars())
    start = session.scalar(select(func.max(Task.id))) or 0
    return list(range(start + 1, start + n + 1))


def insert_tree(session: Session, job_id: int, job_name: str, roots: list[PlannedTask],
                parent_id: int | None = None) -> list[int]:
    """Insert ``roots`` and their descendants under ``parent_id``; return the new task ids in
    tree order (pre-order)."""
    now = utcnow()
    order = [node for root in roots for node in root.walk()]
    ids = {id(node): task_id for node, task_id in zip(order, reserve_task_ids(session, len(order)))}
    parents = {id(child): ids[id(node)] for node in order for child in node.children}
    conn = session.connection()
    for part in _chunks(order, ROWS_PER_STATEMENT):
        rows = [task_row(node, job_id, job_name, parents.get(id(node), parent_id), now) for node in part]
        for row, node in zip(rows, part):
            row["id"] = ids[id(node)]
        conn.execute(Task.__table__.insert(), rows)
        inputs = [{"task_id": ids[id(n)], "semantic_name": s, "key": k} for n in part for s, k in n.inputs.items()]
        outputs = [{"task_id": ids[id(n)], "semantic_name": s, "key": k} for n in part for s, k in n.outputs.items()]
        sources = [{"task_id": ids[id(n)], "source_task_id": ids[id(r)]} for n in part for r in n.requires]
        for model, rows in ((TaskInput, inputs), (TaskOutput, outputs), (TaskMetadataInput, sources)):
            if rows:
                conn.execute(model.__table__.insert(), rows)
    return [ids[id(node)] for node in order]
