"""Vectorised numpy core of the Kovacs et al. (2002) box-fitting least squares (``eebls``).

Two ways to fold a light curve into ``nb`` phase bins for many trial frequencies at once, both
exact (they give the ``eebls`` bin sums), and the box statistics over the folded bins:

:func:`fold_by_edges`
    For each frequency, the times at which the phase crosses a bin edge are located in the
    sorted sample times (``searchsorted``); cumulative sums of the flux give each bin's sum.
    Work per frequency: ``nb * cycles`` look-ups, far fewer than the ``N`` samples unless the
    period is a few cadences times ``nb``.
:func:`fold_by_bincount`
    The direct fold: bin index of every sample for every frequency, summed with ``bincount``.
    Work per frequency: ``N``.
:func:`box_statistics`
    The ``eebls`` search over boxes of ``kmi .. kma + 1`` consecutive bins (wrapping around
    phase 1) holding at least ``kkmi`` samples: the signal residue ``s**2 / (r (n - r))``.

No Python loop runs over samples or frequencies; loops run over chunks of frequencies and over
the (at most ``nb``) box widths.
"""
from __future__ import annotations

import numpy as np

#: Elements per temporary array (chunks of frequencies are sized to stay below this).
CHUNK_ELEMENTS = 1 << 21


def _cumulative(values: np.ndarray) -> np.ndarray:
    out = np.zeros(values.size + 1, dtype=np.float64)
    np.cumsum(values, out=out[1:])
    return out


def fold_by_edges(u: np.ndarray, v: np.ndarray, freqs: np.ndarray,
                  nb: int) -> tuple[np.ndarray, np.ndarray]:
    """Bin sums ``y`` and counts ``c`` (each ``(len(freqs), nb)``) of ``v`` folded at ``freqs``.

    ``u`` are times since the first sample (sorted, ``u[0] == 0``); a sample is in bin ``j``
    when ``j <= nb * frac(u f) < j + 1``, as in ``eebls``.
    """
    m = freqs.size
    y = np.zeros((m, nb))
    c = np.zeros((m, nb), dtype=np.int64)
    if m == 0:
        return y, c
    cs = _cumulative(v)
    span = float(u[-1])
    cycles = np.floor(span * freqs).astype(np.int64) + 1
    order = np.argsort(cycles, kind="stable")     # chunks of similar length, little padding
    start = 0
    while start < m:
        width = nb * int(cycles[order[start]]) + 1
        size = max(1, CHUNK_ELEMENTS // max(width, 1))
        stop = min(m, start + size)
        width = nb * int(cycles[order[stop - 1]]) + 1
        rows = order[start:stop]
        edges = np.arange(width, dtype=np.float64)[None, :] / (nb * freqs[rows, None])
        idx = np.searchsorted(u, edges, side="left")
        seg_sum = cs[idx[:, 1:]] - cs[idx[:, :-1]]
        seg_count = np.diff(idx, axis=1)
        n_cycles = (width - 1) // nb
        y[rows] = seg_sum.reshape(rows.size, n_cycles, nb).sum(axis=1)
        c[rows] = seg_count.reshape(rows.size, n_cycles, nb).sum(axis=1)
        start = stop
    return y, c


def fold_by_bincount(u: np.ndarray, v: np.ndarray, freqs: np.ndarray,
                     nb: int) -> tuple[np.ndarray, np.ndarray]:
    """Same as :func:`fold_by_edges`, by computing every sample's bin at every frequency."""
    m, n = freqs.size, u.size
    y = np.zeros((m, nb))
    c = np.zeros((m, nb), dtype=np.int64)
    size = max(1, CHUNK_ELEMENTS // max(n, 1))
    for start in range(0, m, size):
        f = freqs[start:start + size]
        phase = np.multiply.outer(f, u)
        phase -= np.floor(phase)
        index = (nb * phase).astype(np.int64)
        np.minimum(index, nb - 1, out=index)          # guards nb * phase rounding up to nb
        index += (np.arange(f.size, dtype=np.int64) * nb)[:, None]
        flat = index.ravel()
        y[start:start + f.size] = np.bincount(
            flat, weights=np.broadcast_to(v, phase.shape).ravel(),
            minlength=f.size * nb).reshape(f.size, nb)
        c[start:start + f.size] = np.bincount(flat, minlength=f.size * nb).reshape(f.size, nb)
    return y, c


def box_statistics(y: np.ndarray, c: np.ndarray, n: int, kmi: int, kma: int,
                   kkmi: int) -> tuple[np.ndarray, ...]:
    """The best box of each folded light curve.

    Boxes start at every bin ``i`` and span ``k = kmi .. kma + 1`` bins, wrapping past the
    last bin; a box needs ``r >= kkmi`` samples (and fewer than ``n``). Returns
    ``(sr, start, width, s, r)`` per frequency: the signal residue ``s**2 / (r (n - r))`` of
    the best box (0 when no box qualifies), its first bin (0-based), its width in bins, its
    flux sum and sample count. Of equal residues the box met last in ``eebls``'s loop order
    (start, then width) wins.
    """
    m, nb = y.shape
    widths = np.arange(max(1, kmi), kma + 2)
    out_sr = np.zeros(m)
    out_start = np.zeros(m, dtype=np.int64)
    out_width = np.full(m, widths[-1], dtype=np.int64)
    out_s = np.zeros(m)
    out_r = np.zeros(m, dtype=np.int64)
    size = max(1, CHUNK_ELEMENTS // (4 * (nb + kma + 1)))
    for lo in range(0, m, size):
        hi = min(m, lo + size)
        rows = np.arange(hi - lo)
        cy = np.zeros((hi - lo, nb + kma + 1))
        cc = np.zeros((hi - lo, nb + kma + 1), dtype=np.int64)
        np.cumsum(np.concatenate([y[lo:hi], y[lo:hi, :kma]], axis=1), axis=1, out=cy[:, 1:])
        np.cumsum(np.concatenate([c[lo:hi], c[lo:hi, :kma]], axis=1), axis=1, out=cc[:, 1:])
        best_sr = np.full(hi - lo, -1.0)
        best_order = np.full(hi - lo, -1, dtype=np.int64)
        best_start = np.zeros(hi - lo, dtype=np.int64)
        best_width = np.zeros(hi - lo, dtype=np.int64)
        for kidx, k in enumerate(widths):
            s = cy[:, k:k + nb] - cy[:, :nb]
            r = cc[:, k:k + nb] - cc[:, :nb]
            ok = (r >= kkmi) & (r < n)
            with np.errstate(divide="ignore", invalid="ignore"):
                sr = np.where(ok, s * s / (r * (n - r)), 0.0)
            start = nb - 1 - np.argmax(sr[:, ::-1], axis=1)     # last maximum over starts
            value = sr[rows, start]
            order = start * widths.size + kidx                  # position in eebls's loops
            better = (value > best_sr) | ((value == best_sr) & (order > best_order))
            best_sr = np.where(better, value, best_sr)
            best_order = np.where(better, order, best_order)
            best_start = np.where(better, start, best_start)
            best_width = np.where(better, k, best_width)
        ends = best_start + best_width
        out_sr[lo:hi] = best_sr
        out_start[lo:hi] = best_start
        out_width[lo:hi] = best_width
        out_s[lo:hi] = cy[rows, ends] - cy[rows, best_start]
        out_r[lo:hi] = cc[rows, ends] - cc[rows, best_start]
    return out_sr, out_start, out_width, out_s, out_r
