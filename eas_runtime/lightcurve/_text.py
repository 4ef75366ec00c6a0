"""Text light curves: the prototype's 4-column format, LCSG CSV and plain tables.

All three share one tokeniser: ``#`` starts a comment, blank lines are skipped, cells are
separated by commas when the first data line has one and by whitespace otherwise, and a first
line made only of non-numeric cells is a header.
"""
from __future__ import annotations

import io
import itertools
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

import numpy as np

from ._common import FormatError, add_warning, build_lightcurve, parse_scalar
from .model import SECONDS_PER_DAY, LightCurve

#: ``np.savetxt``'s default ``%.18e`` cell, which every prototype file is made of.
_SAVETXT_CELL = re.compile(r"^[-+]?\d\.\d{18}e[-+]\d{2,3}$")
_LCSG_META = re.compile(r"^#\s*#(?P<key>[^=]+)=(?P<value>.*)$", re.MULTILINE)
_HEAD_LINES = 200
#: The line boundaries of ``str.splitlines``.
_LINE_BREAK = re.compile("\r\n|[\n\r\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029]")

_TIME_NAMES = ("time", "t", "bjd", "bjd_tdb", "btjd", "bkjd", "hjd", "jd", "mjd", "date")
_FLUX_NAMES = ("flux", "pdcsap_flux", "sap_flux", "f", "rel_flux", "norm_flux")
#: Each flux name's own uncertainty (``rel_flux_err`` beside ``rel_flux``), then the generic ones.
_ERR_NAMES = ("flux_err", "flux_error", "err", "error", "sigma", "uncertainty", "e_flux",
              "pdcsap_flux_err", "sap_flux_err", "rel_flux_err", "norm_flux_err", "dflux",
              "flux_unc")
#: Time-column names that say their system another way (``BJD_TDB``, as archives export it).
_TIME_SYSTEM_ALIASES = {"bjd_tdb": "bjd"}


def _is_number(cell: str) -> bool:
    try:
        float(cell)
    except ValueError:
        return False
    return True


def _strip_comment(line: str) -> str:
    return line.split("#", 1)[0].strip()


def _split(line: str, delimiter: str | None) -> list[str]:
    return [cell.strip() for cell in line.split(delimiter)]


def _lines(text: str) -> Iterator[str]:
    """The lines of ``text`` exactly as ``text.splitlines()`` gives them, one at a time.

    ``splitlines()`` of a whole file makes one string object per line at once: about 60 bytes
    for a 4-byte line such as ``0,0``, so 15 times the text, for readers that look at a few
    hundred lines or stop at the first bad one.
    """
    pos = 0
    for match in _LINE_BREAK.finditer(text):
        yield text[pos:match.start()]
        pos = match.end()
    if pos < len(text):
        yield text[pos:]


@dataclass
class TextLayout:
    """What the first lines of a text file say about the rest."""

    delimiter: str | None = None
    header: list[str] | None = None
    #: number of raw lines up to and including the header (to skip before the data)
    skip_lines: int = 0
    #: cells of the first data lines (at most a few hundred)
    rows: list[list[str]] = field(default_factory=list)
    has_lcsg_metadata: bool = False

    @property
    def n_columns(self) -> int:
        return len(self.rows[0]) if self.rows else (len(self.header) if self.header else 0)


def scan_layout(text: str, max_lines: int = _HEAD_LINES) -> TextLayout:
    """Look at the first ``max_lines`` lines of ``text``."""
    layout = TextLayout(has_lcsg_metadata=bool(_LCSG_META.search(text[:65536])))
    first_data_seen = False
    last_comment = None
    for number, line in enumerate(itertools.islice(_lines(text), max_lines), start=1):
        content = _strip_comment(line)
        if not content:
            if not first_data_seen and line.strip().startswith("#"):
                last_comment = line.strip().lstrip("#").strip()
            continue
        if not first_data_seen:
            layout.delimiter = "," if "," in content else None
            cells = _split(content, layout.delimiter)
            first_data_seen = True
            if not any(_is_number(cell) for cell in cells):
                layout.header = cells
                layout.skip_lines = number
                continue
            layout.header = _comment_header(last_comment, layout.delimiter, len(cells))
        layout.rows.append(_split(content, layout.delimiter))
    return layout


