"""The ``transit_search_qats`` task: the quasiperiodic automated transit search of Carter &
Agol (2013), written here (no maintained package exists; the prototype called the authors' C
code once per grid point). The algorithm is in :mod:`.core`, its kernels in :mod:`.methods`.

Settings (``search_settings``), with the prototype's names and defaults:

==================  ===================================================  ==============
setting             meaning                                              default
==================  ===================================================  ==============
duration_min        shortest transit [d]                                 0.05
duration_max        longest transit [d]                                  0.2
duration_count      durations, linearly spaced                           16
period_min          shortest spacing of transits [d]                     4
period_max          longest spacing [d]                                  baseline / min_transit_count
min_transit_count   fewest transits in a sequence                        2
max_ttv_mag         f: spans of spacings [dmin, dmax] grow by (1 + f/2)  0.0005
method              kernel: ``numpy`` or ``reference``                   numpy
==================  ===================================================  ==============

The light curve is put on a fixed step (gaps filled with 0 after normalisation: no signal),
median-subtracted and divided by its standard deviation. Spans follow eqs. 15-16 of the
paper: ``dmin_j = int(d0 (1 + f/2)^j)``, ``dmax_j = int(d0 (1 + f/2)^(j+1))`` samples with
``d0 = period_min / step``; spans with ``dmin == dmax`` are skipped, as in the prototype.
Durations become whole samples (duplicates dropped).

Results: ``period`` = (last - first transit) / (transit_count - 1) of the best sequence,
``transit_count``, ``period_span`` (= transit_count - 1), ``first_transit`` and
``last_transit`` (mid-transit times [d]; the prototype gave the box starts), ``epoch``
(= first_transit), ``duration`` [d], ``depth`` [ppm] (mean deficit of the transit boxes),
``power`` and ``snr`` (both the best ``S_M / sqrt(M q)``), ``sde`` of the spectrum of best
statistic per span, ``target_period``, ``outcome``. Periodogram: ``period`` (middle of each
span [d]), ``power``, ``duration`` [d] and ``transit_count`` of the best sequence per span.
The ``debugging`` output (tar.gz) holds ``grid.qats`` (every span and duration, best first, the
prototype's columns ``s_best m_best delta_min delta_max transit_length``), ``final.qats``
(transit number and start sample of the best sequence) and ``settings.json``.
"""
from __future__ import annotations

import io
import json
import math
import tarfile
import multiprocessing
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

import numpy as np

from eas_runtime.lightcurve import LightCurve
from eas_runtime.lightcurve.search import (SearchResult, number, period_range, prepare, sde,
                                           settings_from)
from eas_runtime.task_api import InputError, ParameterError
from functions.transit_search_qats import core
from functions.transit_search_qats.methods import KERNELS

TASK = "transit_search_qats"
DEFAULT_SETTINGS: dict[str, Any] = {
    "duration_min": 0.05,
    "duration_max": 0.2,
    "duration_count": 16,
    "period_min": 4.0,
    "period_max": None,
    "min_transit_count": 2,
    "max_ttv_mag": 0.0005,
    "method": "numpy",
}


@dataclass
class QatsOutput:
    """A QATS result and the files of its ``debugging`` output."""

    result: SearchResult
    debugging: dict[str, bytes]

    def write_debugging(self, path: str | Path) -> Path:
        """Write the debugging files as a gzipped tar archive."""
        buffer = io.BytesIO()
        with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
            for name, content in self.debugging.items():
                info = tarfile.TarInfo(name)
                info.size = len(content)
                tar.addfile(info, io.BytesIO(content))
        path = Path(path)
        path.write_bytes(buffer.getvalue())
        return path


def _settings(search_settings: Mapping[str, Any] | None) -> dict[str, Any]:
    s = settings_from(search_settings, DEFAULT_SETTINGS, task=TASK)
    if s["method"] not in KERNELS:
        raise ParameterError(f"search setting 'method' must be one of {sorted(KERNELS)}, "
                             f"got {s['method']!r}")
    for key in ("duration_min", "duration_max", "max_ttv_mag"):
        s[key] = number(s, key, positive=True)
    for key in ("duration_count", "min_transit_count"):
        s[key] = number(s, key, positive=True, integer=True)
    if s["duration_max"] < s["duration_min"]:
        raise ParameterError(f"search settings need duration_min <= duration_max, got "
                             f"{s['duration_min']!r} > {s['duration_max']!r}")
    return s


def spans(period_min: float, period_max: float, step: float,
          max_ttv_mag: float) -> list[tuple[int, int]]:
    """The spans ``(dmin, dmax)`` [samples] of eqs. 15-16, without empty ones."""
    growth = 1 + max_ttv_mag / 2
    count = int(math.floor(math.log(period_max / period_min) / math.log(growth)))
    base = period_min / step
    j = np.arange(count)
    dmin = (base * growth ** j).astype(np.int64)
    dmax = (base * growth ** (j + 1)).astype(np.int64)
    keep = dmax > dmin
    pairs = dict.fromkeys(zip(dmin[keep].tolist(), dmax[keep].tolist()))
    return list(pairs)


