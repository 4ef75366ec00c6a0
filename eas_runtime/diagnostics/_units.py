"""The unit of a result: what the function recorded, else what the key's suffix says.

Functions record units beside their result metadata (``TaskResult(units={"period": "d"})``,
stored per metadata item); keys that spell out their unit (``slept_s``, ``cadence_s``,
``lc_duration_days``, ``scatter_ppm``) carry it in the name, as the house style asks. Every
page that shows a result takes its unit from :func:`unit_of`, so the two sources agree
everywhere. A recorded unit wins over the suffix.
"""
from __future__ import annotations

from typing import Any, Mapping

#: Key suffix -> unit, longest first so ``_days`` is not read as ``_s``.
SUFFIX_UNITS: tuple[tuple[str, str], ...] = (
    ("_percent", "%"), ("_seconds", "s"), ("_hours", "h"), ("_bytes", "B"), ("_days", "d"),
    ("_ppm", "ppm"), ("_ppt", "ppt"), ("_hz", "Hz"), ("_ms", "ms"), ("_d", "d"), ("_h", "h"),
    ("_s", "s"),
)


def suffix_unit(key: str) -> str:
    """The unit a key's suffix names (``wall_s`` -> ``s``), or ``""``."""
    lowered = key.lower()
    for suffix, unit in SUFFIX_UNITS:
        if lowered.endswith(suffix) and len(lowered) > len(suffix):
            return unit
    return ""


def unit_of(key: str, recorded: Mapping[str, str] | None = None) -> str:
    """The unit of result ``key``: the recorded one, else the suffix's, else ``""``."""
    return (recorded or {}).get(key) or suffix_unit(key)


def units_of(values: Mapping[str, Any], recorded: Mapping[str, str] | None = None) -> dict[str, str]:
    """``{key: unit}`` for every key of ``values`` that has a unit."""
    out = {key: unit_of(key, recorded) for key in values}
    return {k: u for k, u in out.items() if u}
