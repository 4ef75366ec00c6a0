"""Pieces shared by the file-format readers: the error type, decompression, final checks."""
from __future__ import annotations

import gzip
import io
import os
import secrets
import zlib
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

import numpy as np

from eas_runtime.memory import INPUT_FRACTION, MemoryLimit, format_bytes, memory_limit
from eas_runtime.task_api import InputError

from .model import LightCurve

GZIP_MAGIC = b"\x1f\x8b"
FITS_MAGIC = b"SIMPLE  ="
#: Decompressed bytes read at a time: the most a refused stream costs beyond the limit.
_CHUNK = 1 << 20
#: Deflate's largest expansion (a 258-byte match coded in about 2 bits), rounded up.
_DEFLATE_MAX_RATIO = 1040


class FormatError(InputError):
    """A light-curve file cannot be read; the message names the file and the defect.

    An :class:`~eas_runtime.task_api.InputError` (a ValueError): inside the pipeline the task
    fails as an input problem, is recorded, and is not retried."""

    def __init__(self, path: str | os.PathLike, defect: str):
        self.path = str(path)
        self.defect = defect
        super().__init__(f"{self.path}: {defect}")


def load_bytes(path: Path, limit: MemoryLimit | None = None) -> tuple[bytes, bool]:
    """The file's content, gunzipped when it starts with the gzip magic bytes.

    Returns ``(content, was_gzipped)``; raises :class:`FormatError` for a missing, empty or
    damaged file, and for content larger than ``limit.input_bytes`` (default: this process's
    :func:`~eas_runtime.memory.memory_limit`). A gzip stream is decompressed in chunks and
    refused as soon as its output passes the limit, so a small "gzip bomb" never costs more
    than the limit: nothing is materialised beyond it.
    """
    limit = limit or memory_limit()
    try:
        with open(path, "rb") as handle:
            size = os.fstat(handle.fileno()).st_size
            if size > limit.input_bytes:
                raise FormatError(path, f"file of {format_bytes(size)} exceeds the "
                                        f"{_why_limit(limit)}")
            raw = handle.read()
    except FileNotFoundError:
        raise FormatError(path, "no such file") from None
    except IsADirectoryError:
        raise FormatError(path, "is a directory, not a file") from None
    if not raw:
        raise FormatError(path, "empty file (0 bytes)")
    if not raw.startswith(GZIP_MAGIC):
        return raw, False
    try:
        content = _gunzip(path, raw, limit)
    except EOFError as exc:
        raise FormatError(path, f"truncated gzip stream ({exc})") from None
    except (gzip.BadGzipFile, zlib.error, OSError) as exc:
        raise FormatError(path, f"corrupt gzip stream ({exc})") from None
    if not content:
        raise FormatError(path, "empty file (gzip stream holds 0 bytes)")
    return content, True


def _why_limit(limit: MemoryLimit) -> str:
    return (f"limit of {format_bytes(limit.input_bytes)} for one input (1/{INPUT_FRACTION} of the "
            f"{format_bytes(limit.bytes)} this function may use, from {limit.source}); refused so "
            f"that reading it cannot exhaust the memory")


def _gunzip(path: Path, raw: bytes, limit: MemoryLimit) -> bytes:
    """Decompress ``raw`` in chunks, stopping as soon as the output passes the limit.

    The gzip trailer of the last member records its size modulo 2**32 (ISIZE): a stream that
    declares more than the limit is refused before any work, when the declaration is possible
    (deflate expands at most :data:`_DEFLATE_MAX_RATIO` times; the last bytes of a truncated
    file are not a trailer). The declaration can lie or wrap past 4 GiB, so the output is also
    counted while it is produced.
    """
    allowed = limit.input_bytes
    refused = (f"gzip stream of {format_bytes(len(raw))} decompresses to more than the "
               f"{_why_limit(limit)}")
    if len(raw) >= 18:
        declared = int.from_bytes(raw[-4:], "little")
        if allowed < declared <= _DEFLATE_MAX_RATIO * len(raw):
            raise FormatError(path, f"{refused} (its trailer declares {format_bytes(declared)})")
    out = io.BytesIO()
    with gzip.GzipFile(fileobj=io.BytesIO(raw), mode="rb") as stream:
        while True:
            chunk = stream.read(min(_CHUNK, allowed + 1 - out.tell()))
            if not chunk:
                break
            out.write(chunk)
            if out.tell() > allowed:
                raise FormatError(path, f"{refused} (stopped after {format_bytes(out.tell())}, "
                                        f"a ratio above {out.tell() // len(raw)}:1)")
    # BytesIO hands over its buffer without copying it when nothing else holds a view of it.
    return out.getvalue()


