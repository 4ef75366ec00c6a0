"""Database steps of one attempt: start it (at most once), read its task, record its end."""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select, update

from eas_runtime.db import metadata as md
from eas_runtime.db.models import (A_FINISHED, A_QUEUED, A_RUNNING, CANCELLED, DONE, FAILED,
                                   QUEUED, RUNNING, Attempt, Job, LogMessage, ProductVersion,
                                   Task, TaskInput, TaskMetadataInput, TaskOutput, utcnow)
from eas_runtime.db.products import ensure_product, latest_passed_version


class UnknownAttempt(LookupError):
    pass


@dataclass
class TaskSnapshot:
    task_id: int
    attempt_id: int
    attempt_number: int
    job_id: int
    task_type: str
    name: str
    working_directory: str
    params: dict[str, Any]
    inputs: dict[str, str]                      # semantic name -> object key
    outputs: dict[str, str]                     # semantic name -> object key
    input_metadata: dict[str, dict[str, Any]] = field(default_factory=dict)
    requested_metadata: dict[str, dict[str, Any]] = field(default_factory=dict)


def start(db, task_id: int, attempt_id: int, host: str, pid: int) -> tuple[str, TaskSnapshot | None]:
    """Mark the attempt running. Returns ("run", snapshot) for the one caller that wins, or
    ("duplicate"|"cancelled", None) when the event was already handled or the job cancelled."""
    now = utcnow()
    with db.session() as s:
        attempt = s.get(Attempt, attempt_id)
        if attempt is None or attempt.task_id != task_id:
            raise UnknownAttempt(f"no attempt {attempt_id} of task {task_id} in the task database")
        task = s.get(Task, task_id)
        job = s.get(Job, task.job_id)
        if attempt.state != A_QUEUED:
            return "duplicate", None
        if job.cancelled or task.state == CANCELLED:
            s.execute(update(Attempt).where(Attempt.id == attempt_id, Attempt.state == A_QUEUED)
                      .values(state=A_FINISHED, ended_at=now, error=True, error_kind="cancelled",
                              error_text="job cancelled before the attempt started"))
            return "cancelled", None
        won = s.execute(update(Attempt).where(Attempt.id == attempt_id, Attempt.state == A_QUEUED)
                        .values(state=A_RUNNING, started_at=now, heartbeat_at=now, host=host, pid=pid))
        if won.rowcount != 1:
            return "duplicate", None
        s.execute(update(Task).where(Task.id == task_id, Task.state == QUEUED).values(state=RUNNING))
        inputs = {i.semantic_name: i.key for i in s.scalars(select(TaskInput).where(TaskInput.task_id == task_id))}
        outputs = {o.semantic_name: o.key for o in s.scalars(select(TaskOutput).where(TaskOutput.task_id == task_id))}
        snap = TaskSnapshot(task_id=task_id, attempt_id=attempt_id, attempt_number=attempt.number,
                            job_id=task.job_id, task_type=task.task_type, name=task.name,
                            working_directory=task.working_directory, params=dict(task.params or {}),
                            inputs=inputs, outputs=outputs)
        for name, key in inputs.items():
            version = latest_passed_version(s, key)
            snap.input_metadata[name] = md.get_metadata(s, "version", version.id) if version else {}
        for source_id, source_name in s.execute(
                select(Task.id, Task.name).join(TaskMetadataInput, TaskMetadataInput.source_task_id == Task.id)
                .where(TaskMetadataInput.task_id == task_id)).all():
            best = s.scalar(select(Attempt).where(Attempt.task_id == source_id, Attempt.state == A_FINISHED,
                                                  Attempt.error.is_(False))
                            .order_by(Attempt.number.desc()).limit(1))
            snap.requested_metadata[source_name or str(source_id)] = (
                md.get_metadata(s, "attempt", best.id) if best else {})
        return "run", snap


def revert(db, attempt_id: int) -> None:
    """Put a running attempt back to queued (an outage stopped it before any work was done)."""
    with db.session() as s:
        s.execute(update(Attempt).where(Attempt.id == attempt_id, Attempt.state == A_RUNNING)
                  .values(state=A_QUEUED, started_at=None, heartbeat_at=None))
        attempt = s.get(Attempt, attempt_id)
        s.execute(update(Task).where(Task.id == attempt.task_id, Task.state == RUNNING).values(state=QUEUED))


@dataclass
class StoredOutput:
    name: str
    key: str
    semantic_type: str
    etag: str
    size: int
    object_version: str | None
    passed_qc: bool
    metadata: dict[str, Any]


@dataclass
class Outcome:
    error_kind: str = ""          # "" on success; science | input | qc | parameters
    error_text: str = ""
    metadata: dict[str, Any] = field(default_factory=dict)
    units: dict[str, str] = field(default_factory=dict)
    outputs: list[StoredOutput] = field(default_factory=list)
    logs: list[tuple[dt.datetime, str, str]] = field(default_factory=list)
    wall_s: float | None = None
    cpu_s: float | None = None
    cpu_children_s: float | None = None


def finish(db, snap: TaskSnapshot, outcome: Outcome) -> str:
    """Record the attempt's end in one transaction; return the task's new state."""
    failed = bool(outcome.error_kind)
    all_passed = (not failed) and all(o.passed_qc for o in outcome.outputs)
    with db.session() as s:
        for out in outcome.outputs:
            product = ensure_product(s, out.key, semantic_type=out.semantic_type,
                                     generator_task_id=snap.task_id)
            version = s.scalar(select(ProductVersion).where(ProductVersion.product_id == product.id,
                                                            ProductVersion.attempt_id == snap.attempt_id))
            if version is None:
                version = ProductVersion(product_id=product.id, attempt_id=snap.attempt_id)
                s.add(version)
            version.etag, version.size = out.etag, out.size
            version.object_version, version.passed_qc = out.object_version, out.passed_qc and not failed
            s.flush()
            md.set_metadata(s, "version", version.id, out.metadata)
        warnings = md.set_metadata(s, "attempt", snap.attempt_id, outcome.metadata, outcome.units)
        for when, severity, text in outcome.logs:
            s.add(LogMessage(attempt_id=snap.attempt_id, time=when, severity=severity, text=text))
        for warning in warnings:
            s.add(LogMessage(attempt_id=snap.attempt_id, severity="WARNING", text=warning))
        s.execute(update(Attempt).where(Attempt.id == snap.attempt_id).values(
            state=A_FINISHED, ended_at=utcnow(), error=failed, error_kind=outcome.error_kind,
            error_text=outcome.error_text, all_products_passed_qc=all_passed,
            wall_s=outcome.wall_s, cpu_s=outcome.cpu_s, cpu_children_s=outcome.cpu_children_s))
        new_state = FAILED if (failed or not all_passed) else DONE
        # Only the newest attempt decides the task's state: a late finish of an attempt that
        # was given up for lost must not overwrite the result of its successor.
        s.execute(update(Task).where(Task.id == snap.task_id, Task.attempt_count == snap.attempt_number,
                                     Task.state.in_((RUNNING, QUEUED))).values(state=new_state))
        return new_state
