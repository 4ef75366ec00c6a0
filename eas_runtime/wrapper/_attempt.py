"""Database steps of one attempt: start it (at most once), read its task, record its end.

Each step is one write transaction of prebuilt Core statements (no ORM objects): starting an
attempt is a read of the attempt with its task and job, the compare-and-set that marks it
running, and one query for the task's inputs, outputs and metadata sources; finishing is the
attempt's products, metadata and log lines as bulk inserts and the two state updates.
"""
from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import (Integer, String, bindparam, cast, delete, insert, literal_column, null, select, union_all,
                        update)

from eas_runtime.db import metadata as md
from eas_runtime.db.models import (A_FINISHED, A_QUEUED, A_RUNNING, CANCELLED, DONE, FAILED,
                                   QUEUED, RUNNING, Attempt, AttemptInput, CatalogueEntry, Job, LogMessage, Product,
                                   ProductVersion, Task, TaskInput, TaskMetadataInput, TaskOutput,
                                   utcnow)
from eas_runtime.db.products import ensure_product_id


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
    #: semantic name -> the version read: (the store's version id or None, ETag or "")
    input_versions: dict[str, tuple[str | None, str]] = field(default_factory=dict)


A, T, J = Attempt.__table__, Task.__table__, Job.__table__
_ATTEMPT = (select(A.c.task_id, A.c.state, A.c.number, T.c.job_id, T.c.task_type, T.c.name,
                   T.c.working_directory, T.c.params, T.c.state.label("task_state"), J.c.cancelled)
            .select_from(A.join(T, T.c.id == A.c.task_id).join(J, J.c.id == T.c.job_id))
            .where(A.c.id == bindparam("attempt_id")))
_CANCEL = (update(A).where(A.c.id == bindparam("attempt_id"), A.c.state == A_QUEUED)
           .values(state=A_FINISHED, ended_at=bindparam("now"), error=True, error_kind="cancelled",
                   error_text="job cancelled before the attempt started"))
_RUN = (update(A).where(A.c.id == bindparam("attempt_id"), A.c.state == A_QUEUED)
        .values(state=A_RUNNING, started_at=bindparam("now"), heartbeat_at=bindparam("now"),
                host=bindparam("host"), pid=bindparam("pid")))
_TASK_RUNNING = update(T).where(T.c.id == bindparam("task_id"), T.c.state == QUEUED).values(state=RUNNING)
# Inputs ("i", name, key, pinned version id), outputs ("o", name, key) and metadata sources
# ("m", name, source task id) at once.
_I, _O, _M = TaskInput.__table__, TaskOutput.__table__, TaskMetadataInput.__table__
_PARTS = union_all(
    select(literal_column("'i'", String).label("kind"), _I.c.semantic_name.label("name"), _I.c.key.label("key"),
           _I.c.version_id.label("source_id")).where(_I.c.task_id == bindparam("task_id")),
    select(literal_column("'o'", String), _O.c.semantic_name, _O.c.key, cast(null(), Integer))
    .where(_O.c.task_id == bindparam("task_id")),
    select(literal_column("'m'", String), T.c.name, cast(null(), String), T.c.id)
    .select_from(_M.join(T, T.c.id == _M.c.source_task_id)).where(_M.c.task_id == bindparam("task_id")))
_MD = md.TABLE
_P, _V = Product.__table__, ProductVersion.__table__
_LATEST_VERSION = (select(_V.c.id, _V.c.etag, _V.c.object_version).join(_P, _P.c.id == _V.c.product_id)
                   .where(_P.c.key == bindparam("key"), _V.c.passed_qc.is_(True))
                   .order_by(_V.c.id.desc()).limit(1))
_PINNED_VERSION = select(_V.c.id, _V.c.etag, _V.c.object_version).where(_V.c.id == bindparam("version_id"))
_INPUT_METADATA = select(_MD.c.key, _MD.c.value).where(
    _MD.c.owner_kind == "version", _MD.c.owner_id == bindparam("version_id"))
