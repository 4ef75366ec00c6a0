"""Paging, time parsing and value conversion shared by the diagnostics queries."""
from __future__ import annotations

import datetime as dt
import math
import re
from typing import Any

from eas_runtime.db.models import utcnow

#: Rows per page unless asked otherwise, and the most a caller may ask for.
DEFAULT_PAGE_SIZE = 100
MAX_PAGE_SIZE = 1000


class DiagnosticsError(ValueError):
    """A filter or paging argument has a value that cannot be used (the message names it)."""


class NotFound(LookupError):
    """The job, task or attempt named does not exist."""


def check_page(page: int, page_size: int) -> tuple[int, int]:
    """Validated (offset, limit) for 0-based ``page`` of ``page_size`` rows."""
    if not isinstance(page, int) or isinstance(page, bool) or page < 0:
        raise DiagnosticsError(f"page must be a whole number >= 0, got {page!r}")
    if not isinstance(page_size, int) or isinstance(page_size, bool) \
            or not 1 <= page_size <= MAX_PAGE_SIZE:
        raise DiagnosticsError(f"page_size must be a whole number from 1 to {MAX_PAGE_SIZE}, "
                               f"got {page_size!r}")
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


def parse_since(value: str | dt.datetime | None, now: dt.datetime | None = None) -> dt.datetime | None:
    """A point in time from an ISO 8601 time (UTC when no zone is given) or an age such as
    ``90s``, ``30m``, ``2h``, ``1d``, ``1w`` (that long before ``now``)."""
    if value is None or value == "":
        return None
    if isinstance(value, dt.datetime):
        return value if value.tzinfo else value.replace(tzinfo=dt.timezone.utc)
    text = str(value)
    m = _RELATIVE.match(text)
    if m:
        seconds = float(m.group(1)) * _UNITS_S[m.group(2).lower()]
        return (now or utcnow()) - dt.timedelta(seconds=seconds)
    try:
        parsed = dt.datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        raise DiagnosticsError(
            f"since={text!r} is neither an ISO time (2024-05-01T12:00:00, UTC unless a zone is "
            f"given) nor an age like 90s, 30m, 2h, 1d, 1w") from None
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
