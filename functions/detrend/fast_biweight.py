"""wotan's time-windowed biweight trend, evaluated where it can change rather than at every
sample.

wotan (Hippke et al. 2019) computes the biweight location of a window centred on every
sample: 2.5 million windows of ~3,500 samples for two years at 25 s with a 1-day window. The
trend those windows describe changes on the scale of the window, not of the cadence, so
:func:`biweight_trend` (``kernel="fast"``) computes the same location (same window, median,
MAD-based scale with cval 5, iteration and tolerance; see :mod:`._biweight_core`) at window
centres ``step`` apart, in parallel on the numba threads, and interpolates linearly to the
samples. Each break_tolerance segment has its own grid, from its first to its last sample inside
the edge cutoff (wotan's NaN outside), so nothing is interpolated across a gap or an edge.
``step=0`` evaluates every sample: wotan's trend itself, to round-off. ``kernel="wotan"`` runs
wotan's ``flatten`` (the reference, and the path of every other method).

The step (:func:`default_step`) is set by what limits the interpolation, measured against
wotan: not the trend's curvature (window / 100 leaves < 2 ppm rms on 1 % spot modulation) but
wotan's own per-sample jitter, a random walk of ~sigma / N per sample (sigma the scatter of
the values in a window of N samples) that a line through the centres cannot follow. The step
is chosen for 5 ppm rms of it, half the 10 ppm allowed; where every sample is cheap (a TESS
sector) every sample is evaluated.

Decision: ``biweight`` takes this path by default in ``detrend`` (``kernel="fast"``), so every
job and chain gets it without change; ``kernel="wotan"`` asks for wotan's own trend.
"""
from __future__ import annotations

import math

import numpy as np

#: Longest spacing of the window centres, as a fraction of the window.
STEP_FRACTION = 1 / 100
#: The interpolation's expected rms difference from wotan's trend [relative] that
#: :func:`default_step` aims at, and the constant of its model (measured, see the docstring).
TARGET = 5e-6
JITTER = 0.8
#: Windows sampled for the scatter that sets the grid.
PROBES = 64
#: Below this many samples x samples per window, every sample is evaluated (wotan's trend to
#: round-off, in well under a second): a TESS sector at 2 min is 1.3e7.
EXACT_BUDGET = 5e7
#: Biweight tuning constant (wotan's default for ``biweight``).
CVAL = 5.0
KERNELS = ("fast", "wotan")


def default_step(time: np.ndarray, flux: np.ndarray, window_length: float) -> float:
    """Spacing of the window centres [d] (0: every sample) for an expected interpolation
    error of :data:`TARGET` rms against wotan's trend.

    wotan's trend steps by ~sigma / N from one sample to the next (one value enters the
    window of N samples, one leaves; sigma the scatter of the values in a window: the noise,
    or the variability where it is larger), a random walk that a line through centres m
    samples apart misses by ``JITTER * sigma * sqrt(m) / N`` rms (measured: 0.67-0.9 on the
    TESS curves for m = 4-14, about 0.5 on two years at 25 s with 1 % spots). So
    ``m = (TARGET * N / (JITTER * sigma))**2`` samples, at most :data:`STEP_FRACTION` of the
    window (the curvature of the trend); every sample when that is under 2 samples or when
    evaluating every sample is cheap (:data:`EXACT_BUDGET`).
    """
    if time.size < 3:
        return 0.0
    cadence = float(np.median(np.diff(time)))
    if cadence <= 0 or time.size * window_length / cadence <= EXACT_BUDGET:
        return 0.0
    return grid_step(time, flux, window_length, cadence=cadence)


def grid_step(time: np.ndarray, flux: np.ndarray, window_length: float,
              cadence: float | None = None) -> float:
    """:func:`default_step` without the budget for every sample: the grid set by the scatter of
    the values in a window (1.4826 MAD relative to the median, the rms over :data:`PROBES`
    windows spread over the light curve). ``cadence``: the median step of ``time`` [d], when
    the caller has it."""
    if cadence is None:
        cadence = float(np.median(np.diff(time)))
    if cadence <= 0:
        return 0.0
    half = window_length / 2
    spreads = []
    for centre in np.linspace(time[0] + half, time[-1] - half, PROBES):
        lo, hi = np.searchsorted(time, [centre - half, centre + half])
        values = flux[lo:hi]
        if values.size >= 10:
            level = np.median(values)
            spreads.append(1.4826 * np.median(np.abs(values - level)) / abs(level)
                           if level != 0 else np.inf)
    sigma = float(np.sqrt(np.mean(np.square(spreads)))) if spreads else np.inf  # rms: as errors add
    n = window_length / cadence
    m = (TARGET * n / (JITTER * sigma)) ** 2 if sigma > 0 else math.inf
    step = min(window_length * STEP_FRACTION, math.floor(m) * cadence) if m >= 2 else 0.0
    return step if step >= 2 * cadence else 0.0


def _segments(time: np.ndarray, break_tolerance: float) -> np.ndarray:
    """Start indexes of wotan's segments (a step longer than ``break_tolerance`` splits), and
    the end."""
    cuts = np.flatnonzero(np.diff(time) > break_tolerance) + 1
    return np.concatenate(([0], cuts, [time.size]))


