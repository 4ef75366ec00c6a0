"""Typed key/value metadata on tasks, attempts, products and product versions.

Numbers stay numbers, strings stay strings, booleans stay booleans; numpy scalars become Python
ones; a non-finite float is stored as null and reported back as a warning (JSON cannot hold it).
"""
from __future__ import annotations

import math
from typing import Any, Iterable, Mapping

from sqlalchemy import bindparam, delete, insert, select
from sqlalchemy.engine import Connection
from sqlalchemy.orm import Session

from eas_runtime.db.models import MetadataItem

OWNER_KINDS = ("task", "attempt", "product", "version")
TABLE = MetadataItem.__table__
# Built once: constructing a statement costs more Python than executing a cached one.
_DELETE_KEYS = delete(TABLE).where(TABLE.c.owner_kind == bindparam("kind"),
                                    TABLE.c.owner_id == bindparam("owner"),
                                    TABLE.c.key.in_(bindparam("keys", expanding=True)))
_INSERT = insert(TABLE)
_SELECT = select(TABLE.c.key, TABLE.c.value).where(TABLE.c.owner_kind == bindparam("kind"),
                                                     TABLE.c.owner_id == bindparam("owner"))


def normalise(value: Any) -> tuple[Any, str | None]:
    """A JSON-safe copy of ``value`` and a warning when something was lost."""
    if hasattr(value, "item") and callable(value.item) and getattr(value, "ndim", 1) == 0:
        value = value.item()  # numpy scalar
    if isinstance(value, bool) or value is None or isinstance(value, (int, str)):
        return value, None
    if isinstance(value, float):
        if math.isfinite(value):
            return value, None
        return None, f"non-finite value {value!r} stored as null"
    if isinstance(value, (list, tuple)) or (hasattr(value, "tolist") and callable(value.tolist)):
        items = value.tolist() if hasattr(value, "tolist") else value
        out, warnings = [], []
        for item in items:
            v, w = normalise(item)
            out.append(v)
            if w:
                warnings.append(w)
        return out, (warnings[0] if warnings else None)
    if isinstance(value, Mapping):
        mapped: dict[str, Any] = {}
        warnings = []
        for k, item in value.items():
            v, w = normalise(item)
            mapped[str(k)] = v
            if w:
                warnings.append(w)
        return mapped, (warnings[0] if warnings else None)
    return str(value), None


def set_metadata(session: Session | Connection, kind: str, owner_id: int, values: Mapping[str, Any],
                 units: Mapping[str, str] | None = None, *, fresh: bool = False) -> list[str]:
    """Store ``values`` (replacing keys already set; ``fresh``: the owner has none yet, nothing
    to replace); return warnings about lost values."""
    if kind not in OWNER_KINDS:
        raise ValueError(f"metadata owner kind {kind!r} is not one of {OWNER_KINDS}")
    if not values:
        return []
    units = units or {}
    rows, warnings = [], []
    for key, raw in values.items():
        value, warning = normalise(raw)
        if warning:
            warnings.append(f"metadata {key!r}: {warning}")
        rows.append({"owner_kind": kind, "owner_id": owner_id, "key": str(key)[:200], "value": value,
                     "unit": str(units.get(key, ""))[:20]})
    if not fresh:
        session.execute(_DELETE_KEYS, {"kind": kind, "owner": owner_id, "keys": [r["key"] for r in rows]})
    session.execute(_INSERT, rows)      # one executemany, no ORM objects
    return warnings


def get_metadata(session: Session | Connection, kind: str, owner_id: int) -> dict[str, Any]:
    rows = session.execute(_SELECT, {"kind": kind, "owner": owner_id}).all()
    return {k: v for k, v in rows}


def get_metadata_many(session: Session, kind: str, owner_ids: Iterable[int]) -> dict[int, dict[str, Any]]:
    ids = list(owner_ids)
    out: dict[int, dict[str, Any]] = {i: {} for i in ids}
    if not ids:
        return out
    rows = session.execute(select(MetadataItem.owner_id, MetadataItem.key, MetadataItem.value).where(
        MetadataItem.owner_kind == kind, MetadataItem.owner_id.in_(ids))).all()
    for owner, key, value in rows:
        out[owner][key] = value
    return out


def get_units_many(session: Session, kind: str, owner_ids: Iterable[int]) -> dict[int, dict[str, str]]:
    """``{owner: {key: unit}}`` of the items that have a unit, in one query."""
    ids = list(owner_ids)
    out: dict[int, dict[str, str]] = {i: {} for i in ids}
    if ids:
        for owner, key, unit in session.execute(select(MetadataItem.owner_id, MetadataItem.key, MetadataItem.unit)
                                                .where(MetadataItem.owner_kind == kind,
                                                       MetadataItem.owner_id.in_(ids), MetadataItem.unit != "")):
            out[owner][key] = unit
    return out


def get_units(session: Session, kind: str, owner_id: int) -> dict[str, str]:
    rows = session.execute(select(MetadataItem.key, MetadataItem.unit).where(
        MetadataItem.owner_kind == kind, MetadataItem.owner_id == owner_id,
        MetadataItem.unit != "")).all()
    return {k: u for k, u in rows}
