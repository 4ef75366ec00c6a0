"""The ``detrend`` task: remove stellar variability and systematics with wotan (Hippke et al.
2019), so that real, unflattened light curves can be searched for transits.

Parameters:

=================  =========================================================  ===========
parameter          meaning                                                    default
=================  =========================================================  ===========
method             wotan's filter (see :data:`METHODS`)                       biweight
window_length      filter window [days], or "auto" (below)                    1.0
period_max         "auto" only: longest period searched [days]                baseline / 2
stellar_density    "auto" only: the star's density [solar]                    1 (the Sun)
edge_cutoff        days dropped (flagged) at each edge of each segment        0
break_tolerance    a gap longer than this [days] splits the light curve       0.5
kernel             ``biweight`` only: "fast" or "wotan" (see below)            fast
=================  =========================================================  ===========

The biweight runs by default on the fast kernel of :mod:`functions.detrend.fast_biweight`:
wotan's biweight evaluated at window centres a few samples apart and interpolated, within a few
ppm rms of wotan's trend at a fraction of its cost; ``kernel="wotan"`` asks for wotan's own,
every-sample trend (the reference). The other methods always run on wotan.

A filter window shallows every transit longer than about a third of it (Hippke et al. 2019, AJ
158, 143, section 3: a window of about three times the longest transit duration). Measured with
this task on a 13-h, 300-ppm box transit (PLATO's Earth-Sun analogue at one year; injected and
recovered in tests/science/test_detrend_window.py): a 1-day biweight keeps 0.44 of its depth on
a quiet star, 1.62 d (3 x 13 h) 0.71; with a Sun-like rotation in the window (0.1 % at 25 d)
0.43 and 0.64; in Kepler-10's real quarter 0.41-0.48 and 0.70-0.77. A robust location filter
follows a transit more as the star's trend across its window grows, so the figures fall with
activity, and no window keeps all of a long transit on an active star.
``window_length="auto"`` (what the standard path uses) is therefore :data:`AUTO_FACTOR` times
the duration of a central transit at the longest period the search will look for (``period_max``,
by default half the light curve's baseline, as planet_search's) around a star of
``stellar_density``, and never less than :data:`AUTO_FLOOR` days, the window that follows
stellar variability on short light curves: a TESS sector or a Kepler quarter keeps 1 d, two
years of PLATO around a Sun-like star get 1.62 d (:func:`auto_window`; the rule and its inputs
are recorded as ``window_rule``). The trend is fitted to the good samples; every sample's flux and
uncertainty are divided by the trend (interpolated at bad samples), so the output keeps the
input's raster and flags, and samples without a trend (edges, wotan's NaNs) are flagged bad.
Output metadata records ``detrend_method``, ``detrend_kernel`` and
``detrend_window_length`` [d] (the window used, also when it was "auto").
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np

from eas_runtime.bls.grid import DENSITY_RANGE, transit_duration
from eas_runtime.lightcurve import LightCurve
from eas_runtime.lightcurve.search import robust_sigma
from eas_runtime.task_api import InputError, ParameterError
from functions.detrend.fast_biweight import KERNELS, biweight_trend, wotan_trend

#: Filters that need nothing beyond wotan, numpy, scipy and numba. ``savgol`` and ``medfilt``
#: work in samples: the window is converted from days with the median sampling interval.
METHODS = ("biweight", "median", "mean", "trim_mean", "winsorize", "tau", "welsch",
           "andrewsinewave", "cosine", "cofiam", "rspline", "savgol", "medfilt")
IN_SAMPLES = ("savgol", "medfilt")
MIN_GOOD_SAMPLES = 10
#: ``window_length="auto"``: this many times the longest transit searched (Hippke et al. 2019),
#: and never shorter than AUTO_FLOOR [d].
AUTO = "auto"
AUTO_FACTOR = 3.0
AUTO_FLOOR = 1.0


def auto_window(baseline: float, *, period_max: float | None = None,
                stellar_density: float | None = None) -> tuple[float, str]:
    """The "auto" window [d] for a light curve spanning ``baseline`` days, and the rule as text:
    :data:`AUTO_FACTOR` x the central transit's duration at ``period_max`` (default: half the
    baseline) around a star of ``stellar_density`` [solar] (default 1), at least
    :data:`AUTO_FLOOR`."""
    density = 1.0 if stellar_density is None else stellar_density
    period = baseline / 2.0 if period_max is None else period_max
    t14 = float(transit_duration(period, density)) if period > 0 else 0.0
    window = max(AUTO_FLOOR, AUTO_FACTOR * t14)
    rule = (f"auto: max({AUTO_FLOOR:g} d, {AUTO_FACTOR:g} x T14 = {AUTO_FACTOR * t14:.3f} d), "
            f"T14 of a central transit at P = {period:.4g} d, stellar density {density:g} solar")
    return window, rule


@dataclass(frozen=True)
class DetrendResult:
    """What ``detrend`` did; scatters are robust (1.4826 MAD) [ppm]."""

    method: str
    kernel: str
    window_length: float
    window_rule: str
    n_samples: int
    n_flagged: int
    scatter_before_ppm: float
    scatter_after_ppm: float

    UNITS = {"window_length": "d", "scatter_before_ppm": "ppm", "scatter_after_ppm": "ppm"}

    def to_dict(self) -> dict:
        return {k: (None if isinstance(v, float) and not math.isfinite(v) else v)
                for k, v in asdict(self).items()}


def _number(name: str, value, *, minimum: float = 0.0, strict: bool = False,
            unit: str = "days") -> float:
    try:
        number = float(value)
    except (TypeError, ValueError):
        number = math.nan
    if isinstance(value, bool) or not math.isfinite(number) or number < minimum \
            or (strict and number <= minimum):
        bound = f"> {minimum:g}" if strict else f">= {minimum:g}"
        raise ParameterError(f"parameter {name!r} must be a number of {unit} {bound}, got {value!r}")
    return number


def detrend(lc: LightCurve, *, method: str = "biweight", window_length: float | str = 1.0,
            edge_cutoff: float = 0.0, break_tolerance: float = 0.5, kernel: str = "fast",
            period_max: float | None = None, stellar_density: float | None = None
            ) -> tuple[LightCurve, DetrendResult]:
    """Divide ``lc`` by a wotan trend (the biweight's on the fast kernel unless ``kernel`` is
    "wotan"); returns the flattened light curve and a summary. ``window_length`` "auto": see
    :func:`auto_window` (``period_max`` and ``stellar_density`` are its inputs)."""
    if method not in METHODS:
        raise ParameterError(f"parameter 'method' must be one of {list(METHODS)}, got {method!r}")
    if kernel not in KERNELS:
        raise ParameterError(f"parameter 'kernel' must be one of {list(KERNELS)}, got {kernel!r}")
    kernel = kernel if method == "biweight" else "wotan"
    auto = window_length == AUTO
    if not auto:
        if isinstance(window_length, str) and window_length.strip().lower() == AUTO:
            raise ParameterError(f"parameter 'window_length' must be a number of days > 0 or "
                                 f"{AUTO!r} (lower case), got {window_length!r}")
        window_length = _number("window_length", window_length, strict=True)
        if period_max is not None or stellar_density is not None:
            raise ParameterError("parameters 'period_max' and 'stellar_density' choose the "
                                 "window of window_length='auto'; window_length is "
                                 f"{window_length:g} d")
    if period_max is not None:
        period_max = _number("period_max", period_max, strict=True)
    if stellar_density is not None:
        stellar_density = _number("stellar_density", stellar_density, strict=True,
                                  unit="solar densities")
        if not DENSITY_RANGE[0] <= stellar_density <= DENSITY_RANGE[1]:
            raise ParameterError(f"parameter 'stellar_density' must be between "
                                 f"{DENSITY_RANGE[0]:g} and {DENSITY_RANGE[1]:g} solar, "
                                 f"got {stellar_density!r}")
    edge_cutoff = _number("edge_cutoff", edge_cutoff)
    break_tolerance = _number("break_tolerance", break_tolerance, strict=True)
    good = lc.good_mask()
    if good.sum() < MIN_GOOD_SAMPLES:
        raise InputError(f"detrending needs at least {MIN_GOOD_SAMPLES} good samples, "
                         f"the light curve has {int(good.sum())}")
    t, f = lc.time[good], lc.flux[good]
    if auto:
        window_length, rule = auto_window(float(t[-1] - t[0]), period_max=period_max,
                                          stellar_density=stellar_density)
    else:
        rule = "given"
    assert isinstance(window_length, float)
    window = window_length
    if method in IN_SAMPLES:
        step = float(np.median(np.diff(t)))
        window = max(3, int(round(window_length / step)) // 2 * 2 + 1)   # odd, in samples
    if method == "biweight":
        trend_good = biweight_trend(t, f, window_length, edge_cutoff=edge_cutoff,
                                    break_tolerance=break_tolerance, kernel=kernel)
    else:
        trend_good = wotan_trend(t, f, window, edge_cutoff, break_tolerance, method=method)
    usable = np.isfinite(trend_good) & (trend_good > 0)
    if not usable.any():
        raise InputError(f"the {method} filter ({kernel}) gave no usable trend "
                         f"(window {window_length:g} d)")
    trend = np.interp(lc.time, t[usable], trend_good[usable])
    no_trend = np.zeros(len(lc), dtype=bool)
    no_trend[np.flatnonzero(good)[~usable]] = True
    flux = lc.flux / trend
    err = None if lc.flux_err is None else lc.flux_err / trend
    flags = lc.flags.astype(bool) | no_trend
    out = lc.with_flux(flux, err, flags, provenance=f"detrend({method}, {window_length:g} d)")
    out = out.with_meta(detrend_method=method, detrend_kernel=kernel,
                        detrend_window_length=window_length)
    after = flux[good & ~no_trend]
    summary = DetrendResult(
        method=method, kernel=kernel, window_length=window_length, window_rule=rule,
        n_samples=len(lc),
        n_flagged=int(no_trend.sum()),
        scatter_before_ppm=robust_sigma(f / np.median(f)) * 1e6,
        scatter_after_ppm=robust_sigma(after) * 1e6 if after.size else math.nan)
    return out, summary


def warm_up() -> None:
    """Compile (or load from numba's cache) the kernels every method can reach: the fast
    biweight's and wotan's (:mod:`eas_runtime.warmup` runs this when the image is built)."""
    rng = np.random.default_rng(0)
    t = np.arange(0.0, 4.0, 0.01)
    lc = LightCurve(t, 1.0 + 1e-3 * np.sin(t) + rng.normal(0.0, 1e-4, t.size), None)
    for method in METHODS:
        for kernel in (KERNELS if method == "biweight" else ("wotan",)):
            detrend(lc, method=method, window_length=0.5, kernel=kernel)