_READ = insert(AttemptInput.__table__)
_SOURCE_METADATA = select(_MD.c.key, _MD.c.value).where(
    _MD.c.owner_kind == "attempt",
    _MD.c.owner_id == (select(A.c.id).where(A.c.task_id == bindparam("source_id"), A.c.state == A_FINISHED,
                                            A.c.error.is_(False))
                       .order_by(A.c.number.desc()).limit(1).scalar_subquery()))


def start(db, task_id: int, attempt_id: int, host: str, pid: int) -> tuple[str, TaskSnapshot | None]:
    """Mark the attempt running. Returns ("run", snapshot) for the one caller that wins, or
    ("duplicate"|"cancelled", None) when the event was already handled or the job cancelled."""
    now = utcnow()
    with db.begin() as conn:
        row = conn.execute(_ATTEMPT, {"attempt_id": attempt_id}).first()
        if row is None or row.task_id != task_id:
            raise UnknownAttempt(f"no attempt {attempt_id} of task {task_id} in the task database")
        if row.state != A_QUEUED:
            return "duplicate", None
        if row.cancelled or row.task_state == CANCELLED:
            conn.execute(_CANCEL, {"attempt_id": attempt_id, "now": now})
            return "cancelled", None
        won = conn.execute(_RUN, {"attempt_id": attempt_id, "now": now, "host": host, "pid": pid})
        if won.rowcount != 1:
            return "duplicate", None
        conn.execute(_TASK_RUNNING, {"task_id": task_id})
        snap = TaskSnapshot(task_id=task_id, attempt_id=attempt_id, attempt_number=row.number,
                            job_id=row.job_id, task_type=row.task_type, name=row.name,
                            working_directory=row.working_directory, params=dict(row.params or {}),
                            inputs={}, outputs={})
        sources, pinned = [], {}
        for kind, name, key, source_id in conn.execute(_PARTS, {"task_id": task_id}):
            if kind == "i":
                snap.inputs[name] = key
                pinned[name] = source_id
            elif kind == "o":
                snap.outputs[name] = key
            else:
                sources.append((source_id, name))
        read = []
        for name, key in snap.inputs.items():
            # The version read: the pinned one (the upload that made the job), else the latest
            # that passed QC now. Its metadata, ETag and store version go with it, and the
            # attempt records which it was (provenance).
            version = (conn.execute(_PINNED_VERSION, {"version_id": pinned[name]}).first()
                       if pinned.get(name) is not None else None)
            if version is None:
                version = conn.execute(_LATEST_VERSION, {"key": key}).first()
            if version is None:
                snap.input_metadata[name] = {}
                snap.input_versions[name] = (None, "")
                read.append({"attempt_id": attempt_id, "semantic_name": name, "key": key, "version_id": None,
                             "etag": "", "object_version": None})
                continue
            snap.input_metadata[name] = dict(conn.execute(_INPUT_METADATA, {"version_id": version.id}).all())
            snap.input_versions[name] = (version.object_version, version.etag or "")
            read.append({"attempt_id": attempt_id, "semantic_name": name, "key": key, "version_id": version.id,
                         "etag": version.etag or "", "object_version": version.object_version})
        if read:
            conn.execute(_READ, read)
        for source_id, name in sources:
            snap.requested_metadata[name or str(source_id)] = dict(
                conn.execute(_SOURCE_METADATA, {"source_id": source_id}).all())
        return "run", snap


_REVERT = (update(A).where(A.c.id == bindparam("attempt_id"), A.c.state == A_RUNNING)
           .values(state=A_QUEUED, started_at=None, heartbeat_at=None))
_TASK_QUEUED = (update(T).where(T.c.id == select(A.c.task_id).where(A.c.id == bindparam("attempt_id"))
                                .scalar_subquery(), T.c.state == RUNNING).values(state=QUEUED))


