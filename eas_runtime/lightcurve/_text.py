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

_TIME_NAMES = ("time", "t", "bjd", "btjd", "bkjd", "hjd", "jd", "mjd", "date")
_FLUX_NAMES = ("flux", "pdcsap_flux", "sap_flux", "f", "rel_flux", "norm_flux")
_ERR_NAMES = ("flux_err", "flux_error", "err", "error", "sigma", "uncertainty", "e_flux",
              "pdcsap_flux_err", "sap_flux_err", "dflux", "flux_unc")


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
    for number, line in enumerate(itertools.islice(_lines(text), max_lines), start=1):
        content = _strip_comment(line)
        if not content:
            continue
        if not first_data_seen:
            layout.delimiter = "," if "," in content else None
            cells = _split(content, layout.delimiter)
            first_data_seen = True
            if not any(_is_number(cell) for cell in cells):
                layout.header = cells
                layout.skip_lines = number
                continue
        layout.rows.append(_split(content, layout.delimiter))
    return layout


def classify(text: str) -> str | None:
    """``'lcsg'``, ``'prototype'``, ``'table'``, or ``None`` when no light curve is seen."""
    layout = scan_layout(text)
    if layout.has_lcsg_metadata:
        return "lcsg"
    numeric_rows = [row for row in layout.rows if all(map(_is_number, row))]
    if not numeric_rows:
        # a header alone still looks like a table (it fails later with "no data rows")
        return "table" if layout.header and not layout.rows and len(layout.header) >= 2 else None
    width = len(numeric_rows[0])
    if layout.delimiter == "," and width == 3 and layout.header is None and all(
            float(row[2]) in (0.0, 1.0) for row in numeric_rows):
        return "lcsg"
    if layout.delimiter is None and width == 4 and layout.header is None and all(
            _SAVETXT_CELL.match(cell) for row in numeric_rows for cell in row):
        return "prototype"
    return "table"


def _data_line_numbers(text: str, skip_lines: int) -> list[int]:
    return [number for number, line in enumerate(_lines(text), start=1)
            if number > skip_lines and _strip_comment(line)]


def _diagnose(path: Path, text: str, layout: TextLayout, n_columns: int) -> FormatError:
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
            if not _is_number(cell):
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


def _find(header: list[str], names: tuple[str, ...]) -> int | None:
    bare = [re.sub(r"[\[(].*$", "", cell).strip().lower() for cell in header]
    for name in names:
        if name in bare:
            return bare.index(name)
    return None


def read_table(path: Path, text: str, meta: dict[str, Any]) -> LightCurve:
    """A plain table: time [days], flux and optionally flux_err; extra columns ignored.

    With a header line, columns are picked by name (``time``/``bjd``..., ``flux``...,
    ``flux_err``/``err``...) and a time column named with ``[s]`` is read in seconds.
    """
    layout = scan_layout(text)
    data = _load_table(path, text, layout, 2)
    i_time, i_flux, i_err = 0, 1, (2 if data.shape[1] > 2 else None)
    scale = 1.0
    if layout.header:
        header = layout.header
        found_time, found_flux = _find(header, _TIME_NAMES), _find(header, _FLUX_NAMES)
        i_time = found_time if found_time is not None else 0
        i_flux = found_flux if found_flux is not None else 1
        i_err = _find(header, _ERR_NAMES)
        if i_err is None and found_flux is None and data.shape[1] > 2:
            i_err = 2
        if re.search(r"[\[(]\s*s(ec)?\s*[\])]|_s$", header[i_time].lower()):
            scale = 1.0 / SECONDS_PER_DAY
        meta = {"columns": ",".join(header), **meta}
    err = data[:, i_err] if i_err is not None else None
    return build_lightcurve(path, data[:, i_time] * scale, data[:, i_flux], err, None, meta,
                            rows=lambda: _data_line_numbers(text, layout.skip_lines))


def write_prototype(lc: LightCurve) -> bytes:
    """The prototype's text format, with the flags (not the flux) in the flag column."""
    err = lc.flux_err if lc.flux_err is not None else np.zeros(len(lc))
    table = np.column_stack([lc.time * SECONDS_PER_DAY, lc.flux, lc.flags, err])
    out = io.StringIO()
    np.savetxt(out, table)
    return out.getvalue().encode("ascii")
