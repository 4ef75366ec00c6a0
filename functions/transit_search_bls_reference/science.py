"""The ``transit_search_bls_reference`` task: astropy's Box Least Squares periodogram.

Settings are the prototype's: durations ``linspace(0.05, 0.2, 10)`` days, and the period grid
of :meth:`astropy.timeseries.BoxLeastSquares.autoperiod` from 0.5 days to half the baseline
with ``minimum_n_transit=2`` and ``frequency_factor=2`` (frequency step
``2 * min(duration) / baseline**2``). Only good samples are used (flag 0, finite flux); the
flux is divided by its median. Without usable uncertainties, each sample gets the robust
scatter (1.4826 * median absolute deviation) of the flux, so that ``snr`` means something. A
light curve with neither (a synthesis without noise: the scatter of its flux is 0) is searched
with every sample weighed the same by every method, as astropy's ``BoxLeastSquares`` does
without ``dy``: the period, epoch, duration and depth are found as usual; without noise a dip
is certain, so ``snr`` is infinite (recorded as null) and the candidate detected when the
box's depth is positive, 0 otherwise, and a warning says so.

``method`` chooses the search: ``"astropy"`` (the default, all of the above), or the fast search
of :func:`eas_runtime.bls.search.search_lightcurve` on the same good, normalised samples:
``"fast"`` (its compiled BLS kernel, the same statistic as astropy's) or ``"ffa"`` (its
fast-folding search). Both search the period grid of Ofir (2014) for the baseline and the star
(``stellar_density``, or ``stellar_mass`` and ``stellar_radius``, in solar units; the Sun by
default) from ``period_min`` to ``period_max``, with ``oversampling`` trial phases per central
transit duration, over the durations such a star allows at each period, on samples binned to
``prebin_fraction`` of the shortest duration; ``durations``, ``frequency_factor``,
``minimum_n_transit`` and ``objective`` are astropy's and refused with them. ``oversample``
(phase bins per shortest duration) defaults to 5 with them. They use ``cpus`` threads. Their
grid has planet_search's bounds (:mod:`eas_runtime.bls.grid`): ``oversampling`` 0.5-20, a
density of 1e-4 to 1e7 solar, ``period_min`` at least 0.1 d, ``oversample`` at most 100 and at
most 2,000,000 trial periods, so that a mistaken setting fails at once with a parameter error.

Results (units in :data:`UNITS`): ``period``, ``epoch`` (mid-transit), ``duration`` [d],
``depth`` [ppm], ``power`` (the BLS log-likelihood at the peak), ``snr`` (depth over its
uncertainty), ``sde``, ``transit_count``, ``target_period``, ``outcome`` and copies of the
input's ``integrated_transit_power``, ``pixels_in_transit`` and ``mes`` (with ``"fast"`` and
``"ffa"`` also ``n_periods``). The periodogram has columns ``period`` [d], ``power``, ``depth``
[ppm], ``duration`` [d] and ``epoch`` [d].

References
----------
Kovacs, Zucker & Mazeh (2002), A&A 391, 369; astropy ``BoxLeastSquares`` documentation;
Ofir (2014), A&A 561, A138.
"""
from __future__ import annotations

import logging
import math
from typing import Any, Mapping

import numpy as np
from astropy.timeseries import BoxLeastSquares

from eas_runtime.bls.grid import (check_grid_settings, check_grid_size, grid_size,
                                  stellar_density)
from eas_runtime.bls.search import OVERSAMPLE, search_lightcurve
from eas_runtime.lightcurve import LightCurve
from eas_runtime.lightcurve.search import (UNITS, SearchResult, number, period_range, prepare,
                                           sde, settings_from, transit_count)
from eas_runtime.task_api import ParameterError

