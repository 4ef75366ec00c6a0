"""Compiled core of the BLS periodogram (numba; threads over periods).

Each thread takes every ``threads``-th period (so short and long periods are shared evenly) and
folds the light curve into its own two bin arrays (sums of ``y w`` and of ``w``), which are
reused from period to period: the extra memory is ``threads * 2 * (max_bins + 2)`` doubles,
whatever the number of samples or periods. The arithmetic is that of astropy's ``bls.c``,
operation for operation, so the results are astropy's to the last bit.
"""
from __future__ import annotations

import math

import numba
import numpy as np
from numba import njit, prange

#: C's DBL_EPSILON: the least weight a side of a box needs.
MIN_WEIGHT = float(np.finfo(np.float64).eps)


@njit(cache=True, inline="always")
def _c_round(x):
    r = math.floor(x)
    if x - r >= 0.5:
        r += 1.0
    return r


@njit(cache=True)
def _fold(x, yw, w, period, bin_d, sy, sw, n_bins):
    for n in range(n_bins + 2):
        sy[n] = 0.0
        sw[n] = 0.0
    for i in range(x.size):
        xi = x[i]
        ind = int((xi - period * math.floor(xi / period)) / bin_d) + 1
        sy[ind] += yw[i]
        sw[ind] += w[i]


@njit(cache=True)
def _one_period(x, yw, w, period, durations, dur_bins, bin_d, oversample, use_likelihood,
                sum_y, sum_w, sy, sw, out, p):
    n_bins = int(math.ceil(period / bin_d)) + oversample
    _fold(x, yw, w, period, bin_d, sy, sw, n_bins)
    for n in range(1, oversample + 1):                 # wrap: phase 0 repeated at the end
        sy[n_bins - oversample + n - 1] = sy[n]
        sw[n_bins - oversample + n - 1] = sw[n]
    for n in range(1, n_bins + 1):                     # cumulative sums
        sy[n] += sy[n - 1]
        sw[n] += sw[n - 1]
    best = -np.inf
    for k in range(durations.size):
        dur = dur_bins[k]
        if durations[k] >= period:
            continue
        for n in range(n_bins - dur + 1):
            y_in = sy[n + dur] - sy[n]
            w_in = sw[n + dur] - sw[n]
            y_out = sum_y - y_in
            w_out = sum_w - w_in
            if w_in < MIN_WEIGHT or w_out < MIN_WEIGHT:
                continue
            y_in /= w_in
            y_out /= w_out
            arg = y_out - y_in
            log_like = 0.5 * w_in * arg * arg
            if use_likelihood:
                objective = log_like
            else:
                objective = arg / math.sqrt(1.0 / w_in + 1.0 / w_out)
            if y_out >= y_in and objective > best:
                best = objective
                depth_err = math.sqrt(1.0 / w_in + 1.0 / w_out)
                duration = dur * bin_d
                out[0, p] = objective
                out[1, p] = arg
                out[2, p] = depth_err
                out[3, p] = duration
                out[4, p] = np.fmod(n * bin_d + 0.5 * duration, period)
                out[5, p] = log_like
                out[6, p] = arg / depth_err


@njit(cache=True, parallel=True)
def _periodogram(x, y, w, periods, durations, oversample, use_likelihood, n_threads):
    bin_d = np.min(durations) / oversample
    dur_bins = np.empty(durations.size, dtype=np.int64)
    for k in range(durations.size):
        dur_bins[k] = int(_c_round(durations[k] / bin_d))
    yw = y * w
    sum_y = 0.0
    sum_w = 0.0
    for i in range(x.size):
        sum_y += yw[i]
        sum_w += w[i]
    max_bins = int(math.ceil(np.max(periods) / bin_d)) + oversample
    sy_all = np.empty((n_threads, max_bins + 2))
    sw_all = np.empty((n_threads, max_bins + 2))
    out = np.full((7, periods.size), np.nan)
    out[0, :] = -np.inf
    min_duration = np.min(durations)
    for c in prange(n_threads):
        for p in range(c, periods.size, n_threads):
            if periods[p] <= min_duration:             # no duration fits: nothing to fold
                continue
            _one_period(x, yw, w, periods[p], durations, dur_bins, bin_d, oversample,
                        use_likelihood, sum_y, sum_w, sy_all[c], sw_all[c], out, p)
    return out


def run(x, y, w, periods, durations, oversample, use_likelihood, threads=None):
    """The seven columns of :data:`eas_runtime.bls.methods.COLUMNS` (see there)."""
    n_threads = numba.config.NUMBA_NUM_THREADS if threads is None else int(threads)
    n_threads = max(1, min(n_threads, numba.config.NUMBA_NUM_THREADS, periods.size))
    previous = numba.get_num_threads()
    numba.set_num_threads(n_threads)
    try:
        out = _periodogram(x, y, w, periods, durations, oversample, bool(use_likelihood),
                           n_threads)
    finally:
        numba.set_num_threads(previous)
    return tuple(out)
