"""Fast folding (FFA) search for box-shaped transits.

The light curve, binned on a uniform time grid of width ``b`` [d], is cut into rows of ``p``
bins (one row per cycle of the base period ``p b``; the last row padded with empty bins). The
FFA of Staelin (1969) sums the rows with a shift growing linearly down the rows, for every
drift of 0 to 1 bin per row at once, in ``O(n log2 m)`` for ``n`` bins and ``m`` rows instead of
``O(n m)``: output row ``s`` is the light curve folded at the period ``(p + s / (m - 1)) b``.
Rows are split in halves of ``m // 2`` and ``m - m // 2`` as in riptide (Morello et al. 2020),
so ``m`` need not be a power of two; the tail half is shifted so that the last row's shift is
exact and each half's row is the nearest whole-bin drift, so a row's shift is off by at most half
a bin per halving (measured: about half a bin r.m.s., at most 2.3 bins for a few hundred rows;
first and last rows exact), which is why ``b`` is a fraction of the shortest duration searched.

The same transform of the weights ``w = sum 1 / dy**2`` and of ``w (y - mean)`` gives, at every
trial period, the weighted sums per phase bin; the best box of each duration (whole bins) is
found as in BLS with astropy's log-likelihood objective ``0.5 w_in depth**2``, so the power and
the signal-to-noise are comparable to :func:`eas_runtime.bls.methods.bls`.

The rows step the period by ``b / (m - 1)`` [d], a phase drift of one bin across the
baseline, finer than Ofir's grid as long as ``b`` is below a third of the central transit
duration. :func:`search_block` searches a given grid (Ofir's): each period at the row nearest to
it (a phase drift across the baseline of half a bin times ``m / (m - 1)``, so one bin at most,
at ``m = 2``): one transform serves every period within a bin of its base period, and only the
rows of the grid are searched for boxes.

References
----------
Staelin (1969), Proc. IEEE 57, 724; Kondratiev et al. (2009), ApJ 702, 692;
Morello et al. (2020), MNRAS 497, 4654 (riptide).
"""
from __future__ import annotations

import math

import numba
import numpy as np
from numba import njit, prange

MIN_WEIGHT = float(np.finfo(np.float64).eps)


@njit(cache=True, inline="always")
def _round(x):
    return math.floor(x + 0.5)


@njit(cache=True)
def _merge(xw, xy, tw, ty, r0, n, h, p):
    """Rows ``r0 .. r0+n`` of ``xw``/``xy``: the transforms of their two halves -> theirs."""
    t = n - h
    for s in range(n):
        kh = _round(s * (h - 1) / (n - 1)) if h > 1 else 0
        kt = _round(s * (t - 1) / (n - 1)) if t > 1 else 0
        shift = (s - kt) % p
        a = r0 + kh
        b = r0 + h + kt
        for j in range(p - shift):
            tw[s, j] = xw[a, j] + xw[b, j + shift]
            ty[s, j] = xy[a, j] + xy[b, j + shift]
        for j in range(p - shift, p):
            tw[s, j] = xw[a, j] + xw[b, j + shift - p]
            ty[s, j] = xy[a, j] + xy[b, j + shift - p]
    for s in range(n):
        for j in range(p):
            xw[r0 + s, j] = tw[s, j]
            xy[r0 + s, j] = ty[s, j]


@njit(cache=True)
def ffa_transform(xw, xy):
    """In place: row ``s`` of the ``(m, p)`` arrays becomes the sum of every row ``i`` rolled
    left by ``round(i s / (m - 1))`` bins (up to the rounding of the halves)."""
    m, p = xw.shape
    if m < 2:
        return
    tw = np.empty((m, p))
    ty = np.empty((m, p))
    size = 3 * 64
    st_r0 = np.empty(size, np.int64)
    st_n = np.empty(size, np.int64)
    st_done = np.empty(size, np.int64)
    sp = 0
    st_r0[0], st_n[0], st_done[0] = 0, m, 0
    sp = 1
    while sp > 0:
        sp -= 1
        r0, n, done = st_r0[sp], st_n[sp], st_done[sp]
        if n < 2:
            continue
        h = n // 2
        if done:
            _merge(xw, xy, tw, ty, r0, n, h, p)
            continue
        st_r0[sp], st_n[sp], st_done[sp] = r0, n, 1
        st_r0[sp + 1], st_n[sp + 1], st_done[sp + 1] = r0 + h, n - h, 0
        st_r0[sp + 2], st_n[sp + 2], st_done[sp + 2] = r0, h, 0
        sp += 3


