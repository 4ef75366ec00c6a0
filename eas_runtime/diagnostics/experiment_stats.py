"""The statistics of experiment reports (``experiments.py``): binomial intervals of a PASS
fraction, the power law of search time against light-curve length, the false-alarm rule.

Plain functions of numbers, no database: each is tested against published values or a known
answer (``tests/diagnostics/test_experiments.py``).
"""
from __future__ import annotations

import math
import statistics
from dataclasses import dataclass
from typing import Any, Iterable

#: z of the Wilson interval: 95 % two-sided.
WILSON_Z = 1.959964


def wilson(k: int, n: int, z: float = WILSON_Z) -> tuple[float, float] | None:
    """The Wilson score interval (lower, upper) of a binomial fraction k/n; None for n = 0.

    Wilson, E. B. (1927), JASA 22, 209: unlike the normal approximation it stays inside [0, 1]
    and is not empty at k = 0 or k = n.
    """
    if n <= 0:
        return None
    if not 0 <= k <= n:
        raise ValueError(f"k={k} must lie between 0 and n={n}")
    p = k / n
    denominator = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denominator
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denominator
    # exact ends at k = 0 and k = n (the formula gives them up to rounding)
    low = 0.0 if k == 0 else max(0.0, centre - half)
    high = 1.0 if k == n else min(1.0, centre + half)
    return low, high


@dataclass(frozen=True)
class PowerLaw:
    """time = prefactor * length ** exponent, fitted on ``points`` (length, time) pairs."""
    exponent: float
    prefactor: float
    points: int

    def to_dict(self) -> dict:
        return {"exponent": self.exponent, "prefactor": self.prefactor, "points": self.points}


def fit_power_law(pairs: Iterable[tuple[float, float]]) -> PowerLaw | None:
    """Least squares of log10(time) against log10(length); pairs with a non-positive or
    non-finite member are left out. None with fewer than two distinct lengths."""
    xs, ys = [], []
    for length, time in pairs:
        if length is None or time is None:
            continue
        if math.isfinite(length) and math.isfinite(time) and length > 0 and time > 0:
            xs.append(math.log10(length))
            ys.append(math.log10(time))
    if len(set(xs)) < 2:
        return None
    mx, my = statistics.fmean(xs), statistics.fmean(ys)
    sxx = sum((x - mx) ** 2 for x in xs)
    slope = sum((x - mx) * (y - my) for x, y in zip(xs, ys)) / sxx
    return PowerLaw(exponent=slope, prefactor=10 ** (my - slope * mx), points=len(xs))


def is_false_alarm(outcome: Any, detected: Any, transit_free: bool) -> bool:
    """Whether one ended search is a false alarm: a significant detection (``detected``, S/N
    >= 7.1) that is not a detection, i.e. at a period not within 3 % of the injected one
    (``outcome`` other than PASS), or on a transit-free light curve whatever its period.
    ``experiments.grouped`` counts the same in SQL."""
    if detected is not True:
        return False
    return transit_free or outcome != "PASS"
