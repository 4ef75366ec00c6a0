"""Fast folding (FFA) search for box-shaped transits.

The light curve, binned on a uniform time grid of width ``b`` [d], is cut into rows of ``p``
bins (one row per cycle of the base period ``p b``; the last row padded with empty bins). The
FFA of Staelin (1969) sums the rows with a shift growing linearly down the rows, for every
drift of 0 to 1 bin per row at once, in ``O(n log2 m)`` for ``n`` bins and ``m`` rows instead of
``O(n m)``: output row ``s`` is the light curve folded at the period ``(p + s / (m - 1)) b``.
Rows are split in halves of ``m // 2`` and ``m - m // 2`` as in riptide (Morello et al. 2020),
so ``m`` need not be a power of two; each half's shift is rounded to whole bins, so the fold is
exact to within a bin or two (Kondratiev et al. 2009), which is why ``b`` is a fraction of the
shortest duration searched.

The same transform of the weights ``w = sum 1 / dy**2`` and of ``w (y - mean)`` gives, at every
trial period, the weighted sums per phase bin; the best box of each duration (whole bins) is
found as in BLS with astropy's log-likelihood objective ``0.5 w_in depth**2``, so the power and
the signal-to-noise are comparable to :func:`eas_runtime.bls.methods.bls`.

The trial periods step by ``b / (m - 1)`` [d], a phase drift of one bin across the baseline:
finer than Ofir's grid as long as ``b`` is below a third of the central transit duration.
:func:`search_block` reduces them to a periodogram on a given (Ofir) grid: at each grid period,
the best trial within half a step of it.

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
    return int(math.floor(x + 0.5))


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
    best = -1.0
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
            stat = y_in * y_in / (w_in * w_out * w_out)
            if stat > best:
                best = stat
                out[0, k] = w_in
                out[1, k] = y_in
                out[2, k] = width
                out[3, k] = j
    if best < 0.0:
        out[0, k] = np.nan


@njit(cache=True, parallel=True)
def _search(w, wy, p_lo, p_hi, widths, offsets, n_threads):
    """Every trial period of base periods ``p_lo .. p_hi`` [bins]: columns (w_in, y_in, width,
    start) per trial, trials of base ``p`` from ``offsets[p - p_lo]``."""
    n = w.size
    total_w = 0.0
    for i in range(n):
        total_w += w[i]
    out = np.full((4, offsets[-1]), np.nan)
    n_base = p_hi - p_lo + 1
    for c in prange(n_threads):
        for ib in range(c, n_base, n_threads):
            p = p_lo + ib
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
            for s in range(m - 1):
                _best_box(xw[s], xy[s], p, widths, total_w, cw, cy, out, offsets[ib] + s)
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


def trial_periods(n_bins: int, p_lo: int, p_hi: int, width: float) -> np.ndarray:
    """Trial periods [d] of base periods ``p_lo .. p_hi`` [bins] over ``n_bins`` bins."""
    parts = []
    for p in range(p_lo, p_hi + 1):
        m = -(-n_bins // p)
        parts.append((p + np.arange(m - 1) / (m - 1)) * width)
    return np.concatenate(parts) if parts else np.empty(0)


def search_block(t, y, dy, periods, durations, *, width: float | None = None,
                 origin: float | None = None, threads: int | None = None) -> dict:
    """FFA search over the range of ``periods`` [d] (ascending) for boxes of ``durations``
    [d], reduced to one value per period of ``periods``: the columns of
    :data:`eas_runtime.bls.search.PERIODOGRAM_COLUMNS` (``period`` is the best trial's).

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
    # half a grid step beyond the first and last period, so every cell gets its trials
    edges = np.empty(periods.size + 1)
    edges[1:-1] = 0.5 * (periods[1:] + periods[:-1])
    step_lo = periods[1] - periods[0] if periods.size > 1 else periods[0] * 1e-3
    step_hi = periods[-1] - periods[-2] if periods.size > 1 else periods[-1] * 1e-3
    edges[0], edges[-1] = periods[0] - 0.5 * step_lo, periods[-1] + 0.5 * step_hi
    p_lo = max(int(math.floor(edges[0] / width)), 2)
    p_hi = max(int(math.floor(edges[-1] / width)), p_lo)
    widths = np.unique(np.maximum(np.rint(durations / width), 1).astype(np.int64))
    counts = np.array([-(-w.size // p) - 1 for p in range(p_lo, p_hi + 1)], dtype=np.int64)
    offsets = np.concatenate([[0], np.cumsum(counts)])
    n_threads = numba.config.NUMBA_NUM_THREADS if threads is None else int(threads)
    n_threads = max(1, min(n_threads, numba.config.NUMBA_NUM_THREADS, p_hi - p_lo + 1))
    previous = numba.get_num_threads()
    numba.set_num_threads(n_threads)
    try:
        w_in, y_in, box, start = _search(w, wy, p_lo, p_hi, widths, offsets, n_threads)
    finally:
        numba.set_num_threads(previous)
    trials = trial_periods(w.size, p_lo, p_hi, width)
    return _reduce(trials, w_in, y_in, box, start, float(np.sum(w)), width, origin, edges,
                   periods)


def _reduce(trials, w_in, y_in, box, start, total_w, width, origin, edges, periods) -> dict:
    """Box statistics per trial -> the best trial in each cell ``edges[i] .. edges[i + 1]``."""
    n_cells = edges.size - 1
    ok = np.isfinite(w_in)
    w_out = total_w - w_in
    with np.errstate(divide="ignore", invalid="ignore"):
        depth = -y_in * total_w / (w_in * w_out)
        power = np.where(ok, 0.5 * w_in * depth * depth, -np.inf)
    cell = np.searchsorted(edges, trials, side="right") - 1
    inside = (cell >= 0) & (cell < n_cells)
    order = np.lexsort((-power[inside], cell[inside]))       # by cell, best power first
    idx = np.flatnonzero(inside)[order]
    first = np.ones(idx.size, dtype=bool)
    first[1:] = cell[idx][1:] != cell[idx][:-1]
    pick, cells = idx[first], cell[idx][first]
    out = {"period": periods.copy(), "power": np.full(n_cells, -np.inf)}
    for name in ("depth", "depth_err", "duration", "transit_time", "depth_snr"):
        out[name] = np.full(n_cells, np.nan)
    valid = np.isfinite(power[pick])
    pick, cells = pick[valid], cells[valid]
    period = trials[pick]
    err = np.sqrt(1.0 / w_in[pick] + 1.0 / w_out[pick])
    duration = box[pick] * width
    out["period"][cells] = period
    out["power"][cells] = power[pick]
    out["depth"][cells] = depth[pick]
    out["depth_err"][cells] = err
    out["duration"][cells] = duration
    out["transit_time"][cells] = origin + np.fmod(start[pick] * width + 0.5 * duration, period)
    out["depth_snr"][cells] = depth[pick] / err
    return out
