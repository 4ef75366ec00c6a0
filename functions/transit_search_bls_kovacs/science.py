"""The ``transit_search_bls_kovacs`` task: the box-fitting least squares of Kovacs, Zucker &
Mazeh (2002), written here (the prototype called the Fortran ``eebls`` through python-bls).

Three layers, as astropy's BLS: this module validates settings and turns the best box into
physical results; :mod:`.methods` holds the kernels (compiled with numba, vectorised numpy,
and a slow reference of the same signature); :mod:`.compiled` and :mod:`.core` the compiled and
the vectorised folding and box statistics.

Settings (``search_settings``) and their defaults, the prototype's:

==================  =====================================================  =============
setting             meaning                                                default
==================  =====================================================  =============
period_min          shortest trial period [d]                              0.5
period_max          longest trial period [d]                               baseline / 2
qmi, qma            shortest and longest box, fraction of the period       0.05, 0.2
nb                  phase bins of the folded light curve                   10
frequency_factor    frequency step = frequency_factor * qmi / baseline^2   2
method              kernel: ``numba``, ``numpy`` or ``reference``          numba
==================  =====================================================  =============

Only good samples are used; the flux is divided by its median (eebls then subtracts the mean).
Results: ``period``, ``epoch`` (middle of the best box, the first after the first sample),
``duration`` (box width [d]), ``depth`` [ppm] (eebls's depth, positive for a dip; a negative
value is a bump: eebls fits both), ``power`` (sqrt of the signal residue at the peak, eebls's
``p``), ``sde``, ``snr`` (depth over its uncertainty from the robust scatter),
``transit_count``, ``target_period`` and ``outcome``. Periodogram columns: ``period`` [d] and
``power``.

References
----------
Kovacs, G., Zucker, S. & Mazeh, T. (2002), A&A 391, 369.
"""
from __future__ import annotations

import math
from typing import Any, Mapping

import numpy as np

from eas_runtime.lightcurve import LightCurve
from eas_runtime.lightcurve.search import (SearchResult, number, period_range, prepare, sde,
                                           settings_from, transit_count)
from eas_runtime.task_api import ParameterError
from functions.transit_search_bls_kovacs.methods import KERNELS

TASK = "transit_search_bls_kovacs"
DEFAULT_SETTINGS: dict[str, Any] = {
    "period_min": 0.5,
    "period_max": None,
    "qmi": 0.05,
    "qma": 0.2,
    "nb": 10,
    "frequency_factor": 2.0,
    "method": "numba",
}
#: Most bins: eebls's own limit (its arrays hold 2000).
MAX_BINS = 2000


def _settings(search_settings: Mapping[str, Any] | None) -> dict[str, Any]:
    s = settings_from(search_settings, DEFAULT_SETTINGS, task=TASK)
    if s["method"] not in KERNELS:
        raise ParameterError(f"search setting 'method' must be one of {sorted(KERNELS)}, "
                             f"got {s['method']!r}")
    s["nb"] = number(s, "nb", positive=True, integer=True)
    if s["nb"] > MAX_BINS:
        raise ParameterError(f"search setting 'nb' must be at most {MAX_BINS}, got {s['nb']!r}")
    for key in ("qmi", "qma", "frequency_factor"):
        s[key] = number(s, key, positive=True)
    if not s["qmi"] <= s["qma"] < 1:
        raise ParameterError(f"search settings need qmi <= qma < 1, got qmi = {s['qmi']!r}, "
                             f"qma = {s['qma']!r}")
    return s


def frequency_grid(period_min: float, period_max: float, baseline: float, qmi: float,
                   frequency_factor: float) -> np.ndarray:
    """The prototype's grid: from 1/period_max up to 1/period_min [1/d] in steps of
    ``frequency_factor * qmi / baseline**2``."""
    f_min, f_max = 1.0 / period_max, 1.0 / period_min
    step = frequency_factor * qmi / baseline ** 2
    count = int((f_max - f_min) / step) + 1
    return f_min + step * np.arange(count)


def search(lc: LightCurve, *, lc_duration: float | None = None,
           search_settings: Mapping[str, Any] | None = None,
           target_period: float | None = None) -> SearchResult:
    """Search ``lc`` for a periodic box-shaped dip; see the module documentation.

    Parameters
    ----------
    lc : LightCurve
        Times in days.
    lc_duration : float, optional
        Keep only the first ``lc_duration`` days.
    search_settings : mapping, optional
        Overrides of :data:`DEFAULT_SETTINGS`.
    target_period : float, optional
        The true period [days]; defaults to ``lc.meta['orbital_period']``.
    """
    s = _settings(search_settings)
    data = prepare(lc, lc_duration, target_period=target_period)
    baseline = data.baseline
    period_min, period_max = period_range(s, baseline)
    freqs = frequency_grid(period_min, period_max, baseline, s["qmi"], s["frequency_factor"])
    u = data.time - data.time[0]
    v = data.flux - np.mean(data.flux)
    spectrum = KERNELS[s["method"]](u, v, freqs, s["nb"], s["qmi"], s["qma"])

    best = int(np.argmax(spectrum.power))
    n = u.size
    period = 1.0 / float(freqs[best])
    r = float(spectrum.in_count[best])
    depth = -float(spectrum.in_sum[best]) * n / (r * (n - r)) if 0 < r < n else math.nan
    width_phase = float(spectrum.width[best]) / s["nb"]
    middle = ((float(spectrum.start[best]) + 0.5 * float(spectrum.width[best])) / s["nb"]) % 1.0
    epoch = float(data.time[0]) + middle * period
    duration = width_phase * period
    snr = (depth / (data.sigma * math.sqrt(1 / r + 1 / (n - r)))
           if data.sigma > 0 and 0 < r < n else math.nan)
    return SearchResult.build(
        data, period=period, epoch=epoch, duration=duration, depth=depth * 1e6,
        power=float(spectrum.power[best]), snr=snr, sde_value=sde(spectrum.power),
        count=transit_count(data.time, period, epoch, duration),
        periodogram={"period": 1.0 / freqs, "power": spectrum.power},
        extra={"n_periods": int(freqs.size)})


def warm_up() -> None:
    """Compile (or load from numba's cache) the numba kernel (:mod:`eas_runtime.warmup`)."""
    t = np.arange(0.0, 20.0, 0.01)
    y = 1.0 + 1e-4 * np.sin(t * 7.0)
    y[(t % 3.0) < 0.1] -= 1e-3
    search(LightCurve(t, y, None), search_settings={"period_min": 2.0, "period_max": 4.0})