def _centres(t: np.ndarray, half: float, edge_cutoff: float, step: float):
    """Window centres of one segment ``t``: its samples inside the edge cutoff (``step`` 0) or
    a uniform grid from the first to the last of them; ``None`` if there is none."""
    edge = min(edge_cutoff, half)
    inside = (t >= t[0] + edge) & (t <= t[-1] - edge)
    if not inside.any():
        return None
    first, last = t[inside][0], t[inside][-1]
    if step == 0:
        return t[inside]
    n = max(1, math.ceil((last - first) / step))
    return np.linspace(first, last, n + 1) if last > first else np.array([first])


def _fast(time, flux, window_length, edge_cutoff, break_tolerance, step, threads):
    import numba

    from functions.detrend._biweight_core import biweight_at

    half = window_length / 2
    bounds = _segments(time, break_tolerance)
    centres, lo, hi, seg = [], [], [], []
    for s, (a, b) in enumerate(zip(bounds[:-1], bounds[1:])):
        c = _centres(time[a:b], half, edge_cutoff, step)
        if c is None:
            continue
        centres.append(c)
        lo.append(a + np.searchsorted(time[a:b], c - half, side="left"))
        hi.append(a + np.searchsorted(time[a:b], c + half, side="left"))
        seg.append(np.full(c.size, s))
    trend = np.full(time.size, np.nan)
    if not centres:
        return trend
    centres = np.concatenate(centres)
    lo, hi, seg = (np.concatenate(x).astype(np.int64) for x in (lo, hi, seg))
    n_chunks = int(max(1, min(256, centres.size // 32)))
    previous = numba.get_num_threads()
    if threads is not None:
        numba.set_num_threads(max(1, min(int(threads), numba.config.NUMBA_NUM_THREADS)))
    try:
        values = biweight_at(flux, lo, hi, seg, CVAL, n_chunks)
    finally:
        numba.set_num_threads(previous)
    for s in np.unique(seg):
        a, b = bounds[s], bounds[s + 1]
        here = seg == s
        c, v = centres[here], values[here]
        t = time[a:b]
        inside = (t >= c[0]) & (t <= c[-1])
        trend[a:b][inside] = np.interp(t[inside], c, v) if c.size > 1 else v[0]
    return trend


def wotan_trend(time, flux, window_length, edge_cutoff, break_tolerance,
                method: str = "biweight") -> np.ndarray:
    """wotan's own ``method`` trend (its progress output and warnings silenced); the window in
    days, or in samples for wotan's sample-windowed filters."""
    import contextlib
    import io
    import warnings

    from wotan import flatten
    with contextlib.redirect_stdout(io.StringIO()), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        _, trend = flatten(time, flux, method=method, window_length=window_length,
                           edge_cutoff=edge_cutoff, break_tolerance=break_tolerance,
                           return_trend=True)
    return np.asarray(trend, dtype=np.float64)


def biweight_trend(time, flux, window_length: float, *, edge_cutoff: float = 0.0,
                   break_tolerance: float = 0.5, kernel: str = "fast", step: float | None = None,
                   threads: int | None = None) -> np.ndarray:
    """wotan's biweight trend of ``flux`` (time-windowed, cval 5).

    Parameters
    ----------
    time, flux : array-like
        Sample times [d], ascending, and fluxes; both finite.
    window_length : float
        Window [d], centred on each sample.
    edge_cutoff : float
        Days without a trend (NaN) at each end of each segment (at most half the window).
    break_tolerance : float
        A step in time longer than this [d] splits the light curve into segments detrended
        separately.
    kernel : {"fast", "wotan"}
        "fast": window centres ``step`` apart, interpolated; "wotan": wotan's ``flatten``.
    step : float, optional
        Spacing of the window centres [d] (fast kernel); default :func:`default_step`;
        0 evaluates every sample.
    threads : int, optional
        numba threads for the fast kernel (default: numba's setting).

    Returns
    -------
    numpy.ndarray
        The trend at every sample; NaN where wotan gives none (edge cutoff).
    """
    time = np.ascontiguousarray(time, dtype=np.float64)
    flux = np.ascontiguousarray(flux, dtype=np.float64)
    if kernel not in KERNELS:
        raise ValueError(f"kernel must be one of {list(KERNELS)}, got {kernel!r}")
    if time.shape != flux.shape or time.ndim != 1 or time.size == 0:
        raise ValueError(f"time and flux must be 1-d, non-empty and of one length, got "
                         f"{time.shape} and {flux.shape}")
    if not (np.isfinite(time).all() and np.isfinite(flux).all()):
        raise ValueError("time and flux must be finite")
    if np.any(np.diff(time) < 0):
        raise ValueError("time must be ascending")
    if not window_length > 0:
        raise ValueError(f"window_length must be > 0, got {window_length!r}")
    if kernel == "wotan":
        return wotan_trend(time, flux, window_length, edge_cutoff, break_tolerance)
    step = default_step(time, flux, window_length) if step is None else float(step)
    if not step >= 0:
        raise ValueError(f"step must be >= 0, got {step!r}")
    return _fast(time, flux, float(window_length), float(edge_cutoff), float(break_tolerance),
                 step, threads)
