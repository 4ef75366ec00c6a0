"""Binning a light curve in time before a search: weighted means with propagated errors.

A transit of duration ``D`` is resolved by bins of a fraction of ``D``; a search over
durations of at least ``D_min`` loses little signal-to-noise when the samples are first
averaged in bins of ``fraction * D_min`` (the loss is measured in the tests), and the cost of
folding falls with the number of points. Binning keeps every sum a box statistic uses: in a
bin, the inverse-variance weight ``w = sum(1 / dy**2)``, the weighted mean flux
``sum(y / dy**2) / w`` and the weighted mean time, with the uncertainty ``1 / sqrt(w)``.
Binning binned data into bins an integer number of times wider, from the same origin, gives
what binning the samples directly would (:func:`rebin`); into wider bins of any width, nearly
so (bin edges move by less than the narrower width).

Times in days; fluxes and their uncertainties in any one unit.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Binned:
    """Time-binned samples: weighted mean ``t`` [d] and ``y``, ``dy = 1 / sqrt(weight)``;
    only bins holding samples. ``width`` [d] and ``origin`` [d] define the bins
    ``[origin + i width, origin + (i + 1) width)``."""

    t: np.ndarray
    y: np.ndarray
    dy: np.ndarray
    width: float
    origin: float

    @property
    def weight(self) -> np.ndarray:
        return 1.0 / self.dy ** 2

    def __len__(self) -> int:
        return int(self.t.size)


def check_series(t, y, dy) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(t, y, dy)`` as float arrays of one length, finite, ``dy > 0`` (a scalar ``dy`` is
    broadcast; None gives the robust scatter of ``y``). Raises ValueError naming the defect."""
    arrays = []
    for name, values in (("t", t), ("y", y)):
        array = np.asarray(values, dtype=np.float64)
        if array.ndim != 1:
            raise ValueError(f"{name} must be a 1-D array, got shape {array.shape}")
        arrays.append(array)
    t, y = arrays
    if t.size != y.size:
        raise ValueError(f"t and y must have the same length, got {t.size} and {y.size}")
    if t.size < 2:
        raise ValueError(f"a search needs at least 2 samples, got {t.size}")
    if dy is None:
        scatter = 1.4826 * float(np.median(np.abs(y - np.median(y))))
        if not scatter > 0:
            raise ValueError("dy is None and the flux has no scatter to take as uncertainty")
        dy = scatter
    dy = np.broadcast_to(np.asarray(dy, dtype=np.float64), y.shape)
    for name, array in (("t", t), ("y", y), ("dy", dy)):
        bad = ~np.isfinite(array)
        if bad.any():
            raise ValueError(f"{name} has {int(bad.sum())} non-finite values (NaN or inf), the "
                             f"first at index {int(np.flatnonzero(bad)[0])}; drop them first")
    if not np.all(dy > 0):
        raise ValueError(f"dy must be positive, got {float(dy.min())!r} at index "
                         f"{int(np.argmin(dy))}")
    return t, y, dy


def prebin(t, y, dy, width: float, origin: float | None = None) -> Binned:
    """Bin ``(t [d], y, dy)`` in bins of ``width`` [d] from ``origin`` (default ``min(t)``).

    Vectorised (three ``numpy.bincount`` passes); the order of the samples does not matter.
    Raises ValueError for a width that is not a positive number or bad samples.
    """
    t, y, dy = check_series(t, y, dy)
    return _bin(t, y, 1.0 / dy ** 2, width, float(np.min(t)) if origin is None else origin)


def rebin(binned: Binned, width: float) -> Binned:
    """``binned`` in bins of ``width`` [d] (at least ``binned.width``) from the same origin.

    Each bin goes whole into the wider bin that holds its mean time: when ``width`` is an
    integer multiple of ``binned.width`` this is exactly what binning the samples would give,
    otherwise the wider bins' edges move by less than ``binned.width`` to fall between bins.
    """
    if not (isinstance(width, (int, float, np.floating)) and not isinstance(width, bool)
            and math.isfinite(width) and width >= binned.width):
        raise ValueError(f"the new bin width must be a number of days >= the current "
                         f"{binned.width!r}, got {width!r}")
    factor = width / binned.width
    if factor < 1.0 + 1e-12:
        return binned
    return _bin(binned.t, binned.y, binned.weight, float(width), binned.origin,
                fine_width=binned.width if abs(factor - round(factor)) < 1e-9 else None)


def _bin(t, y, w, width, origin, fine_width: float | None = None) -> Binned:
    if isinstance(width, bool) or not (isinstance(width, (int, float, np.floating))
                                       and math.isfinite(width) and width > 0):
        raise ValueError(f"the bin width must be a positive number of days, got {width!r}")
    if fine_width is None:
        index = np.floor((t - origin) / width).astype(np.int64)
    else:  # the bin of each fine bin, whatever rounding says about its mean time
        factor = round(width / fine_width)
        index = np.floor((t - origin) / fine_width).astype(np.int64) // factor
    if index.min() < 0:
        raise ValueError(f"samples before the origin of the bins ({origin!r} d)")
    if index.max() > 4 * index.size:   # sparse bins (a gap, or a width far below the cadence)
        _, index = np.unique(index, return_inverse=True)
    sw = np.bincount(index, weights=w)
    keep = np.flatnonzero(sw > 0)
    sw = sw[keep]
    mean_t = np.bincount(index, weights=w * t)[keep] / sw
    mean_y = np.bincount(index, weights=w * y)[keep] / sw
    return Binned(t=mean_t, y=mean_y, dy=1.0 / np.sqrt(sw), width=float(width),
                  origin=float(origin))
