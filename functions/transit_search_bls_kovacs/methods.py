"""Kernels of the Kovacs et al. (2002) BLS: a vectorised one and a slow reference one.

Both have the signature ``kernel(u, v, freqs, nb, qmi, qma) -> Spectrum`` and compute what the
Fortran ``eebls`` of Kovacs et al. computes for each trial frequency, with its parameters:

- ``u``: times since the first sample [days], sorted; ``v``: fluxes minus their mean;
- ``nb`` phase bins; boxes of ``kmi = max(1, int(qmi nb))`` to ``kma + 1`` bins, where
  ``kma = int(qma nb) + 1``, holding at least ``kkmi = max(5, int(n qmi))`` samples.

``KERNELS`` maps a method name to its kernel: ``"numba"`` (compiled and threaded,
:mod:`.compiled`; the reference kernel's loops, so its spectrum is the reference's to the last
bit), ``"numpy"`` (vectorised, :mod:`.core`) and ``"reference"`` (a transcription of the Fortran
loops, one frequency at a time; for tests).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np

from functions.transit_search_bls_kovacs import core

MIN_BIN = 5  # eebls's ``minbin``: fewest samples in a box


@dataclass(frozen=True)
class Spectrum:
    """Per trial frequency: ``power`` = sqrt of the best signal residue (eebls's ``p``),
    the best box's first bin (0-based) and width [bins], and its flux sum and sample count."""

    power: np.ndarray
    start: np.ndarray
    width: np.ndarray
    in_sum: np.ndarray
    in_count: np.ndarray


def box_limits(n: int, nb: int, qmi: float, qma: float) -> tuple[int, int, int]:
    """eebls's ``(kmi, kma, kkmi)``."""
    kmi = max(1, int(qmi * nb))
    kma = int(qma * nb) + 1
    kkmi = max(MIN_BIN, int(n * qmi))
    return kmi, kma, kkmi


def numpy_kernel(u, v, freqs, nb, qmi, qma) -> Spectrum:
    """Vectorised kernel: folds by bin edges where that is cheaper, else by bincount."""
    u, v, freqs = (np.asarray(a, dtype=np.float64) for a in (u, v, freqs))
    n = u.size
    kmi, kma, kkmi = box_limits(n, nb, qmi, qma)
    edge_work = nb * (np.floor(u[-1] * freqs) + 1)
    by_edges = edge_work * 4 < n          # a search-sorted look-up costs a few sample passes
    y = np.zeros((freqs.size, nb))
    c = np.zeros((freqs.size, nb), dtype=np.int64)
    for mask, fold in ((by_edges, core.fold_by_edges), (~by_edges, core.fold_by_bincount)):
        if mask.any():
            y[mask], c[mask] = fold(u, v, freqs[mask], nb)
    sr, start, width, s, r = core.box_statistics(y, c, n, kmi, kma, kkmi)
    return Spectrum(np.sqrt(sr), start, width, s, r)


def reference_kernel(u, v, freqs, nb, qmi, qma) -> Spectrum:
    """The eebls loops, one frequency at a time (slow; a check of :func:`numpy_kernel`)."""
    u, v, freqs = (np.asarray(a, dtype=np.float64) for a in (u, v, freqs))
    n = u.size
    kmi, kma, kkmi = box_limits(n, nb, qmi, qma)
    out = {k: np.zeros(freqs.size) for k in ("power", "start", "width", "s", "r")}
    for jf, f0 in enumerate(freqs):
        ibi = [0] * (nb + kma)
        y = [0.0] * (nb + kma)
        phase = u * f0
        phase = phase - np.floor(phase)
        for j, value in zip(np.minimum((nb * phase).astype(int), nb - 1), v):
            ibi[j] += 1
            y[j] += value
        for j in range(nb, nb + kma):          # wrap: bins beyond nb repeat the first ones
            ibi[j], y[j] = ibi[j - nb], y[j - nb]
        power = 0.0
        best = (0, 0, 0.0, 0)
        for i in range(nb):
            s, kk = 0.0, 0
            for k, j in enumerate(range(i, i + kma + 1), start=1):
                kk += ibi[j]
                s += y[j]
                if k < kmi or kk < kkmi or kk >= n:
                    continue
                pw = s * s / (kk * (n - kk))
                if pw < power:
                    continue
                power, best = pw, (i, k, s, kk)
        out["power"][jf] = np.sqrt(power)
        out["start"][jf], out["width"][jf], out["s"][jf], out["r"][jf] = best
    return Spectrum(out["power"], out["start"].astype(int), out["width"].astype(int),
                    out["s"], out["r"].astype(int))


def numba_kernel(u, v, freqs, nb, qmi, qma) -> Spectrum:
    """Compiled kernel (:mod:`.compiled`): the reference kernel's loops on all cores."""
    from functions.transit_search_bls_kovacs import compiled
    n = np.size(u)
    kmi, kma, kkmi = box_limits(n, nb, qmi, qma)
    return Spectrum(*compiled.spectrum(u, v, freqs, nb, kmi, kma, kkmi))


KERNELS: dict[str, Callable[..., Spectrum]] = {
    "numba": numba_kernel,
    "numpy": numpy_kernel,
    "reference": reference_kernel,
}
