"""Vectorised kernel of flux-conserving resampling (overlap-weighted bin averages)."""
from __future__ import annotations

import numpy as np


def bin_edges(time: np.ndarray, step: float) -> tuple[np.ndarray, np.ndarray]:
    """Edges of the bin each sample stands for.

    A bin reaches half-way to each neighbour but never more than ``step / 2`` from its
    sample, so the bins either side of a gap do not swallow the gap.
    """
    half = 0.5 * float(step)
    lo = time - half
    hi = time + half
    if time.size > 1:
        mid = 0.5 * (time[1:] + time[:-1])
        lo[1:] = np.maximum(mid, lo[1:])
        hi[:-1] = np.minimum(mid, hi[:-1])
    return lo, hi


def _cumulative(values: np.ndarray) -> np.ndarray:
    out = np.zeros(values.size + 1)
    np.cumsum(values, out=out[1:])
    return out


def overlap_average(lo, hi, flux, flux_err, new_lo, new_hi):
    """Average of source bins ``[lo, hi)`` with values ``flux`` over each new bin.

    Weights are overlap lengths ``w``: ``mean = sum(w f) / sum(w)`` and
    ``err = sqrt(sum(w^2 err^2)) / sum(w)``. Sums over the source bins fully inside a new bin
    come from cumulative sums; the two end bins, possibly partial, are added explicitly, so a
    sliver of overlap is never the difference of two large numbers.

    Returns
    -------
    flux, flux_err, weight : ndarray
        ``flux`` is NaN where ``weight`` (the covered length) is 0; ``flux_err`` is ``None``
        when ``flux_err`` is ``None``.
    """
    n_new = new_lo.size
    if lo.size == 0:
        nan = np.full(n_new, np.nan)
        return nan, (None if flux_err is None else nan.copy()), np.zeros(n_new)
    width = hi - lo
    reference = float(np.median(flux))
    shifted = flux - reference  # keeps cumulative sums small, hence precise
    first = np.searchsorted(hi, new_lo, side="right")  # first bin ending after new_lo
    last = np.searchsorted(lo, new_hi, side="left") - 1  # last bin starting before new_hi
    overlaps = first <= last
    m = lo.size
    jl = np.clip(first, 0, m - 1)
    jh = np.clip(last, 0, m - 1)
    w_first = np.clip(np.minimum(hi[jl], new_hi) - np.maximum(lo[jl], new_lo), 0.0, None)
    w_last = np.clip(np.minimum(hi[jh], new_hi) - np.maximum(lo[jh], new_lo), 0.0, None)
    w_last = np.where(jh != jl, w_last, 0.0)
    inner = last > first
    a = np.clip(first + 1, 0, m)
    b = np.clip(last, 0, m)

    def interior(values: np.ndarray) -> np.ndarray:
        c = _cumulative(values)
        return np.where(inner, c[b] - c[np.minimum(a, b)], 0.0)

    weight = w_first + w_last + interior(width)
    total = w_first * shifted[jl] + w_last * shifted[jh] + interior(width * shifted)
    weight = np.where(overlaps, weight, 0.0)
    covered = weight > 0
    safe = np.where(covered, weight, 1.0)
    new_flux = np.where(covered, total / safe + reference, np.nan)
    new_err = None
    if flux_err is not None:
        # A non-finite uncertainty makes the uncertainty of every new bin it touches NaN,
        # without spilling into the cumulative sums of the other bins.
        unknown = ~np.isfinite(flux_err)
        err = np.where(unknown, 0.0, flux_err)
        var = ((w_first * err[jl]) ** 2 + (w_last * err[jh]) ** 2
               + interior((width * err) ** 2))
        n_unknown = ((w_first > 0) & unknown[jl]) | ((w_last > 0) & unknown[jh])
        n_unknown = n_unknown | (interior(unknown.astype(np.float64)) > 0)
        new_err = np.where(covered & ~n_unknown,
                           np.sqrt(np.clip(var, 0.0, None)) / safe, np.nan)
    return new_flux, new_err, weight