def revert(db, attempt_id: int) -> None:
    """Put a running attempt back to queued (an outage stopped it before any work was done)."""
    with db.begin() as conn:
        conn.execute(_REVERT, {"attempt_id": attempt_id})
        conn.execute(_TASK_QUEUED, {"attempt_id": attempt_id})


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
    error_kind: str = ""          # "" on success; science | input | qc | parameters | timeout | environment
    error_text: str = ""
    metadata: dict[str, Any] = field(default_factory=dict)
    units: dict[str, str] = field(default_factory=dict)
    outputs: list[StoredOutput] = field(default_factory=list)
    logs: list[tuple[dt.datetime, str, str]] = field(default_factory=list)
    wall_s: float | None = None
    cpu_s: float | None = None
    cpu_children_s: float | None = None
    #: Vetted candidates for the catalogue (:class:`TaskResult.candidates`), None for none.
    candidates: list[dict[str, Any]] | None = None


_VERSION_OF = select(_V.c.id).where(_V.c.product_id == bindparam("product_id"),
                                    _V.c.attempt_id == bindparam("attempt_id"))
_NEW_VERSION = insert(_V).returning(_V.c.id)
_SET_VERSION = update(_V).where(_V.c.id == bindparam("version_id")).values(
    etag=bindparam("etag"), size=bindparam("size"), object_version=bindparam("object_version"),
    passed_qc=bindparam("passed_qc"))
_LOG = insert(LogMessage.__table__)
_END = update(A).where(A.c.id == bindparam("attempt_id")).values(
    state=A_FINISHED, ended_at=bindparam("now"), error=bindparam("failed"), error_kind=bindparam("error_kind"),
    error_text=bindparam("error_text"), all_products_passed_qc=bindparam("all_passed"),
    wall_s=bindparam("wall_s"), cpu_s=bindparam("cpu_s"), cpu_children_s=bindparam("cpu_children_s"))
# Only the newest attempt decides the task's state: a late finish of an attempt that was given
# up for lost must not overwrite the result of its successor.
_TASK_END = update(T).where(T.c.id == bindparam("task_id"), T.c.attempt_count == bindparam("number"),
                            T.c.state.in_((RUNNING, QUEUED))).values(state=bindparam("new_state"))


def finish(db, snap: TaskSnapshot, outcome: Outcome) -> str:
    """Record the attempt's end in one transaction; return the task's new state."""
    failed = bool(outcome.error_kind)
    all_passed = (not failed) and all(o.passed_qc for o in outcome.outputs)
    now = utcnow()
    input_star = _one_star(snap.input_metadata.values())
    with db.begin() as conn:
        output_stars = set()
        for out in outcome.outputs:
            product_id, new_product = ensure_product_id(conn, out.key, semantic_type=out.semantic_type,
                                                        generator_task_id=snap.task_id)
            star = _star_of(out.metadata) or input_star
            if star and not failed:
                output_stars.add(star)
                conn.execute(_SET_STAR, {"product_id": product_id, "new_star": star})
            values = {"etag": out.etag, "size": out.size, "object_version": out.object_version,
                      "passed_qc": out.passed_qc and not failed}
            version_id = None if new_product else conn.execute(
                _VERSION_OF, {"product_id": product_id, "attempt_id": snap.attempt_id}).scalar()
            if version_id is None:
                version_id = conn.execute(_NEW_VERSION, {"product_id": product_id, "attempt_id": snap.attempt_id,
                                                         "created_at": now, **values}).scalar_one()
                md.set_metadata(conn, "version", version_id, out.metadata, fresh=True)
            else:
                conn.execute(_SET_VERSION, {"version_id": version_id, **values})
                md.set_metadata(conn, "version", version_id, out.metadata)
        if len(output_stars) == 1 and not input_star and snap.inputs:
            # an upload read by ingest: it is of the star its light curve names
            conn.execute(_SET_STAR_BY_KEY, [{"input_key": key, "new_star": next(iter(output_stars))}
                                            for key in snap.inputs.values()])
        # The attempt's metadata is written here only, once: nothing to replace.
        warnings = md.set_metadata(conn, "attempt", snap.attempt_id, outcome.metadata, outcome.units, fresh=True)
        logs = [{"attempt_id": snap.attempt_id, "time": when, "severity": severity, "text": text}
                for when, severity, text in outcome.logs]
        logs += [{"attempt_id": snap.attempt_id, "time": now, "severity": "WARNING", "text": w} for w in warnings]
        if logs:
            conn.execute(_LOG, logs)
        conn.execute(_END, {"attempt_id": snap.attempt_id, "now": now, "failed": failed,
                            "error_kind": outcome.error_kind, "error_text": outcome.error_text,
                            "all_passed": all_passed, "wall_s": outcome.wall_s, "cpu_s": outcome.cpu_s,
                            "cpu_children_s": outcome.cpu_children_s})
        new_state = FAILED if (failed or not all_passed) else DONE
        ended = conn.execute(_TASK_END, {"task_id": snap.task_id, "number": snap.attempt_number,
                                         "new_state": new_state}).rowcount
        if ended and new_state == DONE and outcome.candidates is not None:
            write_catalogue(conn, snap, outcome.candidates, now)
        return new_state