TASK = "transit_search_bls_reference"
log = logging.getLogger(f"eas.task.{TASK}")
DEFAULT_DURATIONS_D = tuple(float(d) for d in np.linspace(0.05, 0.2, 10))
DEFAULT_SETTINGS: dict[str, Any] = {
    "period_min": 0.5,          # days
    "period_max": None,         # days; None means half the baseline
    "durations": DEFAULT_DURATIONS_D,  # days
    "minimum_n_transit": 2,
    "frequency_factor": 2.0,
    "objective": "likelihood",  # or "snr"
    "oversample": 10,           # 5 with the fast methods
    "method": "astropy",        # or "fast", "ffa"
    "stellar_density": None,    # solar units; fast methods; None: the Sun
    "stellar_mass": None,       # solar units, with stellar_radius; fast methods
    "stellar_radius": None,     # solar units
    "oversampling": 3.0,        # Ofir grid; fast methods
    "prebin_fraction": 1.0 / 3.0,  # of the shortest duration; fast methods
}
OBJECTIVES = ("likelihood", "snr")
METHODS = ("astropy", "fast", "ffa")
#: Settings of astropy's grid, refused with the fast methods.
ASTROPY_ONLY = ("durations", "frequency_factor", "minimum_n_transit", "objective")
#: Settings of the fast methods, refused with astropy's.
FAST_ONLY = ("stellar_density", "stellar_mass", "stellar_radius", "oversampling",
             "prebin_fraction")
#: Most phase bins per shortest duration with the fast methods (each is more work per period).
MAX_OVERSAMPLE = 100

__all__ = ["DEFAULT_DURATIONS_D", "DEFAULT_SETTINGS", "UNITS", "SearchResult", "search"]


def _settings(search_settings: Mapping[str, Any] | None) -> dict[str, Any]:
    settings = settings_from(search_settings, DEFAULT_SETTINGS, task=TASK)
    try:
        durations = np.atleast_1d(np.asarray(settings["durations"], dtype=np.float64))
    except (TypeError, ValueError):
        durations = np.array([np.nan])
    if durations.size == 0 or not np.all(np.isfinite(durations) & (durations > 0)):
        raise ParameterError(f"search setting 'durations' must be positive days, "
                             f"got {settings['durations']!r}")
    settings["durations"] = np.sort(durations)
    if settings["objective"] not in OBJECTIVES:
        raise ParameterError(f"search setting 'objective' must be one of {list(OBJECTIVES)}, "
                             f"got {settings['objective']!r}")
    for key in ("minimum_n_transit", "oversample"):
        number(settings, key, positive=True, integer=True)
    number(settings, "frequency_factor", positive=True)
    if settings["method"] not in METHODS:
        raise ParameterError(f"search setting 'method' must be one of {list(METHODS)}, "
                             f"got {settings['method']!r}")
    given = {key for key, value in (search_settings or {}).items() if value is not None}
    fast = settings["method"] != "astropy"
    refused = sorted(given & set(ASTROPY_ONLY if fast else FAST_ONLY))
    if refused:
        raise ParameterError(f"search setting(s) {refused} do not apply to method "
                             f"{settings['method']!r}")
    if fast:
        if "oversample" not in given:
            settings["oversample"] = OVERSAMPLE
        for key in ("stellar_density", "stellar_mass", "stellar_radius"):
            number(settings, key, positive=True, optional=True)
        for key in ("oversampling", "prebin_fraction"):
            number(settings, key, positive=True)
        try:
            settings["density"] = stellar_density(settings["stellar_density"],
                                                  settings["stellar_mass"],
                                                  settings["stellar_radius"])
        except ValueError as exc:
            raise ParameterError(f"search settings of the star: {exc}") from None
        # The Ofir grid's bounds (eas_runtime.bls.grid), as planet_search's.
        try:
            check_grid_settings(oversampling=settings["oversampling"], density=settings["density"],
                                period_min=number(settings, "period_min", positive=True))
        except ValueError as exc:
            raise ParameterError(str(exc)) from None
        if not 1 <= settings["oversample"] <= MAX_OVERSAMPLE:
            raise ParameterError(f"search setting 'oversample' must be from 1 to {MAX_OVERSAMPLE} "
                                 f"with the fast methods, got {settings['oversample']!r}")
    return settings


