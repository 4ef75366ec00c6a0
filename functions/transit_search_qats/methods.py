"""Kernels of QATS: the vectorised one (:mod:`.core`) and a slow reference one.

Both have the signature ``kernel(d, q, dmin, dmax, m_min) -> (statistic, M)``: for the
normalised fixed-step light curve ``d``, the durations ``q`` [samples] and one span of
allowed spacings ``[dmin, dmax]`` [samples], the best ``S_M / sqrt(M q)`` over
``M >= m_min`` and its ``M``, per duration. ``KERNELS`` maps method names to kernels.
"""
from __future__ import annotations

import math
from typing import Callable

import numpy as np

from functions.transit_search_qats import core


def numpy_kernel(d, q, dmin, dmax, m_min=1):
    """Vectorised dynamic programming, all durations at once (see :mod:`.core`)."""
    d = np.asarray(d, dtype=np.float64)
    q = np.asarray(q, dtype=np.int64)
    scores = np.vstack([core.box_scores(d, int(k)) for k in q])
    return core.span_scores(scores, q, int(dmin), int(dmax), int(m_min))


def reference_kernel(d, q, dmin, dmax, m_min=1):
    """The recursion written out with Python loops, one duration and one ``M`` at a time."""
    d = [float(x) for x in d]
    n = len(d)
    stats, counts = [], []
    for k in (int(x) for x in q):
        score = [-sum(d[t:t + k]) if t + k <= n else -math.inf for t in range(n)]
        best, best_m = -math.inf, 0
        gamma = {t: score[t] for t in range(min(dmax, n))}
        m = 1
        while gamma:
            if m >= m_min:
                ends = [g for t, g in gamma.items() if n - t <= dmax]
                if ends and max(ends) / math.sqrt(m * k) > best:
                    best, best_m = max(ends) / math.sqrt(m * k), m
            new = {}
            for t in range(n):
                prev = [gamma[p] for p in range(t - dmax, t - dmin + 1) if p in gamma]
                if prev:
                    new[t] = score[t] + max(prev)
            gamma = new
            m += 1
        stats.append(best)
        counts.append(best_m)
    return np.array(stats), np.array(counts, dtype=np.int64)


KERNELS: dict[str, Callable] = {"numpy": numpy_kernel, "reference": reference_kernel}
