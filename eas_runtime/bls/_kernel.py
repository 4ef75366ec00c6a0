"""Compiled core of the BLS periodogram (numba; threads over periods).

The arithmetic is that of astropy's ``bls.c`` (same bins, same order of additions, same box
statistics), organised for speed:

- periods go in groups of :data:`GROUP`; each thread takes the next group not yet taken (a
  shared atomic counter, so a thread the system slows down does not hold the others up), and
  folds the light curve at all periods of the group in one pass over the samples, so each
  sample is read once per group and the independent additions of the group overlap;
- the samples are taken in chunks of :data:`CHUNK`: first the bin of every sample at every
  period of the group (vectorised), then the additions, ``y w`` and ``w`` together in one
  128-bit operation into the period's ``(bins, 2)`` slab;
- a sample's bin is ``int((x - P floor(x / P)) / bin_d)`` in ``bls.c``; here the two divisions
  are products by ``1 / P`` and ``1 / bin_d``, which can differ from the quotients by an ulp:
  a sample within about 1e-15 (relative) of a bin edge may land in the neighbouring bin. On
  times that are not commensurate with the bins every sample lands in astropy's bin and the
  periodogram is astropy's to the last bit; on a regular time grid a few periods in a thousand
  can differ (at the percent level for the boxes whose edge such a sample is on);
- the box scan visits only the start bins where a vectorised bound (no division) finds boxes
  that may beat the best so far, skips there without division every box that provably cannot,
  and evaluates the others as ``bls.c`` does.

Work memory (allocated by :func:`run`, reused for every period): per thread, ``GROUP + 1`` slabs
of ``2 * (max_bins + 2)`` doubles (the last for the cumulative sums) and a ``GROUP x CHUNK``
index block, whatever the number of periods; plus the ``(n, 2)`` array of ``y w`` and ``w``
(:func:`eas_runtime.bls.methods.weighted_fluxes` makes it, and :func:`run` takes it as it is).
"""
from __future__ import annotations

import math
import os

import numba
import numpy as np
from numba import njit, prange

from eas_runtime.bls._simd import add_pair, fetch_add

#: C's DBL_EPSILON: the least weight a side of a box needs.
MIN_WEIGHT = float(np.finfo(np.float64).eps)
#: Periods folded together in one pass over the samples.
GROUP = 8
#: Samples per chunk (their bin indices at the GROUP periods stay in L1).
CHUNK = 512
#: Relative margin of the box pre-test: far above the few ulp (1.1e-16 each) its products can
#: differ from bls.c's quotients by, far below any meaningful difference of objectives.
SLACK = 1e-14


@njit(cache=True, inline="always")
def _c_round(x):
    r = math.floor(x)
    if x - r >= 0.5:
        r += 1.0
    return r


@njit(cache=True)
def _fold_group(x, pairs, group, n_group, bin_d, slabs, index, n_bins):
    """Fold ``pairs`` (rows ``y w, w``) at ``group[:n_group]`` into ``slabs[q, :n_bins[q] + 2]``.

    ``group`` always holds GROUP periods (the unused tail repeats a real one); ``index`` is a
    ``(GROUP, CHUNK)`` int32 work block.
    """
    inv_b = 1.0 / bin_d
    for q in range(n_group):
        slab = slabs[q]
        for n in range(n_bins[q] + 2):
            slab[n, 0] = 0.0
            slab[n, 1] = 0.0
    n_samples = x.size
    for start in range(0, n_samples, CHUNK):
        m = min(n_samples, start + CHUNK) - start
        xs = x[start:start + m]                        # slices: indices known >= 0
        chunk = pairs[start:start + m]
        for q in range(GROUP):                         # vectorised over samples
            period = group[q]
            inv_p = 1.0 / period
            row = index[q]
            for j in range(m):
                xi = xs[j]
                row[j] = np.int32((xi - period * np.floor(xi * inv_p)) * inv_b) + np.int32(1)
        for j in range(m):                             # all GROUP slabs: unrolled; the
            a = chunk[j, 0]                            # tail's repeats land in unused ones
            b = chunk[j, 1]
            for q in range(GROUP):
                add_pair(slabs[q], np.uint32(index[q, j]), a, b)


