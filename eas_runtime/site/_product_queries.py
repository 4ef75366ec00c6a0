"""Queries of the products area: a directory listing, one file with its versions, the searches
that read a file.

Every function reads in one read transaction with a fixed number of queries, whatever the
number of rows (no query per row), and returns JSON-ready dicts (times ISO 8601, UTC; sizes
in bytes; periods and epochs in days). Bad arguments raise :class:`DiagnosticsError` (400),
a missing file or directory :class:`NotFound` (404).

Directories are not stored: a product's ``directory`` column holds the part of its key
before the last ``/`` (``""`` at the top). The sub-directories of a prefix and their file
counts come from one ``GROUP BY`` over the first path segment below the prefix.
"""
from __future__ import annotations

import math
from typing import Any

from sqlalchemy import SQLColumnExpression, String, and_, func, literal_column, select
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.functions import FunctionElement

from eas_runtime.db import metadata as md
from eas_runtime.db.models import (Attempt, AttemptInput, MetadataItem, Product, ProductVersion, Task,
                                   TaskInput)
from eas_runtime.diagnostics._common import (
    DEFAULT_PAGE_SIZE,
    DiagnosticsError,
    NotFound,
    check_page,
    iso,
    paged,
)

#: Result fields of a search shown beside a file it read (units: days, except snr/outcome).
SEARCH_FIELDS = ("period", "epoch", "duration", "snr", "outcome")
#: Tasks listed as readers of one file, newest first.
MAX_READERS = 50


# ---------------------------------------------------------------------- SQL helpers
class _first_segment(FunctionElement):
    """The text before the first ``/`` of a string (all of it when it has none)."""
    type = String()
    inherit_cache = True
    name = "first_segment"


@compiles(_first_segment)
def _first_segment_default(element, compiler, **kw):  # PostgreSQL
    (arg,) = list(element.clauses)
    return f"split_part({compiler.process(arg, **kw)}, '/', 1)"


@compiles(_first_segment, "sqlite")
def _first_segment_sqlite(element, compiler, **kw):
    (arg,) = list(element.clauses)
    text = compiler.process(arg, **kw)
    return f"substr({text}, 1, instr({text} || '/', '/') - 1)"


def _under(column, prefix: str, dialect: str):
    """``column`` starts with ``prefix`` (which ends in ``/``), ``%`` and ``_`` taken literally.

    A LIKE with escaping on PostgreSQL (case-sensitive there). SQLite's LIKE ignores case and
    cannot use a plain index, so there the test is the equivalent range
    ``prefix <= column < prefix[:-1] + '0'`` ('0' follows '/'), exact under SQLite's binary
    collation and answered from the index on ``column``.
    """
    if dialect == "sqlite":
        return and_(column >= prefix, column < prefix[:-1] + "0")
    return column.startswith(prefix, autoescape=True)


def normalise_prefix(prefix: str | None) -> str:
    """``""`` for the top, else the directory path with one trailing ``/`` (``inbox/``)."""
    text = (prefix or "").strip()
    if not text:
        return ""
    if text.startswith("/"):
        raise DiagnosticsError(f"prefix {prefix!r} must be a directory path relative to the "
                               f"bucket, like inbox/ (no leading '/')")
    parts = text.rstrip("/").split("/")
    if any(part in ("", ".", "..") for part in parts):
        raise DiagnosticsError(f"prefix {prefix!r} is not a directory path like inbox/: "
                               f"it has an empty, '.' or '..' part")
    return "/".join(parts) + "/"


def _version(v: ProductVersion | None, number, task_id, task_type) -> dict | None:
    if v is None:
        return None
    return {"id": v.id, "size": v.size, "md5": v.etag, "created": iso(v.created_at),
            "passed_qc": bool(v.passed_qc), "attempt_id": v.attempt_id, "attempt": number,
            "task_id": task_id, "task_type": task_type, "object_version": v.object_version}