def parse_scalar(text: str) -> int | float | str:
    """A metadata value: an int or a float when it parses as one, else the stripped string."""
    text = text.strip()
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return text


def add_warning(meta: dict[str, Any], warning: str) -> None:
    """Append ``warning`` to ``meta['warnings']`` (one string, entries separated by '; ')."""
    previous = meta.get("warnings")
    meta["warnings"] = f"{previous}; {warning}" if previous else warning


Rows = Sequence[int] | Callable[[], Sequence[int]] | None


def _where(rows: Rows, i: int, unit: str) -> str:
    if callable(rows):
        rows = rows()
    if rows is not None and i < len(rows):
        return f"line {rows[i]}"
    return f"{unit} {i}"


def build_lightcurve(path: Path, time, flux, flux_err=None, flags=None,
                     meta: Mapping[str, Any] | None = None, *,
                     rows: Rows = None, unit: str = "row") -> LightCurve:
    """Check the columns read from ``path`` and build the :class:`LightCurve`.

    Raises :class:`FormatError` for no samples, non-finite or unsorted or duplicate times and
    a flux with no finite value. Samples with a non-finite flux are flagged 1. ``rows`` maps
    sample index to the line number of the file, for the messages (or is a function that
    returns that mapping, called only when a message needs it).
    """
    time = np.asarray(time, dtype=np.float64)
    flux = np.asarray(flux, dtype=np.float64)
    if time.size == 0:
        raise FormatError(path, "no data rows")
    bad = np.flatnonzero(~np.isfinite(time))
    if bad.size:
        raise FormatError(path, f"time is not finite at {_where(rows, int(bad[0]), unit)}")
    step = np.diff(time)
    back = np.flatnonzero(step <= 0)
    if back.size:
        i = int(back[0])
        here, there = _where(rows, i, unit), _where(rows, i + 1, unit)
        if step[i] == 0:
            raise FormatError(path, f"duplicate time {float(time[i])!r} d at {here} and {there}")
        raise FormatError(path, f"unsorted times: {float(time[i + 1])!r} d at {there} comes "
                                f"after {float(time[i])!r} d at {here}")
    finite_flux = np.isfinite(flux)
    if not finite_flux.any():
        raise FormatError(path, f"all {flux.size} flux values are NaN or infinite")
    flags = np.zeros(time.size, np.uint8) if flags is None else np.asarray(flags) != 0
    flags = (flags | ~finite_flux).astype(np.uint8)
    try:
        return LightCurve(time, flux, flux_err, flags, meta)
    except ValueError as exc:
        raise FormatError(path, str(exc)) from None


def write_atomically(path: Path, content: bytes) -> None:
    """Write ``content`` to a temporary file beside ``path``, then rename it into place.

    The temporary file is created with mode 0666 minus the umask, like any new file, so the
    result has the permissions a plain ``open(path, "wb")`` would give it.
    """
    path = Path(path)
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0)
    for _ in range(100):
        tmp = path.with_name(f".{path.name}.{secrets.token_hex(6)}.tmp")
        try:
            fd = os.open(tmp, flags, 0o666)
            break
        except FileExistsError:
            continue
    else:  # pragma: no cover - 100 collisions of 48 random bits
        raise FileExistsError(f"cannot create a temporary file beside {path}")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(content)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise


def read_metadata_cfg(path: str | os.PathLike, section: str = "metadata") -> dict[str, Any]:
    """Read a prototype ``.metadata.cfg`` file (INI): the ``[metadata]`` section as a dict.

    Values become ``int`` or ``float`` when they parse as numbers.
    """
    import configparser

    parser = configparser.ConfigParser(interpolation=None)
    # Keep key case: configparser's documented way, though typeshed declares it a method.
    parser.optionxform = str  # type: ignore[method-assign, assignment]
    try:
        with open(path, encoding="utf-8") as handle:
            parser.read_file(handle)
    except (OSError, configparser.Error, UnicodeDecodeError) as exc:
        raise FormatError(path, f"cannot read metadata file ({exc})") from None
    if not parser.has_section(section):
        raise FormatError(path, f"no [{section}] section; sections: {parser.sections()}")
    return {key: parse_scalar(value) for key, value in parser.items(section)}