@njit(cache=True)
def _best_box(pw, py, p, widths, total_w, cw, cy, out, k):
    """The best box of ``widths`` [bins] in the folded row (``pw``, ``py``) -> ``out[:, k]``:
    statistic ``y_in**2 / (w_in w_out**2)`` (the log-likelihood up to a constant factor),
    in-transit weight and flux sum, width and first bin."""
    wmax = widths[-1]
    cw[0] = 0.0
    cy[0] = 0.0
    for j in range(p + wmax):
        jj = j % p
        cw[j + 1] = cw[j] + pw[jj]
        cy[j + 1] = cy[j] + py[jj]
    # the best stat = num / den so far, compared without dividing: num * d > den * n
    best_num = 0.0
    best_den = 1.0
    found = False
    for iw in range(widths.size):
        width = widths[iw]
        if width >= p:
            break
        for j in range(p):
            y_in = cy[j + width] - cy[j]
            if y_in >= 0.0:
                continue
            w_in = cw[j + width] - cw[j]
            w_out = total_w - w_in
            if w_in < MIN_WEIGHT or w_out < MIN_WEIGHT:
                continue
            num = y_in * y_in
            den = w_in * w_out * w_out
            if num * best_den > best_num * den:
                best_num = num
                best_den = den
                found = True
                out[0, k] = w_in
                out[1, k] = y_in
                out[2, k] = width
                out[3, k] = j
    if found:
        return
    # No box with a dip (a flat or only brightening row): the null box, power and depth 0, as
    # astropy's BLS reports there; NaN only where no box has weight in and out (too sparse).
    # This pass runs only on such rows, so the loop above keeps its cheap first test.
    for iw in range(widths.size):
        width = widths[iw]
        if width >= p:
            break
        for j in range(p):
            w_in = cw[j + width] - cw[j]
            if w_in >= MIN_WEIGHT and total_w - w_in >= MIN_WEIGHT:
                out[0, k] = w_in
                out[1, k] = -0.0          # depth = -y_in * ... = +0.0
                out[2, k] = width
                out[3, k] = j
                return
    out[0, k] = np.nan


@njit(cache=True, parallel=True)
def _search(w, wy, bases, row_ptr, rows, widths, n_threads):
    """The best box of ``widths`` [bins] at the rows ``rows[row_ptr[i]:row_ptr[i + 1]]`` of
    the FFA of base period ``bases[i]`` [bins]: columns (w_in, y_in, width, start) per row."""
    n = w.size
    total_w = 0.0
    for i in range(n):
        total_w += w[i]
    out = np.full((4, rows.size), np.nan)
    for c in prange(n_threads):
        for ib in range(c, bases.size, n_threads):
            p = bases[ib]
            m = (n + p - 1) // p
            flat_w = np.zeros(m * p)
            flat_y = np.zeros(m * p)
            flat_w[:n] = w
            flat_y[:n] = wy
            xw = flat_w.reshape((m, p))
            xy = flat_y.reshape((m, p))
            ffa_transform(xw, xy)
            cw = np.empty(p + widths[-1] + 1)
            cy = np.empty(p + widths[-1] + 1)
            for k in range(row_ptr[ib], row_ptr[ib + 1]):
                _best_box(xw[rows[k]], xy[rows[k]], p, widths, total_w, cw, cy, out, k)
    return out


def uniform_bins(t, y, dy, width: float, origin: float) -> tuple[np.ndarray, np.ndarray]:
    """Weights ``sum 1/dy**2`` and weighted flux sums ``sum (y - mean) / dy**2`` of the
    samples in consecutive bins of ``width`` [d] from ``origin`` [d] (empty bins: zeros);
    ``mean`` is the weighted mean of ``y``."""
    w = 1.0 / np.asarray(dy, dtype=np.float64) ** 2
    y = np.asarray(y, dtype=np.float64)
    index = np.floor((np.asarray(t, dtype=np.float64) - origin) / width).astype(np.int64)
    if index.min() < 0:
        raise ValueError(f"samples before the origin of the bins ({origin!r} d)")
    mean = float(np.sum(w * y) / np.sum(w))
    return np.bincount(index, weights=w), np.bincount(index, weights=w * (y - mean))


