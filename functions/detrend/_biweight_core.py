"""Compiled core of the fast biweight (see :mod:`functions.detrend.fast_biweight`).

The trend at a window centre ``c`` is wotan's (Hippke et al. 2019, ``wotan/slider.py`` and
``wotan/location_estimates.py``, version 2.1): the Tukey biweight location of the samples of
its segment with ``c - w/2 <= t < c + w/2``, iterated from their median with the scale
``cval * MAD`` (cval 5) until a step moves it by at most ``1e-6 * MAD``, every second step
followed by an Aitken extrapolation when the approach is steady (0 < rate < 0.9); MAD 0 gives
the median, an empty window NaN. The centres are visited in ascending order and the window's
values are kept sorted: moving to the next centre sorts the few values that enter and leave
and merges them in one pass, so the median and MAD cost O(log n) and a centre O(n).
"""
from __future__ import annotations

import numba
import numpy as np

#: Stopping tolerance of the iteration, relative to the MAD (wotan's ``constants.FTOL``).
FTOL = 1e-6
MAX_ITER = 1000


@numba.njit(cache=True, fastmath=True)
def _step(values, n, center, cmad):
    """One reweighting step of the biweight: center + sum(d w) / sum(w), branch-free."""
    sum_dw = 0.0
    sum_w = 0.0
    for j in range(n):
        d = values[j] - center
        u = d * cmad
        m = 1.0 - u * u
        w = m * m if m > 0.0 else 0.0
        sum_dw += d * w
        sum_w += w
    return center + sum_dw / sum_w


@numba.njit(cache=True, fastmath=True)
def _median_mad(s, n):
    """Median and MAD of the sorted ``s[:n]``: the deviations are two ascending runs either
    side of the median; the MAD's order statistics are found by bisection over them."""
    if n % 2 == 1:
        med = s[n // 2]
    else:
        med = 0.5 * (s[n // 2 - 1] + s[n // 2])
    r = np.searchsorted(s[:n], med)          # s[:r] < med <= s[r:]
    na, nb = r, n - r
    k = (n - 1) // 2 + 1                     # the lower middle deviation is the k-th smallest
    lo, hi = max(0, k - nb), min(k, na)
    v1 = v2 = 0.0
    while lo <= hi:
        i = (lo + hi) // 2                   # i deviations from the left run, k - i from the right
        j = k - i
        a_left = med - s[r - i] if i > 0 else -np.inf
        a_right = med - s[r - 1 - i] if i < na else np.inf
        b_left = s[r + j - 1] - med if j > 0 else -np.inf
        b_right = s[r + j] - med if j < nb else np.inf
        if a_left > b_right:
            hi = i - 1
        elif b_left > a_right:
            lo = i + 1
        else:
            v1 = max(a_left, b_left)
            v2 = min(a_right, b_right) if n % 2 == 0 else v1
            break
    return med, 0.5 * (v1 + v2)


@numba.njit(cache=True, fastmath=True)
def _biweight(s, n, cval):
    """wotan's biweight location of the sorted ``s[:n]`` (NaN if empty)."""
    if n == 0:
        return np.nan
    med, mad = _median_mad(s, n)
    if mad == 0.0:
        return med
    cmad = 1.0 / (cval * mad)
    tol = FTOL * mad
    center = med
    n_iter = 0
    while n_iter < MAX_ITER:
        c1 = _step(s, n, center, cmad)
        n_iter += 1
        if abs(c1 - center) <= tol or n_iter >= MAX_ITER:
            return c1
        c2 = _step(s, n, c1, cmad)
        n_iter += 1
        if abs(c2 - c1) <= tol:
            return c2
        step1, step2 = c1 - center, c2 - c1
        center = c2
        if step1 != 0.0:
            rate = step2 / step1
            if 0.0 < rate < 0.9:
                center = c2 + step2 * rate / (1.0 - rate)
    return center


@numba.njit(cache=True)
def _sorted_copy(src, dst):
    m = src.size
    dst[:m] = src
    dst[:m].sort()
    return m


@numba.njit(cache=True)
def _merge(buf, n, leave, n_leave, enter, n_enter, out):
    """``out[:m]``: the sorted ``buf[:n]`` without the sorted ``leave`` (all present) and with the
    sorted ``enter``; returns m. One forward pass: the values below the next change are copied
    by a tight loop (a change is a few dozen values from the next, so a scan beats a search)."""
    i = k = 0                       # read position in buf, write position in out
    il = ie = 0
    while il < n_leave or ie < n_enter:
        v_del = leave[il] if il < n_leave else np.inf
        v_ins = enter[ie] if ie < n_enter else np.inf
        v = min(v_del, v_ins)
        while i < n and buf[i] < v:
            out[k] = buf[i]
            k += 1
            i += 1
        if v_ins <= v_del:          # an entering value goes before buf[i]
            out[k] = v_ins
            k += 1
            ie += 1
        else:                       # buf[i] == v_del leaves (a repeated value: once per copy)
            i += 1
            il += 1
    while i < n:
        out[k] = buf[i]
        k += 1
        i += 1
    return k


@numba.njit(cache=True)
def _chunk(flux, lo, hi, seg, c0, c1, cval, buf, tmp, leave, enter, out):
    """Centres c0..c1-1 (ascending within a segment): the sorted window slides forward."""
    n = 0
    cur_lo = cur_hi = cur_seg = -1
    for c in range(c0, c1):
        a, b = lo[c], hi[c]
        if cur_seg != seg[c] or a >= cur_hi:          # no overlap: sort the window afresh
            n = _sorted_copy(flux[a:b], buf)
        else:                                          # drop what left, merge what entered
            n_leave = _sorted_copy(flux[cur_lo:a], leave)
            n_enter = _sorted_copy(flux[cur_hi:b], enter)
            n = _merge(buf, n, leave, n_leave, enter, n_enter, tmp)
            buf, tmp = tmp, buf
        cur_lo, cur_hi, cur_seg = a, b, seg[c]
        out[c] = _biweight(buf, n, cval)


@numba.njit(cache=True, parallel=True)
def biweight_at(flux, lo, hi, seg, cval, n_chunks):
    """Biweight location of ``flux[lo[c]:hi[c]]`` for every centre ``c``; the windows must
    move forward within each segment ``seg[c]``. Chunks of centres run in parallel, each
    starting with one full sort; their number does not depend on the thread count, so the
    result is the same on any number of threads."""
    n_centres = lo.size
    out = np.full(n_centres, np.nan)
    width = 1
    step = 1
    for c in range(n_centres):
        width = max(width, hi[c] - lo[c])
        if c > 0 and seg[c] == seg[c - 1]:
            step = max(step, lo[c] - lo[c - 1], hi[c] - hi[c - 1])
    for chunk in numba.prange(n_chunks):
        c0 = chunk * n_centres // n_chunks
        c1 = (chunk + 1) * n_centres // n_chunks
        _chunk(flux, lo, hi, seg, c0, c1, cval, np.empty(width), np.empty(width),
               np.empty(step), np.empty(step), out)
    return out
