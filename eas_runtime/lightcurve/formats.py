"""Reading and writing light-curve files, with the format recognised from the content.

Recognised formats (:data:`FORMATS`), each optionally gzipped:

``product``
    The pipeline's own FITS product (``EASFMT = 1``, extension ``LIGHTCURVE``); the only
    format :func:`write_lightcurve` writes by default.
``mission``
    Kepler/K2/TESS light-curve FITS (PDCSAP_FLUX, QUALITY/SAP_QUALITY).
``prototype``
    The prototype's text: time [s], flux, flag, uncertainty (``np.savetxt`` cells).
``lcsg``
    LCSG CSV: time [days], flux, flag, with ``# #key = value`` metadata lines.
``table``
    Any other text table: time, flux, [flux_err], comma or whitespace separated, with or
    without a header line (commented or not), text columns allowed; reader options choose the
    columns, select rows and state the time system (:func:`._text.read_table`).

Recognition never relies on the file name: gzip and FITS by their magic bytes, the text
formats by their first lines.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Mapping

from . import _fits, _text
from ._common import FITS_MAGIC, FormatError, load_bytes, write_atomically
from .model import LightCurve

FORMATS: dict[str, str] = {
    "product": "PLATO EAS light-curve product (FITS, EASFMT = 1)",
    "mission": "Kepler/K2/TESS light-curve FITS",
    "prototype": "prototype text: time [s], flux, flag, uncertainty",
    "lcsg": "LCSG CSV: time [days], flux, flag, '# #key = value' metadata",
    "table": "text table: time [days], flux, [flux_err]",
}
_WRITABLE = ("product", "prototype")


def _unknown(path: Path, why: str) -> FormatError:
    known = ", ".join(f"{name} ({text})" for name, text in FORMATS.items())
    return FormatError(path, f"unknown format: {why}; recognised formats: {known}")


def _decode(path: Path, content: bytes) -> str:
    if b"\x00" in content[:65536]:
        raise _unknown(path, "binary content that is not FITS")
    try:
        return content.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise _unknown(path, f"neither FITS nor UTF-8 text ({exc.reason} at byte {exc.start})") \
            from None


def _text_head(content: bytes, size: int = 65536) -> bytes:
    """The first ``size`` bytes, cut after a newline so no multi-byte character is split."""
    if len(content) <= size:
        return content
    head = content[:size]
    cut = head.rfind(b"\n")
    return head[:cut + 1] if cut >= 0 else head


def _detect(path: Path, content: bytes) -> str:
    if content.startswith(FITS_MAGIC):
        return "product" if _fits.is_product(path, content) else "mission"
    if content[:6].upper() == b"SIMPLE":
        raise FormatError(path, "corrupt FITS header (first card is not 'SIMPLE  =')")
    kind = _text.classify(_decode(path, _text_head(content)))
    if kind is None:
        raise _unknown(path, "no numeric table in the first lines")
    return kind


def detect_format(path: str | os.PathLike) -> str:
    """The name of the file's format (a key of :data:`FORMATS`), judged by its content."""
    path = Path(path)
    content, _ = load_bytes(path)
    return _detect(path, content)


def read_lightcurve(path: str | os.PathLike, *, fmt: str | None = None,
                    metadata: Mapping[str, Any] | None = None,
                    options: Mapping[str, Any] | None = None) -> LightCurve:
    """Read a light curve from any recognised format.

    Parameters
    ----------
    path : path-like
        The file; gzipped or not.
    fmt : str, optional
        Force a format (a key of :data:`FORMATS`) instead of recognising it.
    metadata : mapping, optional
        Extra metadata (for example a prototype ``.metadata.cfg``, see
        :func:`read_metadata_cfg`); it wins over metadata found in the file.
    options : mapping, optional
        Reader options of text tables (``columns``, ``select``, ``time_system``,
        ``time_offset``, ``time_unit``; see :func:`._text.read_table`). Given, a text file is
        read as a table whatever it looks like; a FITS file refuses them (ParameterError).

    The result's ``meta`` also records ``source_file`` (the file name) and ``source_format``,
    unless the file already records them (a product keeps the origin of its first ingest).

    Raises
    ------
    FormatError
        The file is missing, empty, truncated, corrupt, of an unknown format, or its data are
        unusable (non-numeric cells, unsorted or duplicate times, no finite flux).
    """
    path = Path(path)
    content, _ = load_bytes(path)
    if fmt is None:
        fmt = _detect(path, content)
    elif fmt not in FORMATS:
        raise ValueError(f"unknown format {fmt!r}; recognised formats: {', '.join(FORMATS)}")
    meta = dict(metadata or {})
    if options:
        _text.check_table_options(dict(options))
        if fmt in ("product", "mission"):
            from eas_runtime.task_api import ParameterError
            raise ParameterError(f"reader options {sorted(options)} apply to text tables; "
                                 f"{path.name} is {FORMATS[fmt]}")
        return _text.read_table(path, _decode(path, content), meta, dict(options)).with_meta(
            source_file=path.name, source_format="table")
    if fmt == "product":
        lc = _fits.read_product(path, content, meta)
    elif fmt == "mission":
        lc = _fits.read_mission(path, content, meta)
    else:
        reader = {"prototype": _text.read_prototype, "lcsg": _text.read_lcsg,
                  "table": _text.read_table}[fmt]
        lc = reader(path, _decode(path, content), meta)
    # a product keeps the origin recorded when it was ingested
    origin = {"source_file": path.name, "source_format": fmt}
    return lc.with_meta(**{k: v for k, v in origin.items() if k not in lc.meta})


def write_lightcurve(lc: LightCurve, path: str | os.PathLike, *, fmt: str = "product") -> Path:
    """Write ``lc`` atomically (temporary file, then rename); returns the path.

    ``fmt`` is ``"product"`` (default; FITS) or ``"prototype"`` (the prototype's text, with
    correct flags). A name ending in ``.gz`` is gzipped.
    """
    import gzip

    if fmt not in _WRITABLE:
        raise ValueError(f"cannot write format {fmt!r}; writable formats: {', '.join(_WRITABLE)}")
    path = Path(path)
    content = _fits.product_bytes(lc) if fmt == "product" else _text.write_prototype(lc)
    if path.name.endswith(".gz"):
        content = gzip.compress(content, compresslevel=6, mtime=0)
    write_atomically(path, content)
    return path
