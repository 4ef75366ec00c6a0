"""The BLS periodogram: validated public API and its two kernels.

:func:`bls` takes times in days, relative fluxes, their uncertainties and grids of trial periods
and durations in days, and returns a :class:`BLSPower`: per period, the best box of the
algorithm of astropy's ``BoxLeastSquares.power(method="fast")`` (its ``bls.c``), with the same
conventions, so that on the same grid every column agrees with astropy's (to the last bit for
the reference kernel; for the fast one too, except where a sample lies within about 1e-15 of a
phase-bin edge, see :mod:`._kernel`):

- the flux is taken relative to its median; weights are ``1 / dy**2`` (1 when ``dy`` is None);
- times are taken relative to the earliest one, ``t_ref = min(t)``, and folded at each period
  into phase bins of width ``bin_d = min(durations) / oversample`` days; a box spans
  ``round(duration / bin_d)`` consecutive bins (the duration reported is that number times
  ``bin_d``), starting at any bin from the first up to the last that keeps it inside the
  bins plus ``oversample`` bins repeated from the start of phase (so a wide box does not reach
  every phase, and the last, partial bin of phase is replaced by the first one, as in astropy);
- a box needs weight in and out of transit (more than the double epsilon) and a dip
  (mean flux in transit no higher than out of it);
- ``objective="likelihood"``: power = ``0.5 * w_in * depth**2``, the log-likelihood gain of the
  box model; ``objective="snr"``: power = ``depth / depth_err``; of equal powers the first box
  in the order (duration as given, then starting bin) wins;
- ``transit_time`` is the middle of the best box, ``t_ref + (start * bin_d + duration / 2) mod
  period``.

A duration at least as long as a period is skipped at that period (astropy refuses the whole
grid instead); a period with no box left (or none with a dip) has power ``-inf`` (astropy's
value) and NaN in the other columns.

References
----------
Kovacs, Zucker & Mazeh (2002), A&A 391, 369; astropy ``timeseries.periodograms.bls``.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, fields

import numpy as np

OBJECTIVES = ("likelihood", "snr")
#: Smallest weight a side of a box needs (C's ``DBL_EPSILON``, as astropy).
MIN_WEIGHT = float(np.finfo(np.float64).eps)
COLUMNS = ("power", "depth", "depth_err", "duration", "transit_time", "log_likelihood",
           "depth_snr")


@dataclass(frozen=True)
class BLSPower:
    """The best box at each trial period (arrays of the length of ``periods``).

    ``power``: the objective at the best box (``-inf`` when no box qualifies);
    ``depth``, ``depth_err``: mean flux out of transit minus in transit and its 1-sigma
    uncertainty [relative flux]; ``duration``: box length [d]; ``transit_time``: mid-transit
    time [d, same origin as the input times]; ``log_likelihood``: log-likelihood gain of the box
    model over a constant; ``depth_snr``: ``depth / depth_err``.
    """

    power: np.ndarray
    depth: np.ndarray
    depth_err: np.ndarray
    duration: np.ndarray
    transit_time: np.ndarray
    log_likelihood: np.ndarray
    depth_snr: np.ndarray

    def to_dict(self) -> dict[str, np.ndarray]:
        return {f.name: getattr(self, f.name) for f in fields(self)}


# ---------------------------------------------------------------- validation
def _float_array(name: str, values, ndim_one: bool = True) -> np.ndarray:
    try:
        array = np.ascontiguousarray(values, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{name} must be numbers, got {type(values).__name__}: {exc}") from None
    if ndim_one and array.ndim != 1:
        raise ValueError(f"{name} must be a 1-D array, got shape {array.shape}")
    bad = ~np.isfinite(array)
    if bad.any():
        raise ValueError(f"{name} has {int(bad.sum())} non-finite values (NaN or inf), the "
                         f"first at index {int(np.flatnonzero(bad.ravel())[0])}; drop them first")
    return array


def _validate(t, y, dy, periods, durations, objective, oversample, method, threads):
    t = _float_array("t", t)
    y = _float_array("y", y)
    if t.size != y.size:
        raise ValueError(f"t and y must have the same length, got {t.size} and {y.size}")
    if t.size == 0:
        raise ValueError("t is empty: a periodogram needs samples")
    if dy is not None:
        dy = np.broadcast_to(_float_array("dy", dy, ndim_one=False), y.shape)
        if not np.all(dy > 0):
            raise ValueError(f"dy must be positive, got {float(dy.min())!r} at index "
                             f"{int(np.argmin(dy))}")
    periods = _float_array("periods", periods)
    durations = _float_array("durations", durations)
    for name, grid in (("periods", periods), ("durations", durations)):
        if grid.size == 0:
            raise ValueError(f"{name} is empty")
        if not np.all(grid > 0):
            raise ValueError(f"{name} must be positive days, got {float(grid.min())!r}")
    if objective not in OBJECTIVES:
        raise ValueError(f"objective must be one of {list(OBJECTIVES)}, got {objective!r}")
    if isinstance(oversample, bool) or not isinstance(oversample, (int, np.integer)) \
            or oversample < 1:
        raise ValueError(f"oversample must be an integer >= 1, got {oversample!r}")
    if method not in METHODS:
        raise ValueError(f"method must be one of {sorted(METHODS)}, got {method!r}")
    if threads is not None and (isinstance(threads, bool)
                                or not isinstance(threads, (int, np.integer)) or threads < 1):
        raise ValueError(f"threads must be None or an integer >= 1, got {threads!r}")
    return t, y, dy, periods, durations


def weighted_fluxes(y: np.ndarray, dy: np.ndarray | None) -> np.ndarray:
    """``(n, 2)`` rows ``((y - median(y)) w, w)`` with ``w = 1 / dy**2`` (1 without ``dy``),
    computed as astropy does and in place: no other array of the size of ``y`` is kept."""
    pairs = np.empty((y.size, 2))
    w = pairs[:, 1]
    if dy is None:
        w[:] = 1.0
    else:
        with np.errstate(divide="ignore", over="ignore", under="ignore"):
            np.multiply(dy, dy, out=w)
            np.divide(1.0, w, out=w)
        if not np.all(np.isfinite(w)):
            raise ValueError(f"dy must be large enough for 1 / dy**2 to be finite, got "
                             f"{float(dy.min())!r}")
    yw = pairs[:, 0]
    np.subtract(y, np.median(y), out=yw)
    np.multiply(yw, w, out=yw)
    return pairs


def bls(t, y, dy, periods, durations, *, objective: str = "likelihood", oversample: int = 10,
        method: str = "fast", threads: int | None = None) -> BLSPower:
    """BLS periodogram of ``(t, y, dy)`` at ``periods`` over ``durations``.

    Parameters
    ----------
    t : array of float
        Times [d], in any order.
    y : array of float
        Relative fluxes.
    dy : array of float, float or None
        1-sigma uncertainties of ``y`` (None: equal weights).
    periods, durations : 1-D arrays of float
        Trial periods and box durations [d].
    objective : {"likelihood", "snr"}
        What the best box maximises (see the module documentation).
    oversample : int
        Phase bins per shortest duration.
    method : {"fast", "reference"}
        The compiled kernel, or the plain numpy one (slow; a check).
    threads : int, optional
        Threads of the fast kernel (default: the cores this process may run on; extra memory
        grows with it, see :func:`._kernel.work_arrays`). The result does not depend on it.

    Raises
    ------
    ValueError
        Naming the argument that is unusable (non-finite values, wrong shapes, ...).
    """
    t, y, dy, periods, durations = _validate(t, y, dy, periods, durations, objective,
                                             oversample, method, threads)
    t_ref = float(np.min(t))
    pairs = weighted_fluxes(y, dy)
    columns = METHODS[method](t - t_ref, pairs[:, 0], pairs[:, 1], periods, durations,
                              int(oversample), objective == "likelihood", threads)
    power, depth, depth_err, duration, transit_time, log_likelihood, depth_snr = columns
    return BLSPower(power=power, depth=depth, depth_err=depth_err, duration=duration,
                    transit_time=transit_time + t_ref, log_likelihood=log_likelihood,
                    depth_snr=depth_snr)


# ---------------------------------------------------------------- kernels
# Signature: kernel(x, yw, w, periods, durations, oversample, use_likelihood, threads) -> the
# seven columns of COLUMNS, where x = t - min(t) [d], w = weights, yw = (flux - median) w (the
# columns of weighted_fluxes); the transit time returned is relative to min(t).
def c_round(x: np.ndarray | float):
    """C's ``round`` (halves away from zero) of non-negative ``x``."""
    r = np.floor(x)
    return r + ((x - r) >= 0.5)


