"""The task database (SQLAlchemy 2.0): jobs, tasks, products, attempts, logs, metadata.

One schema serves SQLite (embedded default) and PostgreSQL (cluster). The prototype's tables
(PARITY.md section 4) map as follows: tasks, file products (``products``), product versions,
execution attempts, log messages, key/value metadata, task inputs and metadata inputs. Added:
jobs, watch rules, dead letters, processed events (idempotency) and the local broker's
delivery queue.
"""
from __future__ import annotations

import datetime as dt
import json
from typing import TYPE_CHECKING, Any, ClassVar, Optional

from sqlalchemy import (JSON, BigInteger, Boolean, DateTime, Float, ForeignKey, Index, Integer,
                        String, Table, Text, UniqueConstraint)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship
from sqlalchemy.types import TypeDecorator


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


class UTCDateTime(TypeDecorator):
    """A timezone-aware UTC datetime on every backend (SQLite stores it without the zone)."""
    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value, dialect):
        if value is not None and value.tzinfo is not None:
            value = value.astimezone(dt.timezone.utc)
            if dialect.name == "sqlite":
                value = value.replace(tzinfo=None)
        return value

    def process_result_value(self, value, dialect):
        if value is not None and value.tzinfo is None:
            value = value.replace(tzinfo=dt.timezone.utc)
        return value


class JSONText(TypeDecorator):
    """A JSON value kept as text on every backend.

    SQLite gives a column declared JSON numeric affinity, so a scalar such as ``50.0`` would be
    stored as the integer 50 and read back as an int; as TEXT it keeps its type."""
    impl = Text
    cache_ok = True

    def process_bind_param(self, value, dialect):
        return None if value is None else json.dumps(value, allow_nan=False)

    def process_result_value(self, value, dialect):
        return None if value is None else json.loads(value)


class Base(DeclarativeBase):
    type_annotation_map = {dt.datetime: UTCDateTime(), Any: JSON}

    if TYPE_CHECKING:
        # Every model maps one Table (SQLAlchemy types __table__ as any FromClause, which
        # would also allow a join): insert(), update() and .c take it as a Table.
        __table__: ClassVar[Table]


# Task states (tasks.state). A task moves waiting -> queued -> running -> done | failed; a
# retry takes failed/stalled back to queued with a new attempt; cancelled is final.
WAITING, QUEUED, RUNNING, DONE, FAILED, CANCELLED = (
    "waiting", "queued", "running", "done", "failed", "cancelled")
TASK_STATES = (WAITING, QUEUED, RUNNING, DONE, FAILED, CANCELLED)
# Attempt states (attempts.state).
A_QUEUED, A_RUNNING, A_FINISHED = "queued", "running", "finished"


class Job(Base):
    __tablename__ = "jobs"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(200), default="")
    working_directory: Mapped[str] = mapped_column(String(500), default="")
    #: ``source`` + ``id`` of the event that created the job: a duplicate submission is a no-op.
    source_event: Mapped[Optional[str]] = mapped_column(String(300), unique=True)
    spec: Mapped[Any] = mapped_column(JSON, default=dict)
    cancelled: Mapped[bool] = mapped_column(Boolean, default=False)
    #: Why the job was refused at submission (an unserved task type, outputs another job plans);
    #: NULL for an accepted job. A refused job has no tasks; its row keeps the refusal visible
    #: and makes a duplicate delivery of the same event a no-op.
    rejection: Mapped[Optional[str]] = mapped_column(Text)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    tasks: Mapped[list["Task"]] = relationship(back_populates="job", cascade="all, delete-orphan")