@njit(cache=True)
def _reach(cy, cw, n_max, dur, sum_y, sum_w, best, use_likelihood):
    """First and last start bin (of ``0 .. n_max``) of the boxes of ``dur`` bins whose objective
    may exceed ``best >= 0`` (``(n_max + 1, -1)`` when none): an upper bound of each box's
    objective, without division, so the loop is vectorised."""
    first = np.int32(n_max + 1)
    last = np.int32(-1)
    best_sq = best * best
    for n in range(n_max + 1):
        y_in = cy[n + dur] - cy[n]
        w_in = cw[n + dur] - cw[n]
        y_out = sum_y - y_in
        w_out = sum_w - w_in
        # num = w_in w_out (mean_out - mean_in), up to a rounding error below err
        num = y_out * w_in - y_in * w_out
        err = SLACK * (abs(y_out) * w_in + abs(y_in) * w_out)
        top = (abs(num) + err) * (abs(num) + err) * (1.0 + SLACK)
        if use_likelihood:
            reach = 0.5 * top >= best * (w_in * w_out * w_out)
        else:
            reach = top >= best_sq * (w_in * w_out * (w_in + w_out))
        hit = reach & (num >= -err) & (w_in >= MIN_WEIGHT) & (w_out >= MIN_WEIGHT)
        i = np.int32(n)
        first = min(first, i if hit else np.int32(n_max + 1))
        last = max(last, i if hit else np.int32(-1))
    return first, last


@njit(cache=True)
def _scan(slab, cy, cw, n_bins, period, durations, dur_bins, bin_d, oversample,
          use_likelihood, sum_y, sum_w, out, p):
    """astropy's wrap, cumulative sums and box search over one folded period -> ``out[:, p]``.

    Boxes are visited in astropy's order (duration as given, then start bin) and evaluated as
    ``bls.c`` does; once a best exists, only the span of start bins :func:`_reach` finds for a
    duration is visited, and in it a box that cannot beat the best is skipped without division.
    """
    for n in range(1, oversample + 1):                 # wrap: phase 0 repeated at the end
        slab[n_bins - oversample + n - 1, 0] = slab[n, 0]
        slab[n_bins - oversample + n - 1, 1] = slab[n, 1]
    cy[0] = slab[0, 0]
    cw[0] = slab[0, 1]
    for n in range(1, n_bins + 1):                     # cumulative sums
        cy[n] = cy[n - 1] + slab[n, 0]
        cw[n] = cw[n - 1] + slab[n, 1]
    best = -np.inf
    best_sq = np.inf                                   # best**2 for the snr pre-test
    for k in range(durations.size):
        dur = dur_bins[k]
        if durations[k] >= period:
            continue
        lo, hi = 0, n_bins - dur
        if best >= 0.0:
            lo, hi = _reach(cy, cw, n_bins - dur, dur, sum_y, sum_w, best, use_likelihood)
        for n in range(lo, hi + 1):
            y_in = cy[n + dur] - cy[n]
            w_in = cw[n + dur] - cw[n]
            y_out = sum_y - y_in
            w_out = sum_w - w_in
            if w_in < MIN_WEIGHT or w_out < MIN_WEIGHT:
                continue
            num = y_out * w_in - y_in * w_out          # as in _reach
            err = SLACK * (abs(y_out) * w_in + abs(y_in) * w_out)
            if num < -err:
                continue                               # a bump, not a dip
            top = (abs(num) + err) * (abs(num) + err) * (1.0 + SLACK)
            if use_likelihood:
                if 0.5 * top < best * (w_in * w_out * w_out):
                    continue
            elif best >= 0.0 and top < best_sq * (w_in * w_out * (w_in + w_out)):
                continue
            mean_in = y_in / w_in
            mean_out = y_out / w_out
            arg = mean_out - mean_in
            log_like = 0.5 * w_in * arg * arg
            if use_likelihood:
                objective = log_like
            else:
                objective = arg / math.sqrt(1.0 / w_in + 1.0 / w_out)
            if mean_out >= mean_in and objective > best:
                best = objective
                best_sq = best * best
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
def _periodogram(x, pairs, periods, durations, oversample, use_likelihood, slabs, index,
                 cums, out):
    n_threads = slabs.shape[0]
    bin_d = np.min(durations) / oversample
    min_duration = np.min(durations)
    dur_bins = np.empty(durations.size, dtype=np.int64)
    for k in range(durations.size):
        dur_bins[k] = np.int64(_c_round(durations[k] / bin_d))
    sum_y = 0.0
    sum_w = 0.0
    for i in range(x.size):                            # in order, as bls.c
        sum_y += pairs[i, 0]
        sum_w += pairs[i, 1]
    n_groups = (periods.size + GROUP - 1) // GROUP
    counter = np.zeros(1, dtype=np.int64)              # next group to fold
    for c in prange(n_threads):
        group = np.empty(GROUP)
        n_bins = np.empty(GROUP, dtype=np.int64)
        while True:
            g = fetch_add(counter)
            if g >= n_groups:
                break
            first = g * GROUP
            n_group = min(GROUP, periods.size - first)
            for q in range(GROUP):
                group[q] = periods[first + min(q, n_group - 1)]
                n_bins[q] = np.int64(math.ceil(group[q] / bin_d)) + oversample
            _fold_group(x, pairs, group, n_group, bin_d, slabs[c], index[c], n_bins)
            for q in range(n_group):
                if group[q] > min_duration:            # else no duration fits: no box
                    _scan(slabs[c, q], cums[c, 0], cums[c, 1], n_bins[q], group[q], durations,
                          dur_bins, bin_d, oversample, use_likelihood, sum_y, sum_w, out,
                          first + q)


