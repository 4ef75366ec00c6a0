"""Paging, time parsing and value conversion shared by the diagnostics queries."""
from __future__ import annotations

import datetime as dt
import math
import re
from typing import Any

from eas_runtime.db.models import utcnow
# Largest id of a row (signed 64-bit in SQLite and PostgreSQL; a larger Python int makes the
# driver raise instead of matching nothing): one definition for events, the site and the CLI.
from eas_runtime.events import MAX_ID

#: Rows per page unless asked otherwise, and the most a caller may ask for.
DEFAULT_PAGE_SIZE = 100
MAX_PAGE_SIZE = 1000
#: Largest page number: far beyond any table this pipeline holds, and small enough that the
#: offset (page * page_size) stays a 64-bit integer.
MAX_PAGE = 10**9
#: Oldest age a ``since``/``until`` filter may name (a century), and the range of ISO times
#: accepted (Python's datetime cannot go past year 9999, nor a timedelta past that).
MAX_AGE_S = 100 * 366 * 86400
EARLIEST = dt.datetime(1900, 1, 1, tzinfo=dt.timezone.utc)
LATEST = dt.datetime(9999, 12, 30, tzinfo=dt.timezone.utc)


class DiagnosticsError(ValueError):
    """A filter or paging argument has a value that cannot be used (the message names it)."""


class NotFound(LookupError):
    """The job, task or attempt named does not exist."""


def shown(value: Any, limit: int = 60) -> str:
    """``repr(value)`` cut to about ``limit`` characters, for messages that echo user input."""
    text = repr(value)
    return text if len(text) <= limit else text[:limit] + f"... ({len(str(value))} characters)"


def _whole(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def check_id(name: str, value: int | None) -> int | None:
    """``value`` unless it cannot be the id of a row (not a whole number from 1 to MAX_ID)."""
    if value is not None and (not _whole(value) or not 1 <= value <= MAX_ID):
        raise DiagnosticsError(f"{name} must be an id, a whole number from 1 to {MAX_ID}, "
                               f"got {shown(value)}")
    return value


def check_page(page: int, page_size: int) -> tuple[int, int]:
    """Validated (offset, limit) for 0-based ``page`` of ``page_size`` rows."""
    if not _whole(page) or not 0 <= page <= MAX_PAGE:
        raise DiagnosticsError(f"page must be a whole number from 0 to {MAX_PAGE}, got {shown(page)}")
    if not isinstance(page_size, int) or isinstance(page_size, bool) \
            or not 1 <= page_size <= MAX_PAGE_SIZE:
        raise DiagnosticsError(f"page_size must be a whole number from 1 to {MAX_PAGE_SIZE}, "
                               f"got {shown(page_size)}")
    return page * page_size, page_size


def paged(items: list, total: int, page: int, page_size: int, **extra) -> dict:
    """The JSON shape of every paged answer: items, page (0-based), page_size, total, pages."""
    return {"items": items, "page": page, "page_size": page_size, "total": total,
            "pages": max(1, math.ceil(total / page_size)), **extra}


def iso(value: dt.datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def age_s(value: dt.datetime | None, now: dt.datetime) -> float | None:
    """Seconds from ``value`` to ``now`` (rounded to 0.1 s), or None."""
    return round((now - value).total_seconds(), 1) if value is not None else None


_RELATIVE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhdw])\s*$", re.IGNORECASE)
_UNITS_S = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def parse_since(value: str | dt.datetime | None, now: dt.datetime | None = None, *,
                name: str = "since") -> dt.datetime | None:
    """A point in time from an ISO 8601 time (UTC when no zone is given) or an age such as
    ``90s``, ``30m``, ``2h``, ``1d``, ``1w`` (that long before ``now``).

    Both are bounded (ages up to :data:`MAX_AGE_S`, times from :data:`EARLIEST` to
    :data:`LATEST`): past them datetime arithmetic overflows. ``name`` is the parameter the
    messages name."""
    if value is None or value == "":
        return None
    if isinstance(value, dt.datetime):
        parsed = value if value.tzinfo else value.replace(tzinfo=dt.timezone.utc)
    else:
        text = str(value)
        m = _RELATIVE.match(text)
        if m:
            seconds = float(m.group(1)) * _UNITS_S[m.group(2).lower()]
            if seconds > MAX_AGE_S:
                raise DiagnosticsError(f"{name}={shown(text)} is too long ago: an age may be at most "
                                       f"{MAX_AGE_S // 86400}d")
            return (now or utcnow()) - dt.timedelta(seconds=seconds)
        parsed = _iso_time(text, name)
    try:
        in_utc = parsed.astimezone(dt.timezone.utc)
    except OverflowError:
        in_utc = None
    if in_utc is None or not EARLIEST <= in_utc <= LATEST:
        raise DiagnosticsError(f"{name}={shown(str(value))} is out of range: times go from "
                               f"{EARLIEST.date()} to {LATEST.date()} (UTC)")
    return parsed


def _iso_time(text: str, name: str) -> dt.datetime:
    try:
        parsed = dt.datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        raise DiagnosticsError(
            f"{name}={shown(text)} is neither an ISO time (2024-05-01T12:00:00, UTC unless a zone "
            f"is given) nor an age like 90s, 30m, 2h, 1d, 1w") from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=dt.timezone.utc)


def flatten(mapping: Any, prefix: str = "") -> dict[str, Any]:
    """Nested dicts as dotted keys (``specs.duration``); other values unchanged."""
    out: dict[str, Any] = {}
    if not isinstance(mapping, dict):
        return out
    for key, value in mapping.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict) and value:
            out.update(flatten(value, name + "."))
        else:
            out[name] = value
    return out
