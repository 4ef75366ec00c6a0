"""Candidates as a table: ECSV products (astropy), CSV and VOTable exports.

A candidates table has one row per candidate with the columns of :data:`COLUMNS` (units in
:data:`UNITS`); vetted tables add ``verdict``, ``reasons``, ``flags`` and ``notes`` (text, items
joined by ``"; "``) and the metrics of :mod:`.vetting`. The table's ``meta`` holds the star and
the provenance (task type, input product, search settings).
"""
from __future__ import annotations

import io
import json
import math
import warnings
from pathlib import Path
from typing import Any, Iterable, Mapping

import numpy as np
from astropy.units import UnitsWarning

from eas_runtime.task_api import InputError

#: Columns of a candidates table, in order.
COLUMNS = ("number", "kind", "period", "epoch", "duration", "depth", "depth_err", "snr",
           "snr_white", "red_noise", "sde", "power", "transit_count", "round", "found_by")
TEXT_COLUMNS = {"kind", "found_by", "verdict", "reasons", "flags", "notes", "star_id",
                "mission", "star_name"}
INT_COLUMNS = {"number", "transit_count", "round", "n_transits", "alias_of", "id", "task_id",
               "attempt_id", "job_id"}
#: Units of the columns that have one.
UNITS = {"period": "d", "epoch": "d", "duration": "d", "depth": "ppm", "depth_err": "ppm",
         "secondary_depth": "ppm", "max_occultation_depth": "ppm", "expected_duration": "d",
         "odd_depth": "ppm", "even_depth": "ppm"}
LIST_SEPARATOR = "; "


def _kind(name: str, values: list[Any]) -> str:
    """``text``, ``int`` or ``float``: the known columns by name, others by their values."""
    if name in TEXT_COLUMNS:
        return "text"
    if name in INT_COLUMNS:
        return "int"
    present = [v for v in values if v is not None]
    if any(isinstance(v, (str, list, tuple, dict)) for v in present):
        return "text"
    if present and all(isinstance(v, (int, np.integer)) and not isinstance(v, bool)
                       for v in present):
        return "int"
    return "float"


def _cell(kind: str, value: Any) -> Any:
    if kind == "text":
        if isinstance(value, (list, tuple)):
            return LIST_SEPARATOR.join(str(v) for v in value)
        return "" if value is None else str(value)
    if kind == "int":
        return -1 if value is None else int(value)
    return math.nan if value is None else float(value)


def to_table(rows: Iterable[Mapping[str, Any]], meta: Mapping[str, Any] | None = None):
    """An astropy Table of ``rows`` (flat mappings), the known columns first, with units.
    Integers missing are -1, numbers missing NaN, text missing ''; a column of other names is
    text when any value is text, integer when all are integers, else float."""
    from astropy.table import Table

    rows = list(rows)
    names = [c for c in COLUMNS if any(c in r for r in rows)] if rows else list(COLUMNS)
    for row in rows:
        names += [k for k in row if k not in names]
    columns: list[np.ndarray] = []
    for name in names:
        raw = [row.get(name) for row in rows]
        kind = _kind(name, raw)
        values = [_cell(kind, v) for v in raw]
        dtype = {"text": str, "int": np.int64, "float": np.float64}[kind]
        columns.append(np.array(values, dtype=dtype) if values else np.array([], dtype=dtype))
    table = Table(columns, names=names, meta=dict(meta or {}))
    for name in names:
        if name in UNITS:
            table[name].unit = UNITS[name]
    return table


def write_ecsv(rows: Iterable[Mapping[str, Any]], path: str | Path,
               meta: Mapping[str, Any] | None = None) -> Path:
    """Write ``rows`` as an ECSV table (atomically)."""
    from eas_runtime.lightcurve._common import write_atomically

    buffer = io.StringIO()
    to_table(rows, meta).write(buffer, format="ascii.ecsv")
    path = Path(path)
    write_atomically(path, buffer.getvalue().encode())
    return path


def read_rows(path: str | Path) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """(rows, meta) of a candidates table written by :func:`write_ecsv`. Missing values come
    back as None; list columns (reasons, flags, notes) as lists. InputError names a file that is
    not such a table."""
    from astropy.table import Table

    try:
        with warnings.catch_warnings():   # 'ppm' is no astropy unit: kept as a string
            warnings.simplefilter("ignore", UnitsWarning)
            table = Table.read(str(path), format="ascii.ecsv")
    except Exception as exc:  # astropy raises many kinds for a malformed file
        raise InputError(f"{Path(path).name} is not a candidates table (ECSV): {exc}") from None
    missing = [c for c in ("number", "kind", "epoch", "duration", "depth", "snr")
               if c not in table.colnames]
    if missing:
        raise InputError(f"{Path(path).name} lacks the candidate column(s) {missing}")
    rows = []
    for record in table:
        row: dict[str, Any] = {}
        for name in table.colnames:
            value = record[name]
            if np.ma.is_masked(value):       # an empty text cell reads back masked
                value = "" if name in TEXT_COLUMNS else (-1 if name in INT_COLUMNS else math.nan)
            if name in ("reasons", "flags", "notes"):
                row[name] = [v for v in str(value).split(LIST_SEPARATOR) if v]
            elif name in TEXT_COLUMNS:
                row[name] = str(value)
            elif name in INT_COLUMNS:
                row[name] = None if int(value) < 0 else int(value)
            else:
                number = float(value)
                row[name] = number if math.isfinite(number) else None
        rows.append(row)
    return rows, dict(table.meta)


def export(rows: Iterable[Mapping[str, Any]], fmt: str, meta: Mapping[str, Any] | None = None
           ) -> bytes:
    """``rows`` as ``csv``, ``votable`` (astropy's VOTable writer) or ``json``."""
    rows = list(rows)
    if fmt == "json":
        return json.dumps(rows, indent=1, default=str).encode()
    table = to_table(rows, meta)
    if fmt == "csv":
        buffer = io.StringIO()
        table.write(buffer, format="ascii.csv")
        return buffer.getvalue().encode()
    if fmt == "votable":
        from astropy.io.votable import from_table

        table.meta = {k: v for k, v in table.meta.items() if isinstance(v, (str, int, float))}
        for name in table.colnames:       # VOUnit has no ppm (nor any scaled dimensionless)
            if UNITS.get(name) == "ppm":
                table[name].unit = None
                table[name].description = "parts per million of the normalised flux (ppm)"

        xml = io.BytesIO()
        from_table(table).to_xml(xml)
        return xml.getvalue()
    raise ValueError(f"unknown export format {fmt!r}: csv, votable or json")