def work_arrays(n_samples: int, max_period: float, min_duration: float, oversample: int,
                n_threads: int) -> dict[str, tuple[tuple[int, ...], np.dtype]]:
    """Shapes and types of the kernel's arrays besides its output (``pairs``: the weighted
    fluxes, made once per call)."""
    max_bins = math.ceil(max_period / (min_duration / oversample)) + oversample
    return {"pairs": ((n_samples, 2), np.dtype(np.float64)),
            "slabs": ((n_threads, GROUP, max_bins + 2, 2), np.dtype(np.float64)),
            "index": ((n_threads, GROUP, CHUNK), np.dtype(np.int32)),
            "cums": ((n_threads, 2, max_bins + 2), np.dtype(np.float64))}


def work_bytes(n_samples: int, max_period: float, min_duration: float, oversample: int,
               n_threads: int) -> int:
    """Bytes of the arrays of :func:`work_arrays`."""
    return sum(int(np.prod(shape)) * dtype.itemsize for shape, dtype in
               work_arrays(n_samples, max_period, min_duration, oversample, n_threads).values())


def thread_count(threads: int | None, n_periods: int) -> int:
    """Threads :func:`run` uses: ``threads``, by default the cores this process may run on; at
    most numba's thread count and one per group of periods."""
    most = numba.config.NUMBA_NUM_THREADS
    if threads is None:
        try:
            threads = len(os.sched_getaffinity(0))
        except (AttributeError, OSError):          # not on Linux
            threads = most
    return max(1, min(int(threads), most, -(-n_periods // GROUP)))


def _pairs(yw, w) -> np.ndarray:
    """The ``(n, 2)`` array whose columns are ``yw`` and ``w``: their own base when they are
    its columns already (as :func:`eas_runtime.bls.methods.weighted_fluxes` makes them)."""
    base = yw.base
    if (base is not None and base is w.base and isinstance(base, np.ndarray)
            and base.shape == (yw.size, 2) and base.dtype == np.float64
            and base.flags.c_contiguous and yw.ctypes.data == base.ctypes.data
            and w.ctypes.data == base.ctypes.data + 8):
        return base
    pairs = np.empty((yw.size, 2))
    pairs[:, 0] = yw
    pairs[:, 1] = w
    return pairs


def run(x, yw, w, periods, durations, oversample, use_likelihood, threads=None):
    """The seven columns of :data:`eas_runtime.bls.methods.COLUMNS` (see there)."""
    n_threads = thread_count(threads, periods.size)
    shapes = work_arrays(x.size, float(np.max(periods)), float(np.min(durations)), oversample,
                         n_threads)
    pairs = _pairs(yw, w)
    slabs = np.empty(*shapes["slabs"])
    index = np.empty(*shapes["index"])
    cums = np.empty(*shapes["cums"])
    out = np.full((7, periods.size), np.nan)
    out[0] = -np.inf
    previous = numba.get_num_threads()
    numba.set_num_threads(n_threads)
    try:
        _periodogram(x, pairs, periods, durations, oversample, bool(use_likelihood), slabs,
                     index, cums, out)
    finally:
        numba.set_num_threads(previous)
    return tuple(out)