def _comment_header(comment: str | None, delimiter: str | None, width: int) -> list[str] | None:
    """The column names of a comment line just before the data (``# time,flux,flux_err``):
    as many cells as the first data line, each a name (starts with a letter, not a number)."""
    if not comment or "=" in comment:      # an LCSG "# #key = value" line, or prose
        return None
    cells = _split(comment, delimiter)
    if len(cells) != width or not all(cells) or any(_is_number(c) for c in cells):
        return None
    if not all(re.match(r"^[A-Za-z_]", c) for c in cells):
        return None
    return cells


def numeric_columns(layout: TextLayout) -> list[int]:
    """Indices of the columns whose cells are numbers in every scanned data row."""
    if not layout.rows:
        return []
    width = len(layout.rows[0])
    return [i for i in range(width)
            if all(len(row) == width and _is_number(row[i]) for row in layout.rows)]


def classify(text: str) -> str | None:
    """``'lcsg'``, ``'prototype'``, ``'table'``, or ``None`` when no light curve is seen."""
    layout = scan_layout(text)
    if layout.has_lcsg_metadata:
        return "lcsg"
    numeric_rows = [row for row in layout.rows if all(map(_is_number, row))]
    if not numeric_rows:
        # a header alone still looks like a table (it fails later with "no data rows"), and so
        # does one with text columns (an instrument's name) beside at least two numeric ones
        if layout.header and not layout.rows and len(layout.header) >= 2:
            return "table"
        return "table" if len(numeric_columns(layout)) >= 2 else None
    width = len(numeric_rows[0])
    if layout.header is not None or len(numeric_rows) < len(layout.rows):
        return "table"
    if layout.delimiter == "," and width == 3 and all(
            float(row[2]) in (0.0, 1.0) for row in numeric_rows):
        return "lcsg"
    if layout.delimiter is None and width == 4 and all(
            _SAVETXT_CELL.match(cell) for row in numeric_rows for cell in row):
        return "prototype"
    return "table"


def _data_line_numbers(text: str, skip_lines: int) -> list[int]:
    return [number for number, line in enumerate(_lines(text), start=1)
            if number > skip_lines and _strip_comment(line)]


def _diagnose(path: Path, text: str, layout: TextLayout, n_columns: int,
              used: list[int] | None = None) -> FormatError:
    """Find the first line that ``np.loadtxt`` could not take, and say what is wrong with it."""
    for number, line in enumerate(_lines(text), start=1):
        content = _strip_comment(line)
        if number <= layout.skip_lines or not content:
            continue
        cells = _split(content, layout.delimiter)
        if len(cells) != n_columns:
            return FormatError(path, f"line {number} has {len(cells)} columns, "
                                     f"expected {n_columns} like the first data line")
        for column, cell in enumerate(cells, start=1):
            if used is not None and column - 1 not in used:
                continue
            if not _is_number(cell.strip('"')):
                return FormatError(path, f"non-numeric cell {cell!r} at line {number}, "
                                         f"column {column}")
    return FormatError(path, "cannot parse the numeric table")


def _load_table(path: Path, text: str, layout: TextLayout, min_columns: int) -> np.ndarray:
    n_columns = layout.n_columns
    if not layout.rows:
        raise FormatError(path, "no data rows")
    if n_columns < min_columns:
        raise FormatError(path, f"{n_columns} column(s); at least {min_columns} needed")
    try:
        # UTF-8 bytes, not io.StringIO(text): a StringIO holds 4 bytes per character (3 more
        # copies of the text); both split lines at "\n" only, so the table read is the same.
        data = np.loadtxt(io.BytesIO(text.encode("utf-8")), delimiter=layout.delimiter,
                          comments="#", skiprows=layout.skip_lines, ndmin=2, dtype=np.float64,
                          encoding="utf-8")
    except ValueError:
        raise _diagnose(path, text, layout, n_columns) from None
    if data.shape[0] == 0:
        raise FormatError(path, "no data rows")
    return data