# ---------------------------------------------------------------------- listing
def listing(db, prefix: str | None = "", *, page: int = 0,
            page_size: int = DEFAULT_PAGE_SIZE) -> dict:
    """The sub-directories of ``prefix`` with their file counts (all files below them), then
    the files directly in it with their latest version, as one paged list (directories
    first, both by name). At most four queries.

    Items: ``{"kind": "directory", "name", "prefix", "files"}`` and ``{"kind": "file",
    "key", "name", "semantic_type", "generator_task_id", "versions", "latest"}`` (``latest``
    None for a planned file without a version). NotFound for a prefix nothing is under.
    """
    prefix = normalise_prefix(prefix)
    offset, limit = check_page(page, page_size)
    directory = prefix[:-1]
    with db.read() as s:
        dialect = s.get_bind().dialect.name
        rest: SQLColumnExpression[Any]
        if prefix:
            rest = func.substr(Product.directory, literal_column(str(len(prefix) + 1)))
            below = _under(Product.directory, prefix, dialect)
        else:
            rest, below = Product.directory, Product.directory != ""
        child = _first_segment(rest)
        groups = select(child.label("name"), func.count().label("files")).where(below) \
            .group_by(child)
        n_dirs = s.scalar(select(func.count(child.distinct())).where(below))
        n_files = s.scalar(select(func.count()).select_from(Product)
                           .where(Product.directory == directory))
        if prefix and not n_dirs and not n_files:
            raise NotFound(f"no products under {prefix!r}")
        items: list[dict] = []
        if offset < n_dirs:
            for name, count in s.execute(groups.order_by(child).offset(offset).limit(limit)):
                items.append({"kind": "directory", "name": name, "prefix": f"{prefix}{name}/",
                              "files": count})
        file_offset, file_limit = max(0, offset - n_dirs), limit - len(items)
        if file_limit > 0 and file_offset < n_files:
            items += _files(s, directory, file_offset, file_limit)
    parts = prefix.rstrip("/").split("/") if prefix else []
    crumbs = [{"name": part, "prefix": "/".join(parts[:i + 1]) + "/"} for i, part in enumerate(parts)]
    return paged(items, n_dirs + n_files, page, page_size, prefix=prefix,
                 parent=("/".join(parts[:-1]) + "/" if len(parts) > 1 else "") if parts else None,
                 breadcrumbs=crumbs, directories=n_dirs, files=n_files)


def _files(s, directory: str, offset: int, limit: int) -> list[dict]:
    """Files directly in ``directory`` with their latest version, its producing task and the
    number of versions: one query. The page's rows are chosen first (a walk of the index on
    (directory, filename)), so the joins and the correlated sub-queries (on the product_id
    index) run for those rows only, not for the whole directory."""
    pv = ProductVersion
    page = select(Product.id).where(Product.directory == directory) \
        .order_by(Product.filename).offset(offset).limit(limit).subquery()
    latest = select(func.max(pv.id)).where(pv.product_id == Product.id) \
        .correlate(Product).scalar_subquery()
    n_versions = select(func.count()).select_from(pv).where(pv.product_id == Product.id) \
        .correlate(Product).scalar_subquery()
    rows = s.execute(
        select(Product, pv, Attempt.number, Attempt.task_id, Task.task_type,
               n_versions.label("n_versions"))
        .join(page, page.c.id == Product.id)
        .outerjoin(pv, pv.id == latest)
        .outerjoin(Attempt, Attempt.id == pv.attempt_id)
        .outerjoin(Task, Task.id == Attempt.task_id)
        .order_by(Product.filename)).all()
    return [{"kind": "file", "key": p.key, "name": p.filename, "semantic_type": p.semantic_type,
             "generator_task_id": p.generator_task_id, "versions": n,
             "latest": _version(v, number, task_id, task_type)}
            for p, v, number, task_id, task_type, n in rows]


# ---------------------------------------------------------------------- one file
def file_detail(db, key: str, *, page: int = 0, page_size: int = DEFAULT_PAGE_SIZE) -> dict:
    """One file: the product, every version newest first (paged) with size, MD5, time,
    producing task and attempt, QC verdict and QC problems, and the tasks that read it with
    the results of the searches among them. Six queries."""
    offset, limit = check_page(page, page_size)
    pv = ProductVersion
    with db.read() as s:
        row = s.execute(select(Product, Task.task_type)
                        .outerjoin(Task, Task.id == Product.generator_task_id)
                        .where(Product.key == key)).first()
        if row is None:
            raise NotFound(f"no product with the key {key!r}")
        product, generator_type = row
        total = s.scalar(select(func.count()).select_from(pv).where(pv.product_id == product.id))
        rows = s.execute(select(pv, Attempt.number, Attempt.task_id, Task.task_type)
                         .outerjoin(Attempt, Attempt.id == pv.attempt_id)
                         .outerjoin(Task, Task.id == Attempt.task_id)
                         .where(pv.product_id == product.id)
                         .order_by(pv.id.desc()).offset(offset).limit(limit)).all()
        versions: list[dict] = []
        for r in rows:
            version = _version(*r)
            assert version is not None      # pv is selected, not outer-joined: never None
            versions.append(version)
        meta = md.get_metadata_many(s, "version", [v["id"] for v in versions])
        for v in versions:
            v["metadata"] = meta[v["id"]]
            v["qc_problems"] = meta[v["id"]].get("qc_problems") or []
        readers = _readers(s, key)
    out = {"key": product.key, "name": product.filename, "directory": product.directory,
           "semantic_type": product.semantic_type, "mime_type": product.mime_type,
           "generator_task_id": product.generator_task_id, "generator_task_type": generator_type,
           "created": iso(product.created_at), "readers": readers,
           "searches": _searches(readers)}
    return {"product": out, "versions": paged(versions, total, page, page_size)}


