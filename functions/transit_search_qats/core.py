"""Vectorised numpy core of QATS, the quasiperiodic automated transit search (Carter & Agol
2013, ApJ 765, 132).

The light curve ``d`` is on a fixed-step raster (gaps filled with 0), median-subtracted and
divided by its scatter. A transit of ``q`` samples starting at sample ``t`` scores
``D(t) = -sum(d[t : t + q])`` (a dip scores positive). QATS finds, for a span of allowed
spacings ``[dmin, dmax]`` (samples), the sequence of ``M`` transits ``t_1 < ... < t_M`` with
``dmin <= t_(m+1) - t_m <= dmax``, ``t_1 < dmax`` and ``N - t_M <= dmax`` that maximises
``S_M = sum D(t_m)``, for every ``M``; the detection statistic is ``S_M / sqrt(M q)`` (the
score of ``M q`` samples of unit-variance noise has standard deviation ``sqrt(M q)``).

Dynamic programming over ``m`` (eq. 7 of the paper): ``gamma_1(t) = D(t)`` for ``t < dmax``,
``gamma_m(t) = D(t) + max(gamma_(m-1)(t'), t - dmax <= t' <= t - dmin)``. Only the band of
``t`` that sequence ``m`` can reach is computed, so one span costs about ``N`` operations per
duration; several durations are computed together as rows of 2-D arrays.
"""
from __future__ import annotations

import numpy as np

NEG = -np.inf


def box_scores(d: np.ndarray, q: int) -> np.ndarray:
    """``D(t) = -sum(d[t:t+q])`` for every start ``t``; ``-inf`` where the box passes the end."""
    n = d.size
    cs = np.zeros(n + 1)
    np.cumsum(d, out=cs[1:])
    out = np.full(n, NEG)
    if q <= n:
        out[: n - q + 1] = -(cs[q:] - cs[: n - q + 1])
    return out


def sliding_max(values: np.ndarray, w: int) -> np.ndarray:
    """Rows of ``W[x] = max(values[x - w + 1 .. x])`` for ``x`` in ``0 .. L + w - 2``
    (values outside the row count as ``-inf``), by doubling: ``O(L log w)``."""
    rows, length = values.shape
    padded = np.full((rows, length + 2 * (w - 1)), NEG)
    padded[:, w - 1: w - 1 + length] = values
    out = padded.copy()
    reach = 1
    while reach < w:
        step = min(reach, w - reach)
        # out[x] covers [x - reach + 1, x]; extend by ``step`` to the left
        out[:, step:] = np.maximum(out[:, step:], out[:, :-step])
        reach += step
    return out[:, w - 1: w - 1 + length + w - 1]


def span_scores(scores: np.ndarray, q: np.ndarray, dmin: int, dmax: int,
                m_min: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """Best normalised statistic ``S_M / sqrt(M q)`` over ``M >= m_min`` for each duration.

    ``scores`` are the rows ``D`` of :func:`box_scores` for the durations ``q`` (samples).
    Returns ``(statistic, M)`` per row (``-inf`` and 0 where no sequence fits).
    """
    rows, n = scores.shape
    best = np.full(rows, NEG)
    best_m = np.zeros(rows, dtype=np.int64)
    root_q = np.sqrt(q.astype(np.float64))
    w = dmax - dmin + 1
    lo, hi = 0, min(dmax - 1, n - 1)
    gamma = scores[:, lo:hi + 1]
    m = 1
    while True:
        if m >= m_min:
            end_lo = max(lo, n - dmax)
            if end_lo <= hi:
                s_m = gamma[:, end_lo - lo:].max(axis=1)
                stat = s_m / (np.sqrt(m) * root_q)
                better = stat > best
                best = np.where(better, stat, best)
                best_m = np.where(better, m, best_m)
        new_lo = lo + dmin
        if new_lo > n - 1:
            break
        new_hi = min(hi + dmax, n - 1)
        window = sliding_max(gamma, w)          # window[x]: max of gamma[x - w + 1 .. x]
        # gamma_new[t] = D[t] + max(gamma[t - dmax - lo .. t - dmin - lo])
        idx = np.arange(new_lo, new_hi + 1) - dmin - lo
        gamma = scores[:, new_lo:new_hi + 1] + window[:, idx]
        lo, hi = new_lo, new_hi
        m += 1
    return best, best_m


def best_sequence(score: np.ndarray, dmin: int, dmax: int, m: int) -> np.ndarray:
    """Start samples of the best sequence of exactly ``m`` transits (one duration's ``D``)."""
    n = score.size
    lo, hi = 0, min(dmax - 1, n - 1)
    gamma = score[lo:hi + 1].copy()
    bands = [(lo, hi)]
    pointers = []
    for _ in range(1, m):
        new_lo, new_hi = lo + dmin, min(hi + dmax, n - 1)
        t = np.arange(new_lo, new_hi + 1)
        first = np.maximum(t - dmax, lo)
        last = np.minimum(t - dmin, hi)
        width = int((last - first).max()) + 1
        cand = first[:, None] + np.arange(width)[None, :]
        valid = cand <= last[:, None]
        values = np.where(valid, gamma[np.clip(cand, lo, hi) - lo], NEG)
        arg = np.argmax(values, axis=1)
        pointers.append(cand[np.arange(t.size), arg])
        gamma = score[new_lo:new_hi + 1] + values[np.arange(t.size), arg]
        lo, hi = new_lo, new_hi
        bands.append((lo, hi))
    end_lo = max(lo, n - dmax)
    last_t = end_lo + int(np.argmax(gamma[end_lo - lo:]))
    seq = [last_t]
    for (plo, _), ptr in zip(reversed(bands[1:]), reversed(pointers)):
        seq.append(int(ptr[seq[-1] - plo]))
    return np.array(seq[::-1], dtype=np.int64)