def read_prototype(path: Path, text: str, meta: dict[str, Any]) -> LightCurve:
    """The prototype's text: time [s], flux, flag, uncertainty (whitespace separated).

    The prototype wrote the flux into the flag column. When that column is not made of 0/1
    integers, flags are set to 0 and ``meta['warnings']`` says so. An uncertainty column of
    zeros means "unknown": ``flux_err`` is then ``None``.
    """
    layout = scan_layout(text)
    data = _load_table(path, text, layout, 4)
    time = data[:, 0] / SECONDS_PER_DAY
    err: np.ndarray | None
    flux, flag, err = data[:, 1], data[:, 2], data[:, 3]
    if np.isin(flag, (0.0, 1.0)).all():
        flags = flag
    else:
        flags = None
        add_warning(meta, "flag column holds values other than 0/1 (the prototype wrote the "
                          "flux there); all flags set to 0")
    if not np.any(err):
        err = None
        add_warning(meta, "uncertainty column is all zero; flux_err unknown")
    return build_lightcurve(path, time, flux, err, flags, meta,
                            rows=lambda: _data_line_numbers(text, layout.skip_lines))


def lcsg_metadata(text: str) -> dict[str, Any]:
    """The ``# #key = value`` lines of an LCSG file (numbers parsed as numbers)."""
    return {m["key"].strip(): parse_scalar(m["value"]) for m in _LCSG_META.finditer(text)}


def read_lcsg(path: Path, text: str, meta: dict[str, Any]) -> LightCurve:
    """LCSG CSV: time [days], flux, flag; ``# #key = value`` comment lines are metadata."""
    layout = scan_layout(text)
    data = _load_table(path, text, layout, 3)
    meta = {**lcsg_metadata(text), **meta}
    return build_lightcurve(path, data[:, 0], data[:, 1], None, data[:, 2], meta,
                            rows=lambda: _data_line_numbers(text, layout.skip_lines))


def _bare(cell: str) -> str:
    """A header cell without its unit (``time [d]``, ``flux(e/s)``), quotes and case."""
    return re.sub(r"[\[(].*$", "", cell).strip().strip('"\'').strip().lower()


def _find(header: list[str], names: tuple[str, ...]) -> int | None:
    bare = [_bare(cell) for cell in header]
    for name in names:
        if name in bare:
            return bare.index(name)
    return None


#: BJD of time 0 of each time system a table's times may be in (what ``time_reference_bjd``
#: records, as the mission FITS reader does from BJDREFI + BJDREFF). JD, HJD and MJD are
#: recorded as given: no barycentric correction is made.
TIME_SYSTEMS = {"bjd": 0.0, "btjd": 2457000.0, "bkjd": 2454833.0, "jd": 0.0, "hjd": 0.0,
                "mjd": 2400000.5}
TIME_UNITS = {"d": 1.0, "s": 1.0 / SECONDS_PER_DAY}
#: What :func:`read_table` takes as ``options`` (each checked, unknown keys refused).
TABLE_OPTIONS = ("columns", "select", "time_system", "time_offset", "time_unit")
_ROLES = ("time", "flux", "flux_err")


def _option_error(message: str) -> Exception:
    from eas_runtime.task_api import ParameterError
    return ParameterError(message)


def check_table_options(options: dict[str, Any] | None) -> dict[str, Any]:
    """``options`` of :func:`read_table`, checked: ParameterError naming the bad one."""
    options = dict(options or {})
    unknown = sorted(set(options) - set(TABLE_OPTIONS))
    if unknown:
        raise _option_error(f"unknown reader option(s) {unknown}; known: {list(TABLE_OPTIONS)}")
    columns = options.get("columns") or {}
    if not isinstance(columns, dict) or set(columns) - set(_ROLES):
        raise _option_error(f"option 'columns' must map some of {list(_ROLES)} to a column name or "
                            f"0-based position, got {columns!r}")
    for role, which in columns.items():
        ok = (isinstance(which, str) and which.strip()) or (
            isinstance(which, int) and not isinstance(which, bool) and which >= 0) or (
            which is None and role == "flux_err")
        if not ok:
            raise _option_error(f"option 'columns.{role}' must be a column name or a 0-based "
                                f"position{' (or null: no uncertainties)' if role == 'flux_err' else ''}, "
                                f"got {which!r}")
    select = options.get("select") or {}
    if not isinstance(select, dict) or not all(isinstance(k, (str, int)) and not isinstance(k, bool)
                                               for k in select):
        raise _option_error(f"option 'select' must map column names (or positions) to a value or a "
                            f"list of values, e.g. {{'instrument': 'K2'}}, got {select!r}")
    for key, values in select.items():
        values = values if isinstance(values, list) else [values]
        if not values or not all(isinstance(v, (str, int, float)) and not isinstance(v, bool)
                                 for v in values):
            raise _option_error(f"option 'select.{key}' must be a value or a non-empty list of "
                                f"values (text or numbers), got {select[key]!r}")
    system = options.get("time_system")
    if system is not None and (not isinstance(system, str) or system.lower() not in TIME_SYSTEMS):
        raise _option_error(f"option 'time_system' must be one of {sorted(k.upper() for k in TIME_SYSTEMS)}"
                            f", got {system!r}")
    offset = options.get("time_offset")
    if offset is not None and (isinstance(offset, bool) or not isinstance(offset, (int, float))
                               or not np.isfinite(offset)):
        raise _option_error(f"option 'time_offset' must be a finite number of days, got {offset!r}")
    unit = options.get("time_unit")
    if unit is not None and unit not in TIME_UNITS:
        raise _option_error(f"option 'time_unit' must be one of {list(TIME_UNITS)}, got {unit!r}")
    return options