def reference(x, yw, w, periods, durations, oversample, use_likelihood, threads=None):
    """Plain numpy kernel, one period at a time (``threads`` is ignored).

    Written from astropy's ``bls.c``: the same operations in the same order, so that on the
    same inputs it gives astropy's numbers to the last bit.
    """
    bin_d = float(np.min(durations)) / oversample
    dur_bins = c_round(durations / bin_d).astype(np.int64)
    sum_y, sum_w = 0.0, 0.0
    for yi, wi in zip(yw.tolist(), w.tolist()):        # sequential, as bls.c
        sum_y += yi
        sum_w += wi
    out = np.full((len(COLUMNS), periods.size), np.nan)
    out[0] = -np.inf
    for p, period in enumerate(periods):
        n_bins = int(np.ceil(period / bin_d)) + oversample
        index = ((x - period * np.floor(x / period)) / bin_d).astype(np.int64) + 1
        sy = np.bincount(index, weights=yw, minlength=n_bins + 1)[:n_bins + 1]
        sw = np.bincount(index, weights=w, minlength=n_bins + 1)[:n_bins + 1]
        sy[n_bins - oversample:n_bins] = sy[1:oversample + 1]      # wrap: phase 0 repeated
        sw[n_bins - oversample:n_bins] = sw[1:oversample + 1]
        cy, cw = np.cumsum(sy), np.cumsum(sw)
        best = -np.inf
        for k, dur in enumerate(dur_bins):
            if durations[k] >= period or dur > n_bins:
                continue
            y_in = cy[dur:] - cy[:n_bins + 1 - dur]
            w_in = cw[dur:] - cw[:n_bins + 1 - dur]
            y_out, w_out = sum_y - y_in, sum_w - w_in
            ok = (w_in >= MIN_WEIGHT) & (w_out >= MIN_WEIGHT)
            with np.errstate(divide="ignore", invalid="ignore"):
                m_in, m_out = y_in / w_in, y_out / w_out
                depth = m_out - m_in
                depth_err = np.sqrt(1.0 / w_in + 1.0 / w_out)
                snr = depth / depth_err
                loglike = 0.5 * w_in * depth * depth
            objective = np.where(ok & (m_out >= m_in), loglike if use_likelihood else snr,
                                 -np.inf)
            n = int(np.argmax(objective))
            if objective[n] > best:
                best = objective[n]
                duration = dur * bin_d
                out[:, p] = (best, depth[n], depth_err[n], duration,
                             np.fmod(n * bin_d + 0.5 * duration, period), loglike[n], snr[n])
    return tuple(out)


def fast(x, yw, w, periods, durations, oversample, use_likelihood, threads=None):
    """The compiled kernel (:mod:`._kernel`): groups of periods shared among ``threads``
    threads; extra memory ``O(threads x bins)`` besides an ``(n, 2)`` copy of the fluxes."""
    from eas_runtime.bls import _kernel
    return _kernel.run(x, yw, w, periods, durations, oversample, use_likelihood, threads)


METHODS: dict[str, Callable[..., tuple]] = {"fast": fast, "reference": reference}