def nearest_rows(periods, width: float, n_bins: int) -> tuple[np.ndarray, np.ndarray]:
    """For each period [d], the FFA trial nearest to it over ``n_bins`` bins of ``width``
    [d]: (base period [bins], row). Row ``s`` of base ``p`` with ``m = ceil(n_bins / p)`` rows
    is the period ``(p + s / (m - 1)) width``; a row rounding to ``m - 1`` is row 0 of
    ``p + 1``."""
    x = np.asarray(periods, dtype=np.float64) / width
    base = np.floor(x).astype(np.int64)
    if base.min() < 2:
        raise ValueError(f"periods down to {float(np.min(periods))!r} d are shorter than two "
                         f"bins of {width!r} d")
    m = -(-n_bins // base)
    if m.min() < 2:
        raise ValueError(f"periods up to {float(np.max(periods))!r} d are longer than the "
                         f"{n_bins * width!r} d the bins span")
    row = np.rint((x - base) * (m - 1)).astype(np.int64)
    wrap = row >= m - 1
    base[wrap] += 1
    row[wrap] = 0
    return base, row


def trial_period(base, row, width: float, n_bins: int) -> np.ndarray:
    """The period [d] of row ``row`` of the FFA of base period ``base`` [bins]."""
    base = np.asarray(base, dtype=np.int64)
    m = -(-n_bins // base)
    return (base + np.asarray(row) / (m - 1)) * width


def search_block(t, y, dy, periods, durations, *, width: float | None = None,
                 origin: float | None = None, threads: int | None = None) -> dict:
    """FFA search at ``periods`` [d] for boxes of ``durations`` [d]: each period is searched
    at the FFA row nearest to it (within a bin of phase drift across the baseline), and
    every FFA of a base period serves all the periods near it. Returns the columns of
    :data:`eas_runtime.bls.search.PERIODOGRAM_COLUMNS` (``period`` is the row's period).

    ``width`` [d] is the bin width (default: a third of the shortest duration) and ``origin``
    [d] the start of the first bin (default: the first time).
    """
    periods = np.asarray(periods, dtype=np.float64)
    durations = np.sort(np.asarray(durations, dtype=np.float64))
    if width is None:
        width = float(durations[0]) / 3.0
    if origin is None:
        origin = float(np.min(t))
    w, wy = uniform_bins(t, y, dy, width, origin)
    base, row = nearest_rows(periods, width, w.size)
    order = np.lexsort((row, base))
    bases, first = np.unique(base[order], return_index=True)
    row_ptr = np.append(first, order.size).astype(np.int64)
    widths = np.unique(np.maximum(np.rint(durations / width), 1).astype(np.int64))
    n_threads = numba.config.NUMBA_NUM_THREADS if threads is None else int(threads)
    n_threads = max(1, min(n_threads, numba.config.NUMBA_NUM_THREADS, bases.size))
    previous = numba.get_num_threads()
    numba.set_num_threads(n_threads)
    try:
        columns = _search(w, wy, bases.astype(np.int64), row_ptr,
                          np.ascontiguousarray(row[order]), widths, n_threads)
    finally:
        numba.set_num_threads(previous)
    w_in, y_in, box, start = np.empty_like(columns)
    w_in[order], y_in[order], box[order], start[order] = columns
    return _columns(trial_period(base, row, width, w.size), w_in, y_in, box, start,
                    float(np.sum(w)), width, origin)


def _columns(period, w_in, y_in, box, start, total_w, width, origin) -> dict:
    """Box statistics -> periodogram columns (power -inf, NaN elsewhere without a box)."""
    ok = np.isfinite(w_in)
    w_out = total_w - w_in
    with np.errstate(divide="ignore", invalid="ignore"):
        depth = np.where(ok, -y_in * total_w / (w_in * w_out), np.nan)
        err = np.where(ok, np.sqrt(1.0 / w_in + 1.0 / w_out), np.nan)
        duration = box * width
        return {"period": period,
                "power": np.where(ok, 0.5 * w_in * depth * depth, -np.inf),
                "depth": depth, "depth_err": err, "duration": duration,
                "transit_time": origin + np.fmod(start * width + 0.5 * duration, period),
                "depth_snr": depth / err}