def _column_index(path: Path, layout: TextLayout, which: str | int, what: str) -> int:
    width = layout.n_columns
    if isinstance(which, int):
        if which >= width:
            raise FormatError(path, f"{what}: column {which} (0-based) does not exist; the table "
                                    f"has {width} columns")
        return which
    names = layout.header or []
    bare = [_bare(c) for c in names]
    if _bare(which) in bare:
        return bare.index(_bare(which))
    raise FormatError(path, f"{what}: no column named {which!r}; "
                            + (f"the header names {names}" if names else
                               "the table has no header line (name columns by position)"))


def _text_cells(text: str, layout: TextLayout, column: int) -> np.ndarray:
    import warnings
    with warnings.catch_warnings():
        # numpy's notice that comment lines do not count towards its internal chunk of rows
        warnings.filterwarnings("ignore", message="Input line .* contained no data")
        return _load_cells(text, layout, column)


def _load_cells(text: str, layout: TextLayout, column: int) -> np.ndarray:
    return np.loadtxt(io.BytesIO(text.encode("utf-8")), delimiter=layout.delimiter, comments="#",
                      skiprows=layout.skip_lines, usecols=(column,), dtype=str, ndmin=1,
                      encoding="utf-8", quotechar='"' if layout.delimiter else None)


def read_table(path: Path, text: str, meta: dict[str, Any],
               options: dict[str, Any] | None = None) -> LightCurve:
    """A text table: time, flux and optionally flux_err; other columns ignored.

    Columns are found by name in a header line (commented or not: ``# time,flux,flux_err``),
    ``time``/``bjd``/``btjd``..., ``flux``/``pdcsap_flux``..., ``flux_err``/``err``..., else by
    position (0, 1, 2), or chosen with ``options['columns']`` (name or 0-based position per
    role; ``flux_err: null`` ignores a column). ``options['select']`` keeps the rows whose cells
    equal a value (``{'instrument': 'K2'}``; a list for several); text columns are allowed.
    Times are in days, or seconds when ``time_unit`` is ``s`` or the header says ``[s]``; their
    system (``time_system``: BJD, BTJD, BKJD, JD, HJD, MJD, else from the time column's name)
    and ``time_offset`` [d] (added to the file's times to get that system's, e.g. 2450000 for
    ``BJD - 2450000``) are recorded as ``time_system`` and ``time_reference_bjd``, as the
    mission FITS reader does; the times themselves are kept as in the file.
    """
    options = check_table_options(options)
    layout = scan_layout(text)
    if not layout.rows:
        raise FormatError(path, "no data rows")
    if layout.n_columns < 2:
        raise FormatError(path, f"{layout.n_columns} column(s); at least 2 needed")
    chosen = options.get("columns") or {}
    header = layout.header
    if "time" in chosen:
        i_time = _column_index(path, layout, chosen["time"], "columns.time")
    else:
        found = _find(header, _TIME_NAMES) if header else None
        i_time = found if found is not None else 0
    if "flux" in chosen:
        i_flux = _column_index(path, layout, chosen["flux"], "columns.flux")
    else:
        found_flux = _find(header, _FLUX_NAMES) if header else None
        i_flux = found_flux if found_flux is not None else 1
    if "flux_err" in chosen:
        i_err = None if chosen["flux_err"] is None else _column_index(path, layout, chosen["flux_err"],
                                                                      "columns.flux_err")
    elif header:
        i_err = _find(header, _ERR_NAMES)
        if i_err is None and _find(header, _FLUX_NAMES) is None and layout.n_columns > 2:
            i_err = 2
    else:
        i_err = 2 if layout.n_columns > 2 else None
    numeric = set(numeric_columns(layout))
    for role, index in (("time", i_time), ("flux", i_flux), ("flux_err", i_err)):
        if index is not None and index not in numeric:
            defect = _diagnose(path, text, layout, layout.n_columns, [index]).defect
            name = f" {header[index]!r}" if header and index < len(header) else ""
            raise FormatError(path, f"{defect}, in the {role} column{name}; if another column "
                                    "holds it, choose it with the reader option 'columns'")
    used = [i_time, i_flux] + ([i_err] if i_err is not None else [])
    try:
        data = np.loadtxt(io.BytesIO(text.encode("utf-8")), delimiter=layout.delimiter,
                          comments="#", skiprows=layout.skip_lines, ndmin=2, dtype=np.float64,
                          encoding="utf-8", usecols=used,
                          quotechar='"' if layout.delimiter else None)
    except ValueError:
        raise _diagnose(path, text, layout, layout.n_columns, used) from None
    if data.shape[0] == 0:
        raise FormatError(path, "no data rows")
    keep = None
    for key, values in (options.get("select") or {}).items():
        index = _column_index(path, layout, int(key) if isinstance(key, str) and key.isdigit()
                              and not header else key, f"select.{key}")
        cells = _text_cells(text, layout, index)
        wanted = values if isinstance(values, list) else [values]
        if index in numeric and all(isinstance(v, (int, float)) for v in wanted):
            mask = np.isin(cells.astype(np.float64), np.asarray(wanted, dtype=np.float64))
        else:
            mask = np.isin(np.char.strip(np.char.strip(cells), '"'), [str(v) for v in wanted])
        keep = mask if keep is None else keep & mask
        if not keep.any():
            present = sorted(set(cells.tolist()))
            raise FormatError(path, f"select {key!r} = {values!r} keeps no row; the column holds "
                                    f"{present[:10]}{' ...' if len(present) > 10 else ''}")
    rows = lambda: _data_line_numbers(text, layout.skip_lines)  # noqa: E731
    if keep is not None:
        data = data[keep]
        everything = rows
        rows = lambda: [n for n, k in zip(everything(), keep) if k]  # noqa: E731
        meta = {**meta, "selected_rows": int(keep.sum()), "rows_in_file": int(keep.size)}
    if "time_unit" in options:
        scale = TIME_UNITS[options["time_unit"]]
    elif header and re.search(r"[\[(]\s*s(ec)?\s*[\])]|_s$", header[i_time].lower()):
        scale = 1.0 / SECONDS_PER_DAY
    else:
        scale = 1.0
    out = dict(meta)
    if header:
        out["columns"] = ",".join(header)
    system = options.get("time_system")
    if system is None and header:
        named = _bare(header[i_time])
        named = _TIME_SYSTEM_ALIASES.get(named, named)
        system = named if named in TIME_SYSTEMS else None
    if system is not None:
        out["time_system"] = system.upper()
        out["time_reference_bjd"] = TIME_SYSTEMS[system.lower()] + float(options.get("time_offset") or 0.0)
    elif options.get("time_offset") is not None:
        raise _option_error("option 'time_offset' needs 'time_system' (what the offset leads to) "
                            "when the time column's name does not say it")
    err = data[:, 2] if i_err is not None else None
    return build_lightcurve(path, data[:, 0] * scale, data[:, 1], err, None, out, rows=rows)


def write_prototype(lc: LightCurve) -> bytes:
    """The prototype's text format, with the flags (not the flux) in the flag column."""
    err = lc.flux_err if lc.flux_err is not None else np.zeros(len(lc))
    table = np.column_stack([lc.time * SECONDS_PER_DAY, lc.flux, lc.flags, err])
    out = io.StringIO()
    np.savetxt(out, table)
    return out.getvalue().encode("ascii")