def _readers(s, key: str, task_id: int | None = None) -> list[dict]:
    """Tasks that read ``key`` (newest first, at most :data:`MAX_READERS`), each with the
    search results of its latest attempt that recorded a period and an epoch (``search``
    None when none did): two queries."""
    q = select(Task.id, Task.task_type, Task.state, TaskInput.semantic_name) \
        .join(TaskInput, TaskInput.task_id == Task.id).where(TaskInput.key == key)
    if task_id is not None:
        q = q.where(Task.id == task_id)
    tasks = s.execute(q.order_by(Task.id.desc()).limit(MAX_READERS)).all()
    ids = [t.id for t in tasks]
    found: dict[int, dict[int, dict[str, Any]]] = {}
    if ids:
        rows = s.execute(select(Attempt.task_id, Attempt.id, MetadataItem.key, MetadataItem.value)
                         .join(MetadataItem, and_(MetadataItem.owner_kind == "attempt",
                                                  MetadataItem.owner_id == Attempt.id))
                         .where(Attempt.task_id.in_(ids), MetadataItem.key.in_(SEARCH_FIELDS)))
        for tid, attempt_id, name, value in rows:
            found.setdefault(tid, {}).setdefault(attempt_id, {})[name] = value
    out = []
    for t in tasks:
        search = None
        for attempt_id in sorted(found.get(t.id, {}), reverse=True):
            values = found[t.id][attempt_id]
            if _positive(values.get("period")) and _finite(values.get("epoch")):
                search = {"attempt_id": attempt_id, **{f: values.get(f) for f in SEARCH_FIELDS}}
                break
        out.append({"task_id": t.id, "task_type": t.task_type, "state": t.state,
                    "input": t.semantic_name, "search": search})
    return out


def _searches(readers: list[dict]) -> list[dict]:
    return [{"task_id": r["task_id"], "task_type": r["task_type"], **r["search"]}
            for r in readers if r["search"]]


def searches(db, key: str, task_id: int | None = None) -> list[dict]:
    """Searches that read ``key`` (of task ``task_id`` only, when given), newest first:
    ``{"task_id", "task_type", "attempt_id", "period", "epoch", "duration", ...}``."""
    with db.read() as s:
        return _searches(_readers(s, key, task_id))


def version_info(db, version_id: int) -> dict:
    """One version with its product's key, name and semantic type; NotFound when unknown."""
    with db.read() as s:
        row = s.execute(select(ProductVersion, Product.key, Product.filename,
                               Product.semantic_type)
                        .join(Product, Product.id == ProductVersion.product_id)
                        .where(ProductVersion.id == version_id)).first()
    if row is None:
        raise NotFound(f"no product version {version_id}")
    v, key, filename, semantic_type = row
    return {"id": v.id, "key": key, "name": filename, "semantic_type": semantic_type,
            "md5": v.etag, "size": v.size, "object_version": v.object_version}


#: Task types whose output light curve is drawn over the light curve they read.
DETRENDERS = ("detrend",)


def detrend_source(db, version_id: int) -> dict | None:
    """The light curve a detrended version was made from: the version of input
    ``lightcurve`` that the detrend attempt which wrote it read (:func:`version_info` plus
    ``attempt_id``, the detrend attempt); None when no detrend task wrote the version or its
    attempt recorded no input version."""
    with db.read() as s:
        row = s.execute(select(ProductVersion.attempt_id, Task.task_type)
                        .join(Attempt, Attempt.id == ProductVersion.attempt_id)
                        .join(Task, Task.id == Attempt.task_id)
                        .where(ProductVersion.id == version_id)).first()
        if row is None or row.task_type not in DETRENDERS:
            return None
        read = s.scalar(select(AttemptInput.version_id)
                        .where(AttemptInput.attempt_id == row.attempt_id,
                               AttemptInput.semantic_name == "lightcurve",
                               AttemptInput.version_id.is_not(None))
                        .order_by(AttemptInput.id).limit(1))
    if read is None:
        return None
    return {**version_info(db, read), "attempt_id": row.attempt_id}


def _finite(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _positive(value) -> bool:
    return _finite(value) and value > 0
