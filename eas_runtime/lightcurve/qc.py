"""Science QC shared by every transit search (the prototype's rule)."""
from __future__ import annotations

import math
from typing import Any, Mapping

#: Bounds on target / found period for a search to pass.
PERIOD_RATIO_MIN = 0.97
PERIOD_RATIO_MAX = 1.03

#: Metadata of a synthetic input light curve that every search copies into its results.
SIGNAL_METADATA_KEYS = ("integrated_transit_power", "pixels_in_transit", "mes")


def _number(value: Any) -> float | None:
    if value is None or isinstance(value, bool):
        return None
    try:
        value = float(value)
    except (TypeError, ValueError):
        return None
    return value if math.isfinite(value) and value != 0 else None


def period_outcome(target: Any, found: Any) -> str:
    """``"PASS"`` when 0.97 < target / found < 1.03, ``"FAIL"`` otherwise, and
    ``"UNDEFINED"`` when either period is missing (None, non-numeric, non-finite or 0)."""
    target, found = _number(target), _number(found)
    if target is None or found is None:
        return "UNDEFINED"
    return "PASS" if PERIOD_RATIO_MIN < target / found < PERIOD_RATIO_MAX else "FAIL"


def signal_metadata(meta: Mapping[str, Any]) -> dict[str, Any]:
    """The input's signal metadata (:data:`SIGNAL_METADATA_KEYS`) that is present."""
    return {key: meta[key] for key in SIGNAL_METADATA_KEYS if key in meta}