def search(lc: LightCurve, *, lc_duration: float | None = None,
           search_settings: Mapping[str, Any] | None = None,
           target_period: float | None = None, cpus: int = 1) -> SearchResult:
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
        ``oversample``, ``method`` and the fast methods' settings (module documentation).
    target_period : float, optional
        The true period [days]; defaults to ``lc.meta['orbital_period']``.
    cpus : int
        Threads of the fast methods.
    """
    settings = _settings(search_settings)
    data = prepare(lc, lc_duration, target_period=target_period)
    if settings["method"] != "astropy":
        return _fast(data, settings, cpus)
    durations = settings["durations"]
    period_min, period_max = period_range(settings, data.baseline,
                                          shortest_duration=float(durations[-1]))
    model = BoxLeastSquares(data.time, data.flux, _weights(data))
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
    return SearchResult.build(
        data, period=period, epoch=epoch, duration=duration,
        depth=float(result.depth[best]) * 1e6, power=float(power[best]),
        snr=_snr(data, float(result.depth_snr[best]), float(result.depth[best])), sde_value=sde(power),
        count=transit_count(data.time, period, epoch, duration),
        periodogram={"period": np.asarray(result.period, dtype=np.float64), "power": power,
                     "depth": np.asarray(result.depth, dtype=np.float64) * 1e6,
                     "duration": np.asarray(result.duration, dtype=np.float64),
                     "epoch": np.asarray(result.transit_time, dtype=np.float64)})


def _weights(data) -> np.ndarray:
    """Each sample's uncertainty: its own, else the flux's robust scatter, else (a noiseless
    light curve) 1 for all, which is what astropy's BLS takes without ``dy``; warned."""
    if data.flux_err is not None:
        return data.flux_err
    if not data.noiseless:
        return np.full(data.flux.size, data.sigma)
    log.warning("the light curve has no uncertainties and its flux no scatter (noiseless?): every "
                "sample weighs the same, and a dip's snr is infinite (recorded as null)")
    return np.ones(data.flux.size)


def _snr(data, snr: float, depth_ppm: float) -> float:
    """The search's snr; for a noiseless light curve (:func:`_weights`) +inf when the best box
    is a dip and 0 when it is not, not the ratio to the unit weight."""
    if data.noiseless:
        return math.inf if depth_ppm > 0 else 0.0
    return snr


def _fast(data, settings: dict[str, Any], cpus: int) -> SearchResult:
    """The fast search (eas_runtime.bls) of ``data`` with validated ``settings``."""
    period_min, period_max = period_range(settings, data.baseline)
    n_periods = grid_size(data.baseline, density=settings["density"],
                          oversampling=float(settings["oversampling"]),
                          period_min=period_min, period_max=period_max)
    try:
        check_grid_size(n_periods)
    except ValueError as exc:
        raise ParameterError(str(exc)) from None
    dy = _weights(data)
    found = search_lightcurve(
        data.time, data.flux, dy, period_min=period_min, period_max=period_max,
        density=settings["density"], oversampling=float(settings["oversampling"]),
        prebin_fraction=float(settings["prebin_fraction"]),
        method="bls" if settings["method"] == "fast" else "ffa",
        threads=max(1, int(cpus)), oversample=int(settings["oversample"]))
    gram = found.periodogram
    return SearchResult.build(
        data, period=found.period, epoch=found.epoch, duration=found.duration,
        depth=found.depth * 1e6, power=found.power, snr=_snr(data, found.snr, found.depth),
        sde_value=found.sde,
        count=transit_count(data.time, found.period, found.epoch, found.duration),
        periodogram={"period": gram["period"], "power": gram["power"],
                     "depth": gram["depth"] * 1e6, "duration": gram["duration"],
                     "epoch": gram["transit_time"]},
        extra={"n_periods": found.n_periods})


def warm_up() -> None:
    """Compile (or load from numba's cache) the BLS kernels (:mod:`eas_runtime.warmup`)."""
    from eas_runtime.bls import warm_up as bls_warm_up

    bls_warm_up()
