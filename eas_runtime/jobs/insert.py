"""Check a compiled job against the task database and the store, and insert it in bulk.

Checks at submission (each problem names the task's path):

* an output that another task in the database already plans, or an object that already
  exists as a product (uploaded or made), is rejected;
* an input that no task of this job makes must be planned by another job, or exist as a
  product with a QC-passed version, or exist in the store (it is then recorded as an upload,
  so that readiness sees it); otherwise the job is rejected, unless the task may wait for the
  upload (``wait_for_upload``), in which case the task waits until the object lands.

Rows are written a tree level at a time with one multi-row ``INSERT ... RETURNING`` per
level (parents first, so children can name their ``parent_id``), then the inputs, outputs and
metadata inputs with one executemany each: a 100,000-task job takes a few statements per
thousand rows instead of several round trips per task.
"""
from __future__ import annotations

from typing import Callable, Iterable

from sqlalchemy import insert, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from eas_runtime.db.models import (DONE, WAITING, Job, Product, ProductVersion, Task, TaskInput,
                                   TaskMetadataInput, TaskOutput, utcnow)
from eas_runtime.db.products import ensure_product
from eas_runtime.jobs.compiler import CompiledJob, JobError, PlannedTask

Stat = Callable[[str], object]          # the store's stat(): ObjectInfo or None
CHUNK = 500                             # keys per IN (...) query
ROWS_PER_STATEMENT = 2000


def _chunks(items: list, n: int = CHUNK) -> Iterable[list]:
    for i in range(0, len(items), n):
        yield items[i:i + n]


def check(session: Session, outputs: dict[str, str], external: dict[str, list[tuple[str, bool]]],
          stat: Stat | None = None) -> list[tuple[str, object]]:
    """Raise JobError for outputs that exist and inputs nobody makes; return the objects found
    only in the store as (key, ObjectInfo), to be recorded as uploads."""
    keys = list(outputs)
    for part in _chunks(keys):
        planned = session.execute(select(TaskOutput.key, TaskOutput.task_id, Task.job_id, Task.path)
                                  .join(Task, Task.id == TaskOutput.task_id)
                                  .where(TaskOutput.key.in_(part))).first()
        if planned is not None:
            key, task_id, job_id, path = planned
            raise JobError(f"{outputs[key]}: output {key!r} is already planned by task {task_id} "
                           f"({path}) of job {job_id}")
        existing = session.scalar(select(Product.key).where(Product.key.in_(part)).limit(1))
        if existing is not None:
            raise JobError(f"{outputs[existing]}: output {existing!r} already exists in the store")
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
    if source_event:
        existing = session.scalar(select(Job).where(Job.source_event == source_event))
        if existing is not None:
            return existing, False
    outputs = compiled.outputs()
    outputs.update(compiled.deferred_outputs)
    uploads = check(session, outputs, compiled.external_inputs, stat)
    job = Job(name=compiled.job_name, working_directory=compiled.working_directory,
              source_event=source_event, spec=spec if spec is not None else {})
    try:
        with session.begin_nested():
            session.add(job)
            session.flush()
    except IntegrityError:
        return session.scalar(select(Job).where(Job.source_event == source_event)), False
    record_uploads(session, uploads)
    insert_tree(session, job.id, job.name, compiled.roots)
    return job, True


def task_row(node: PlannedTask, job_id: int, job_name: str, parent_id: int | None, now) -> dict:
    params = node.params
    extra = {}
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


def insert_tree(session: Session, job_id: int, job_name: str, roots: list[PlannedTask],
                parent_id: int | None = None) -> list[int]:
    """Insert ``roots`` and their descendants under ``parent_id``; return the new task ids in
    tree order (level by level)."""
    now = utcnow()
    ids: dict[int, int] = {}
    order: list[PlannedTask] = []
    level = [(node, parent_id) for node in roots]
    while level:
        for part in _chunks(level, ROWS_PER_STATEMENT):
            rows = [task_row(node, job_id, job_name, parent, now) for node, parent in part]
            new = session.execute(insert(Task).returning(Task.id, sort_by_parameter_order=True), rows).scalars().all()
            for (node, _), task_id in zip(part, new):
                ids[id(node)] = task_id
                order.append(node)
        level = [(child, ids[id(node)]) for node, _ in level for child in node.children]
    inputs, outputs, sources = [], [], []
    for node in order:
        task_id = ids[id(node)]
        inputs.extend({"task_id": task_id, "semantic_name": s, "key": k} for s, k in node.inputs.items())
        outputs.extend({"task_id": task_id, "semantic_name": s, "key": k} for s, k in node.outputs.items())
        sources.extend({"task_id": task_id, "source_task_id": ids[id(r)]} for r in node.requires)
    for model, rows in ((TaskInput, inputs), (TaskOutput, outputs), (TaskMetadataInput, sources)):
        for part in _chunks(rows, ROWS_PER_STATEMENT * 5):
            session.execute(insert(model), part)
    return [ids[id(node)] for node in order]