_P = Product.__table__
_SET_STAR = update(_P).where(_P.c.id == bindparam("product_id")).values(star_id=bindparam("new_star"))
_SET_STAR_BY_KEY = update(_P).where(_P.c.key == bindparam("input_key"), _P.c.star_id == "").values(
    star_id=bindparam("new_star"))


def _star_of(metadata: dict[str, Any] | None) -> str:
    value = (metadata or {}).get("star_id")
    return str(value).strip()[:200] if value not in (None, "") else ""


def _one_star(metadatas) -> str:
    """The star all inputs that name one agree on, else ''."""
    stars = {_star_of(m) for m in metadatas} - {""}
    return next(iter(stars)) if len(stars) == 1 else ""


_C = CatalogueEntry.__table__
_CATALOGUE_COLUMNS = ("period", "epoch", "duration", "depth", "snr")


def _number(value: Any) -> float | None:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def write_catalogue(conn, snap: TaskSnapshot, rows: list[dict[str, Any]], now) -> None:
    """Replace the task's catalogue rows by ``rows`` (vetted candidates), in the attempt's
    transaction: a repeated or newer attempt leaves one set."""
    conn.execute(delete(_C).where(_C.c.task_id == snap.task_id))
    lightcurve = snap.inputs.get("lightcurve", "")
    star = snap.input_metadata.get("lightcurve", {}) or {}
    segments = star.get("n_segments") if star.get("stitched") else None
    star_id = _star_of(star)
    if segments and star_id:
        # a search of the whole star (all its segments) supersedes the earlier ones
        conn.execute(delete(_C).where(_C.c.star_id == star_id, _C.c.n_segments.is_not(None),
                                      _C.c.task_id != snap.task_id))
    if not rows:
        return
    values = []
    for row in rows:
        entry = {"task_id": snap.task_id, "attempt_id": snap.attempt_id, "job_id": snap.job_id,
                 "number": int(row["number"]), "kind": str(row.get("kind") or "periodic")[:20],
                 "star_id": str(row.get("star_id") or star.get("star_id") or "")[:200],
                 "star_name": str(row.get("star_name") or star.get("object") or "")[:200],
                 "mission": str(row.get("mission") or star.get("mission") or "")[:50],
                 "lightcurve_key": lightcurve[:1000],
                 "transit_count": row.get("transit_count"),
                 "verdict": str(row.get("verdict") or "")[:40],
                 "n_segments": int(segments) if segments else None,
                 "reasons": list(row.get("reasons") or []),
                 "details": {k: (_number(v) if isinstance(v, float) else v)
                             for k, v in row.items()},
                 "created_at": now}
        entry.update({k: _number(row.get(k)) for k in _CATALOGUE_COLUMNS})
        values.append(entry)
    conn.execute(insert(_C), values)