class Task(Base):
    __tablename__ = "tasks"
    __table_args__ = (Index("ix_tasks_job_type", "job_id", "task_type"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    job_id: Mapped[int] = mapped_column(ForeignKey("jobs.id", ondelete="CASCADE"), index=True)
    parent_id: Mapped[Optional[int]] = mapped_column(ForeignKey("tasks.id", ondelete="CASCADE"), index=True)
    #: Position in the job description, e.g. ``task_list[2].task_list[0]``.
    path: Mapped[str] = mapped_column(String(500), default="")
    name: Mapped[str] = mapped_column(String(200), default="")
    task_type: Mapped[str] = mapped_column(String(100), index=True)
    working_directory: Mapped[str] = mapped_column(String(500), default="")
    params: Mapped[Any] = mapped_column(JSON, default=dict)
    fully_configured: Mapped[bool] = mapped_column(Boolean, default=True)
    state: Mapped[str] = mapped_column(String(16), default=WAITING, index=True)
    #: Number of attempts claimed so far; the claim is a compare-and-set on this column.
    attempt_count: Mapped[int] = mapped_column(Integer, default=0)
    #: Science failures are retried only when the job asks for it.
    retry_science_failures: Mapped[bool] = mapped_column(Boolean, default=False)
    #: A task being retried after a lost attempt waits until then (backoff).
    retry_at: Mapped[Optional[dt.datetime]] = mapped_column()
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)

    job: Mapped[Job] = relationship(back_populates="tasks")
    inputs: Mapped[list["TaskInput"]] = relationship(cascade="all, delete-orphan")
    outputs: Mapped[list["TaskOutput"]] = relationship(cascade="all, delete-orphan")
    attempts: Mapped[list["Attempt"]] = relationship(
        back_populates="task", cascade="all, delete-orphan", order_by="Attempt.number")


class TaskInput(Base):
    __tablename__ = "task_inputs"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    task_id: Mapped[int] = mapped_column(ForeignKey("tasks.id", ondelete="CASCADE"), index=True)
    semantic_name: Mapped[str] = mapped_column(String(100))
    key: Mapped[str] = mapped_column(String(1000), index=True)
    #: The version this input is pinned to: the upload that made the job (a watch rule's job
    #: reads the content that triggered it, whatever was written to the key since). ``None``:
    #: the latest QC-passed version when the attempt starts.
    version_id: Mapped[Optional[int]] = mapped_column(ForeignKey("product_versions.id", ondelete="SET NULL"))


class AttemptInput(Base):
    """Provenance: the exact version of each input an attempt read."""
    __tablename__ = "attempt_inputs"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    attempt_id: Mapped[int] = mapped_column(ForeignKey("attempts.id", ondelete="CASCADE"), index=True)
    semantic_name: Mapped[str] = mapped_column(String(100))
    key: Mapped[str] = mapped_column(String(1000))
    version_id: Mapped[Optional[int]] = mapped_column(ForeignKey("product_versions.id", ondelete="SET NULL"))
    etag: Mapped[str] = mapped_column(String(100), default="")
    object_version: Mapped[Optional[str]] = mapped_column(String(200))


class TaskOutput(Base):
    __tablename__ = "task_outputs"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    task_id: Mapped[int] = mapped_column(ForeignKey("tasks.id", ondelete="CASCADE"), index=True)
    semantic_name: Mapped[str] = mapped_column(String(100))
    #: An object key is produced by one task only.
    key: Mapped[str] = mapped_column(String(1000), unique=True)


class TaskMetadataInput(Base):
    __tablename__ = "task_metadata_inputs"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    task_id: Mapped[int] = mapped_column(ForeignKey("tasks.id", ondelete="CASCADE"), index=True)
    source_task_id: Mapped[int] = mapped_column(ForeignKey("tasks.id", ondelete="CASCADE"), index=True)


class Product(Base):
    """A planned or existing file: one per object key."""
    __tablename__ = "products"
    __table_args__ = (Index("ix_products_directory_filename", "directory", "filename"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    key: Mapped[str] = mapped_column(String(1000), unique=True)
    directory: Mapped[str] = mapped_column(String(1000), index=True)
    filename: Mapped[str] = mapped_column(String(500))
    semantic_type: Mapped[str] = mapped_column(String(100), default="")
    mime_type: Mapped[str] = mapped_column(String(100), default="application/octet-stream")
    generator_task_id: Mapped[Optional[int]] = mapped_column(ForeignKey("tasks.id", ondelete="SET NULL"))
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    #: The star the file is of (``TIC 38846515``...; '' unknown): from the light curve's own
    #: metadata, else from the inputs of the attempt that wrote it (eas_runtime.wrapper).
    star_id: Mapped[str] = mapped_column(String(200), default="", server_default="", index=True)
    versions: Mapped[list["ProductVersion"]] = relationship(
        back_populates="product", cascade="all, delete-orphan", order_by="ProductVersion.id")


class ProductVersion(Base):
    """An actual file: an object version written by an attempt or uploaded from outside."""
    __tablename__ = "product_versions"
    __table_args__ = (UniqueConstraint("product_id", "attempt_id", name="uq_version_attempt"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    product_id: Mapped[int] = mapped_column(ForeignKey("products.id", ondelete="CASCADE"), index=True)
    attempt_id: Mapped[Optional[int]] = mapped_column(ForeignKey("attempts.id", ondelete="SET NULL"))
    #: Id of the ``product.created`` event for uploads: a repeated notification is a no-op.
    event_id: Mapped[Optional[str]] = mapped_column(String(100), unique=True)
    etag: Mapped[str] = mapped_column(String(100), default="")
    size: Mapped[int] = mapped_column(BigInteger, default=0)
    object_version: Mapped[Optional[str]] = mapped_column(String(200))
    passed_qc: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    product: Mapped[Product] = relationship(back_populates="versions")


class Attempt(Base):
    __tablename__ = "attempts"
    __table_args__ = (UniqueConstraint("task_id", "number", name="uq_attempt_number"),
                      Index("ix_attempts_state_heartbeat", "state", "heartbeat_at"))
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    task_id: Mapped[int] = mapped_column(ForeignKey("tasks.id", ondelete="CASCADE"), index=True)
    number: Mapped[int] = mapped_column(Integer)
    state: Mapped[str] = mapped_column(String(16), default=A_QUEUED)
    queued_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    #: When ``task.ready`` was last sent for this attempt (the reconcile tick resends it).
    sent_at: Mapped[Optional[dt.datetime]] = mapped_column()
    #: Sends of ``task.ready`` for this attempt after which no attempt at all started or
    #: heartbeat: its function took nothing. The reconcile tick gives the attempt up at
    #: ``settings.max_unanswered_sends`` (a wait while others run never counts).
    unanswered_sends: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    started_at: Mapped[Optional[dt.datetime]] = mapped_column()
    ended_at: Mapped[Optional[dt.datetime]] = mapped_column()
    heartbeat_at: Mapped[Optional[dt.datetime]] = mapped_column()
    host: Mapped[str] = mapped_column(String(200), default="")
    pid: Mapped[Optional[int]] = mapped_column(Integer)
    error: Mapped[bool] = mapped_column(Boolean, default=False)
    #: ``science`` (the code raised), ``environment`` (a package it needs is not installed),
    #: ``infrastructure`` (lost, stalled), ``input`` (bad input),
    #: ``timeout`` (ran past the request limit), ``qc``, ``parameters`` or ``cancelled``.
    error_kind: Mapped[str] = mapped_column(String(20), default="")
    error_text: Mapped[str] = mapped_column(Text, default="")
    all_products_passed_qc: Mapped[Optional[bool]] = mapped_column(Boolean)
    wall_s: Mapped[Optional[float]] = mapped_column(Float)
    cpu_s: Mapped[Optional[float]] = mapped_column(Float)
    cpu_children_s: Mapped[Optional[float]] = mapped_column(Float)
    task: Mapped[Task] = relationship(back_populates="attempts")


class LogMessage(Base):
    __tablename__ = "log_messages"
    __table_args__ = (Index("ix_log_messages_severity_time", "severity", "time"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    attempt_id: Mapped[Optional[int]] = mapped_column(ForeignKey("attempts.id", ondelete="CASCADE"), index=True)
    time: Mapped[dt.datetime] = mapped_column(default=utcnow, index=True)
    severity: Mapped[str] = mapped_column(String(10), default="INFO", index=True)
    text: Mapped[str] = mapped_column(Text)


class MetadataItem(Base):
    """Typed key/value metadata on a task, attempt, product or product version."""
    __tablename__ = "metadata_items"
    __table_args__ = (UniqueConstraint("owner_kind", "owner_id", "key", name="uq_metadata_owner_key"),
                      Index("ix_metadata_owner", "owner_kind", "owner_id"))
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    owner_kind: Mapped[str] = mapped_column(String(10))
    owner_id: Mapped[int] = mapped_column(Integer)
    key: Mapped[str] = mapped_column(String(200))
    #: JSON keeps numbers as numbers and strings as strings; non-finite floats become null.
    value: Mapped[Any] = mapped_column(JSONText, nullable=True)
    unit: Mapped[str] = mapped_column(String(20), default="")


class WatchRule(Base):
    """Objects landing under ``prefix`` each get a job: a chain of task types or a template."""
    __tablename__ = "watch_rules"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    prefix: Mapped[str] = mapped_column(String(500), unique=True)
    task_types: Mapped[Any] = mapped_column(JSON, default=list)
    job_template: Mapped[Any] = mapped_column(JSON, nullable=True)
    params: Mapped[Any] = mapped_column(JSON, default=dict)
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class DeadLetter(Base):
    """An event or record that could not be processed, kept with the reason."""
    __tablename__ = "dead_letters"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    time: Mapped[dt.datetime] = mapped_column(default=utcnow, index=True)
    component: Mapped[str] = mapped_column(String(50))
    reason: Mapped[str] = mapped_column(Text)
    event_id: Mapped[str] = mapped_column(String(200), default="")
    event_type: Mapped[str] = mapped_column(String(200), default="")
    payload: Mapped[str] = mapped_column(Text, default="")


class ProcessedEvent(Base):
    """Events a handler has fully processed, by ``source`` + ``id``."""
    __tablename__ = "processed_events"
    handler: Mapped[str] = mapped_column(String(50), primary_key=True)
    event_key: Mapped[str] = mapped_column(String(300), primary_key=True)
    time: Mapped[dt.datetime] = mapped_column(default=utcnow)


class Delivery(Base):
    """The embedded broker's durable queue: one row per (event, trigger)."""
    __tablename__ = "deliveries"
    # No uniqueness on (event, trigger): like Knative's broker, this one delivers every event it
    # is given, and receivers recognise duplicates. The reconcile tick relies on that to resend.
    __table_args__ = (Index("ix_deliveries_state_due", "state", "due_at"),
                      Index("ix_deliveries_event", "event_key"))
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    event_key: Mapped[str] = mapped_column(String(300))
    event_type: Mapped[str] = mapped_column(String(200), default="")
    trigger: Mapped[str] = mapped_column(String(200))
    #: The event in structured JSON form.
    payload: Mapped[str] = mapped_column(Text)
    state: Mapped[str] = mapped_column(String(16), default="pending")  # pending|delivered|dead
    tries: Mapped[int] = mapped_column(Integer, default=0)
    due_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    last_error: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class CatalogueEntry(Base):
    """A vetted transit candidate of a star (the catalogue): one row per candidate of the
    newest successful attempt of a ``vetting`` task; a newer attempt's rows replace them.

    Numbers in the units of :mod:`eas_runtime.planets`: ``period``, ``epoch``, ``duration`` [d],
    ``depth`` [ppm]. ``details`` holds the whole vetted row (metrics, flags, notes)."""
    __tablename__ = "candidates"
    __table_args__ = (UniqueConstraint("task_id", "number", name="uq_candidate_task_number"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    task_id: Mapped[int] = mapped_column(ForeignKey("tasks.id", ondelete="CASCADE"), index=True)
    attempt_id: Mapped[Optional[int]] = mapped_column(ForeignKey("attempts.id", ondelete="SET NULL"))
    job_id: Mapped[Optional[int]] = mapped_column(Integer, index=True)
    number: Mapped[int] = mapped_column(Integer)
    star_id: Mapped[str] = mapped_column(String(200), default="", index=True)
    star_name: Mapped[str] = mapped_column(String(200), default="")
    mission: Mapped[str] = mapped_column(String(50), default="")
    lightcurve_key: Mapped[str] = mapped_column(String(1000), default="")
    kind: Mapped[str] = mapped_column(String(20), default="periodic")
    period: Mapped[Optional[float]] = mapped_column(Float, index=True)
    epoch: Mapped[Optional[float]] = mapped_column(Float)
    duration: Mapped[Optional[float]] = mapped_column(Float)
    depth: Mapped[Optional[float]] = mapped_column(Float)
    snr: Mapped[Optional[float]] = mapped_column(Float, index=True)
    transit_count: Mapped[Optional[int]] = mapped_column(Integer)
    verdict: Mapped[str] = mapped_column(String(40), default="", index=True)
    #: Segments of the stitched star light curve searched (None: one file). A newer search of
    #: a stitched star replaces the rows of the older ones.
    n_segments: Mapped[Optional[int]] = mapped_column(Integer, nullable=True)
    reasons: Mapped[Any] = mapped_column(JSONText, nullable=True)
    details: Mapped[Any] = mapped_column(JSONText, nullable=True)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
