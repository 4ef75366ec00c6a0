"""The ``transit_search_bls_reference`` task: astropy's Box Least Squares periodogram.

Settings are the prototype's: durations ``linspace(0.05, 0.2, 10)`` days, and the period grid
of :meth:`astropy.timeseries.BoxLeastSquares.autoperiod` from 0.5 days to half the baseline
with ``minimum_n_transit=2`` and ``frequency_factor=2`` (frequency step
``2 * min(duration) / baseline**2``). Only good samples are used (flag 0, finite flux); the
flux is divided by its median. Without usable uncertainties, each sample gets the robust
scatter (1.4826 * median absolute deviation) of the flux, so that ``snr`` means something.

References
----------
Kovacs, Zucker & Mazeh (2002), A&A 391, 369; astropy ``BoxLeastSquares`` documentation.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field, fields
from typing import Any, ClassVar, Mapping

import numpy as np
from astropy.timeseries import BoxLeastSquares

from eas_runtime.lightcurve import LightCurve, period_outcome

DEFAULT_DURATIONS_D = tuple(float(d) for d in np.linspace(0.05, 0.2, 10))
DEFAULT_SETTINGS: dict[str, Any] = {
    "period_min": 0.5,          # days
    "period_max": None,         # days; None means half the baseline
    "durations": DEFAULT_DURATIONS_D,  # days
    "minimum_n_transit": 2,
    "frequency_factor": 2.0,
    "objective": "likelihood",  # or "snr"
    "oversample": 10,
}
#: Units of the result fields ('' for dimensionless).
UNITS: dict[str, str] = {
    "period": "d", "epoch": "d", "duration": "d", "depth": "ppm", "power": "",
    "snr": "", "sde": "", "transit_count": "", "target_period": "d", "outcome": "",
}
MIN_GOOD_SAMPLES = 10


@dataclass(frozen=True)
class SearchResult:
    """Best peak of the periodogram and its QC outcome (units in :attr:`UNITS`)."""

    UNITS: ClassVar[dict[str, str]] = UNITS

    period: float | None
    epoch: float | None
    duration: float | None
    depth: float | None
    power: float | None
    snr: float | None
    sde: float | None
    transit_count: int
    target_period: float | None
    outcome: str
    periodogram_period: np.ndarray = field(repr=False, compare=False)
    periodogram_power: np.ndarray = field(repr=False, compare=False)

    def to_dict(self) -> dict[str, Any]:
        """The scalar fields as plain JSON-ready values (non-finite numbers become None)."""
        out: dict[str, Any] = {}
        for f in fields(self):
            if f.name.startswith("periodogram_"):
                continue
            value = getattr(self, f.name)
            if isinstance(value, (float, np.floating)):
                value = float(value) if math.isfinite(value) else None
            elif isinstance(value, np.integer):
                value = int(value)
            out[f.name] = value
        return out


def _settings(search_settings: Mapping[str, Any] | None) -> dict[str, Any]:
    search_settings = dict(search_settings or {})
    unknown = sorted(set(search_settings) - set(DEFAULT_SETTINGS))
    if unknown:
        raise ValueError(f"unknown search setting(s) {unknown}; "
                         f"allowed: {sorted(DEFAULT_SETTINGS)}")
    settings = {**DEFAULT_SETTINGS, **{k: v for k, v in search_settings.items() if v is not None}}
    durations = np.atleast_1d(np.asarray(settings["durations"], dtype=np.float64))
    if durations.size == 0 or not np.all(durations > 0):
        raise ValueError(f"durations must be positive days, got {settings['durations']!r}")
    settings["durations"] = np.sort(durations)
    if settings["objective"] not in ("likelihood", "snr"):
        raise ValueError(f"objective must be 'likelihood' or 'snr', "
                         f"got {settings['objective']!r}")
    return settings


def _robust_sigma(flux: np.ndarray) -> float:
    return float(1.4826 * np.median(np.abs(flux - np.median(flux))))


def search(lc: LightCurve, *, lc_duration: float | None = None,
           search_settings: Mapping[str, Any] | None = None,
           target_period: float | None = None) -> SearchResult:
    """Run BLS over ``lc`` and judge the best period against the target.

    Parameters
    ----------
    lc : LightCurve
        Times in days.
    lc_duration : float, optional
        Keep only the first ``lc_duration`` days.
    search_settings : mapping, optional
        Overrides of :data:`DEFAULT_SETTINGS`: ``period_min``, ``period_max`` [days],
        ``durations`` [days], ``minimum_n_transit``, ``frequency_factor``, ``objective``,
        ``oversample``.
    target_period : float, optional
        The true period [days]; defaults to ``lc.meta['orbital_period']``.
    """
    settings = _settings(search_settings)
    if target_period is None:
        target_period = lc.finite_meta_number("orbital_period")
    if lc_duration is not None:
        lc = lc.truncate(float(lc_duration))
    good = lc.good()
    if len(good) < MIN_GOOD_SAMPLES:
        raise ValueError(f"BLS needs at least {MIN_GOOD_SAMPLES} good samples, got {len(good)}")
    t = good.time
    median = float(np.median(good.flux))
    if not median > 0:
        raise ValueError(f"cannot normalise a flux whose median is {median}")
    y = good.flux / median
    dy = None if good.flux_err is None else good.flux_err / median
    if dy is None or not np.all(np.isfinite(dy) & (dy > 0)):
        sigma = _robust_sigma(y)
        dy = np.full(y.size, sigma) if sigma > 0 else None

    baseline = float(t[-1] - t[0])
    durations = settings["durations"]
    period_min = float(settings["period_min"])
    period_max = float(settings["period_max"]) if settings["period_max"] is not None \
        else baseline / 2
    if not period_max > period_min:
        raise ValueError(f"empty period range {period_min} .. {period_max} d "
                         f"(baseline {baseline:.6g} d)")
    if durations[-1] >= period_min:
        raise ValueError(f"the longest duration ({durations[-1]} d) must be shorter than "
                         f"period_min ({period_min} d)")

    model = BoxLeastSquares(t, y, dy)
    periods = model.autoperiod(durations, minimum_period=period_min, maximum_period=period_max,
                               minimum_n_transit=int(settings["minimum_n_transit"]),
                               frequency_factor=float(settings["frequency_factor"]))
    result = model.power(periods, durations, objective=settings["objective"],
                         oversample=int(settings["oversample"]))
    power = np.asarray(result.power, dtype=np.float64)
    best = int(np.nanargmax(power))
    period = float(result.period[best])
    epoch = float(result.transit_time[best])
    duration = float(result.duration[best])
    spread = float(np.nanstd(power))
    sde = (float(power[best]) - float(np.nanmean(power))) / spread if spread > 0 else math.nan
    stats = model.compute_stats(period, duration, epoch)
    transit_count = int(np.count_nonzero(np.asarray(stats["per_transit_count"]) > 0))

    return SearchResult(
        period=period,
        epoch=epoch,
        duration=duration,
        depth=float(result.depth[best]) * 1e6,
        power=float(power[best]),
        snr=float(result.depth_snr[best]),
        sde=sde,
        transit_count=transit_count,
        target_period=target_period,
        outcome=period_outcome(target_period, period),
        periodogram_period=np.asarray(result.period, dtype=np.float64),
        periodogram_power=power,
    )
