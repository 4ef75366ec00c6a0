"""Compiled (numba) kernel of the Kovacs et al. (2002) ``eebls``: the loops of
:func:`.methods.reference_kernel`, operation for operation, so the spectrum is the reference
kernel's to the last bit, on threads.

Organised as the BLS kernel of :mod:`eas_runtime.bls._kernel`: frequencies in groups of
:data:`GROUP`, taken by the threads from a shared counter; for each group one pass over chunks
of samples, first the bins of the chunk at every frequency of the group (vectorised), then the
additions, flux and count together in one 128-bit operation into the frequency's ``(bins, 2)``
slab; then the ``eebls`` box search over each slab. Work memory: per thread, ``GROUP`` slabs of
``2 (nb + kma + 1)`` doubles and a ``GROUP x CHUNK`` index block.
"""
from __future__ import annotations

import numba
import numpy as np
from numba import njit, prange

from eas_runtime.bls._kernel import CHUNK, GROUP, thread_count
from eas_runtime.bls._simd import add_pair, fetch_add


@njit(cache=True)
def _fold_group(u, v, freqs, n_group, nb, slabs, index):
    """eebls's bins of ``v`` at ``freqs[:n_group]``: ``slabs[q, j] = (flux sum, count)``."""
    for q in range(GROUP):
        slabs[q, :, :] = 0.0
    n = u.size
    for start in range(0, n, CHUNK):
        m = min(n, start + CHUNK) - start
        us = u[start:start + m]                        # slices: indices known >= 0
        vs = v[start:start + m]
        for q in range(GROUP):                         # vectorised over samples
            f0 = freqs[q]
            row = index[q]
            for j in range(m):
                phase = us[j] * f0
                phase = phase - np.floor(phase)
                row[j] = min(np.int32(nb * phase), np.int32(nb - 1))
        for j in range(m):                             # all GROUP slabs: unrolled; the
            value = vs[j]                              # tail's repeats land in unused ones
            for q in range(GROUP):
                add_pair(slabs[q], np.uint32(index[q, j]), value, 1.0)


@njit(cache=True)
def _box_search(slab, n, nb, kmi, kma, kkmi, out, jf):
    """The best box of one folded light curve (eebls's loops) -> ``out[:, jf]``."""
    for j in range(nb, nb + kma):                      # wrap: bins beyond nb repeat the first
        slab[j, 0] = slab[j - nb, 0]
        slab[j, 1] = slab[j - nb, 1]
    power = 0.0
    best_i, best_k, best_s, best_kk = 0, 0, 0.0, 0.0
    for i in range(nb):
        s = 0.0
        kk = 0.0
        for k in range(1, kma + 2):
            j = i + k - 1
            kk += slab[j, 1]
            s += slab[j, 0]
            if k < kmi or kk < kkmi or kk >= n:
                continue
            pw = s * s / (kk * (n - kk))
            if pw < power:
                continue
            power = pw
            best_i, best_k, best_s, best_kk = i, k, s, kk
    out[0, jf] = np.sqrt(power)
    out[1, jf] = best_i
    out[2, jf] = best_k
    out[3, jf] = best_s
    out[4, jf] = best_kk


@njit(cache=True, parallel=True)
def _spectrum(u, v, freqs, nb, kmi, kma, kkmi, slabs, index, out):
    n_threads = slabs.shape[0]
    n_groups = (freqs.size + GROUP - 1) // GROUP
    n = float(u.size)
    counter = np.zeros(1, dtype=np.int64)
    for c in prange(n_threads):
        group = np.empty(GROUP)
        while True:
            g = fetch_add(counter)
            if g >= n_groups:
                break
            first = g * GROUP
            n_group = min(GROUP, freqs.size - first)
            for q in range(GROUP):                     # the unused tail repeats a frequency
                group[q] = freqs[first + min(q, n_group - 1)]
            _fold_group(u, v, group, n_group, nb, slabs[c], index[c])
            for q in range(n_group):
                _box_search(slabs[c, q], n, nb, kmi, kma, kkmi, out, first + q)


def spectrum(u, v, freqs, nb, kmi, kma, kkmi, threads=None):
    """``(power, start, width, in_sum, in_count)`` per frequency (see :mod:`.methods`)."""
    u, v, freqs = (np.ascontiguousarray(a, dtype=np.float64) for a in (u, v, freqs))
    n_threads = thread_count(threads, freqs.size)
    slabs = np.empty((n_threads, GROUP, nb + kma + 1, 2))
    index = np.empty((n_threads, GROUP, CHUNK), dtype=np.int32)
    out = np.zeros((5, freqs.size))
    previous = numba.get_num_threads()
    numba.set_num_threads(n_threads)
    try:
        _spectrum(u, v, freqs, nb, kmi, kma, float(kkmi), slabs, index, out)
    finally:
        numba.set_num_threads(previous)
    return (out[0], out[1].astype(np.int64), out[2].astype(np.int64), out[3],
            out[4].astype(np.int64))