def search(lc: LightCurve, *, lc_duration: float | None = None,
           search_settings: Mapping[str, Any] | None = None,
           target_period: float | None = None, cpus: int = 1) -> QatsOutput:
    """Run QATS over ``lc``; see the module documentation. ``cpus`` threads share the spans."""
    s = _settings(search_settings)
    data = prepare(lc, lc_duration, target_period=target_period)
    good = LightCurve(data.time, data.flux)
    step = good.estimate_sampling_interval()
    fixed = good.to_fixed_step(step)
    d = np.where(fixed.flags == 0, fixed.flux - np.median(data.flux), 0.0)
    scatter = float(np.std(d[fixed.flags == 0]))
    if not scatter > 0:
        raise InputError("QATS needs a light curve whose flux varies (its scatter is 0)")
    d /= scatter
    n = d.size
    s_minmax = dict(s)
    period_min, period_max = period_range(s_minmax, data.baseline,
                                          min_transits=s["min_transit_count"],
                                          shortest_duration=s["duration_max"])
    q = np.unique(np.maximum(1, np.rint(
        np.linspace(s["duration_min"], s["duration_max"], s["duration_count"]) / step)
        .astype(np.int64)))
    grid = spans(period_min, period_max, step, s["max_ttv_mag"])
    if not grid:
        raise ParameterError(f"no span of spacings between period_min {period_min:g} d and "
                             f"period_max {period_max:g} d at a {step * 86400:.6g} s step")
    stat, count = _run_spans(d, q, grid, s["min_transit_count"], s["method"], cpus)
    per_span = np.argmax(stat, axis=1)
    span_stat = stat[np.arange(len(grid)), per_span]
    if not np.isfinite(span_stat).any():
        raise InputError(f"no sequence of at least {s['min_transit_count']} transits fits in "
                         f"{data.baseline:.6g} d for periods {period_min:g}-{period_max:g} d")
    best_span = int(np.nanargmax(np.where(np.isfinite(span_stat), span_stat, -np.inf)))
    best_q_index = int(per_span[best_span])
    dmin, dmax = grid[best_span]
    k = int(q[best_q_index])
    m = int(count[best_span, best_q_index])
    box = core.box_scores(d, k)
    starts = core.best_sequence(box, dmin, dmax, m)
    centre = fixed.time[0] + (starts + 0.5 * (k - 1)) * step
    first, last = float(centre[0]), float(centre[-1])
    period = (last - first) / (m - 1) if m > 1 else math.nan
    raw = np.where(fixed.flags == 0, fixed.flux, np.nan)
    in_box = np.concatenate([raw[t:t + k] for t in starts])
    depth = float(np.median(data.flux) - np.nanmean(in_box)) * 1e6
    power = float(span_stat[best_span])

    durations_d = q * step
    periodogram = {
        "period": np.array([0.5 * (a + b) * step for a, b in grid]),
        "power": span_stat,
        "duration": durations_d[per_span],
        "transit_count": count[np.arange(len(grid)), per_span].astype(np.int64),
    }
    result = SearchResult.build(
        data, period=period, epoch=first, duration=float(k * step), depth=depth, power=power,
        snr=power, sde_value=sde(span_stat), count=m, periodogram=periodogram,
        extra={"period_span": m - 1, "first_transit": first, "last_transit": last,
               "n_periods": len(grid)})
    return QatsOutput(result, _debugging(stat, count, grid, q, starts, s, step, n))


#: Work (samples x spans) above which a search with several CPUs uses worker processes.
PARALLEL_WORK = 5e7


def _chunk(d, q, pairs, m_min, method):
    """Statistic and transit count per span of ``pairs`` (rows) and duration (columns)."""
    if method == "numpy":
        scores = np.vstack([core.box_scores(d, int(k)) for k in q])
        out = [core.span_scores(scores, q, dmin, dmax, m_min) for dmin, dmax in pairs]
    else:
        out = [KERNELS[method](d, q, dmin, dmax, m_min) for dmin, dmax in pairs]
    return np.vstack([o[0] for o in out]), np.vstack([o[1] for o in out])


def _run_spans(d, q, grid, m_min, method, cpus):
    """All spans; shared among ``cpus`` worker processes when the work is large (threads do
    not help: the loop is short numpy calls that hold the interpreter lock)."""
    workers = max(1, int(cpus))
    if workers == 1 or d.size * len(grid) < PARALLEL_WORK:
        return _chunk(d, q, grid, m_min, method)
    # interleaved chunks: short and long spacings (cheap and costly spans) mix evenly
    parts = [grid[i::4 * workers] for i in range(4 * workers)]
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=workers, mp_context=context) as pool:
        results = list(pool.map(_chunk, *zip(*[(d, q, part, m_min, method) for part in parts])))
    stat = np.empty((len(grid), q.size))
    count = np.empty((len(grid), q.size), dtype=np.int64)
    for i, (part_stat, part_count) in enumerate(results):
        stat[i::4 * workers] = part_stat
        count[i::4 * workers] = part_count
    return stat, count


def _debugging(stat, count, grid, q, starts, settings, step, n) -> dict[str, bytes]:
    order = np.argsort(stat, axis=None)[::-1]
    lines = ["# s_best m_best delta_min delta_max transit_length  (spacings and length in "
             f"samples of {step * 86400:.6g} s)"]
    for flat in order:
        i, j = np.unravel_index(flat, stat.shape)
        if not np.isfinite(stat[i, j]):
            continue
        lines.append(f"{stat[i, j]:15.5f} {count[i, j]:5d} {grid[i][0]:15.5f} "
                     f"{grid[i][1]:15.5f} {q[j]:15.5f}")
    final = ["# transit_number start_sample"] + [f"{i} {t}" for i, t in enumerate(starts)]
    info = {**{k: v for k, v in settings.items()}, "step_days": step, "samples": n,
            "spans": len(grid), "durations_samples": [int(x) for x in q]}
    return {"grid.qats": ("\n".join(lines) + "\n").encode(),
            "final.qats": ("\n".join(final) + "\n").encode(),
            "settings.json": json.dumps(info, indent=1, default=str).encode()}
