"""The ``transit_search_tls`` task: Transit Least Squares (Hippke & Heller 2019), the
``transitleastsquares`` package.

``search_settings`` (the prototype passed ``period_min`` and ``period_max``; the others are
TLS's own keywords, passed through): ``period_min``, ``period_max`` [d],
``oversampling_factor``, ``duration_grid_step``, ``transit_depth_min``, ``T0_fit_margin``,
``R_star``, ``R_star_min``, ``R_star_max``, ``M_star``, ``M_star_min``, ``M_star_max``
(solar units). TLS runs on ``use_threads`` = the CPUs allotted to the function.

Only good samples are used; the flux is divided by its median. Results: ``period``,
``epoch`` (TLS's ``T0``, mid-transit [d]), ``duration`` [d], ``depth`` [ppm]
(``1 - depth`` of TLS, which gives the mean in-transit flux), ``sde`` (TLS's SDE),
``power`` (the SDE-normalised TLS spectrum at the peak), ``snr`` (TLS's ``snr``),
``transit_count`` (transits with data: TLS's ``distinct_transit_count``; the prototype counted
every predicted transit time), ``target_period`` and ``outcome``. Periodogram columns:
``period`` [d], ``power`` (SDE spectrum) and ``sr`` (signal residue).
"""
from __future__ import annotations

import contextlib
import io
import logging
import math
import warnings
from typing import Any, Mapping

import numpy as np

from eas_runtime.lightcurve import LightCurve
from eas_runtime.lightcurve.search import (SearchResult, number, period_range, prepare,
                                           settings_from)

TASK = "transit_search_tls"
DEFAULT_SETTINGS: dict[str, Any] = {
    "period_min": 0.0,          # TLS's own default: from the stellar density and the data
    "period_max": None,         # days; TLS's default: half the baseline
    "oversampling_factor": None,
    "duration_grid_step": None,
    "transit_depth_min": None,
    "T0_fit_margin": None,
    "R_star": None, "R_star_min": None, "R_star_max": None,
    "M_star": None, "M_star_min": None, "M_star_max": None,
}
log = logging.getLogger("eas.task.transit_search_tls")


def _tls_keywords(s: Mapping[str, Any], baseline: float) -> dict[str, Any]:
    keywords: dict[str, Any] = {}
    for key in DEFAULT_SETTINGS:
        if key in ("period_min", "period_max") or s.get(key) is None:
            continue
        keywords[key] = number(s, key, positive=True)
    if s.get("period_min") or s.get("period_max") is not None:
        period_min, period_max = period_range({**s, "period_min": s.get("period_min") or 1e-9},
                                              baseline)
        if s.get("period_min"):
            keywords["period_min"] = period_min
        keywords["period_max"] = period_max
    return keywords


def search(lc: LightCurve, *, lc_duration: float | None = None,
           search_settings: Mapping[str, Any] | None = None,
           target_period: float | None = None, cpus: int = 1) -> SearchResult:
    """Run TLS over ``lc`` with ``cpus`` threads; see the module documentation."""
    from transitleastsquares import transitleastsquares

    s = settings_from(search_settings, DEFAULT_SETTINGS, task=TASK)
    if s.get("period_min"):
        number(s, "period_min", positive=True)
    data = prepare(lc, lc_duration, target_period=target_period)
    keywords = _tls_keywords(s, data.baseline)
    model = transitleastsquares(data.time, data.flux, data.flux_err)
    chatter = io.StringIO()
    with contextlib.redirect_stdout(chatter), warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        r = model.power(use_threads=max(1, int(cpus)), show_progress_bar=False, **keywords)
    for line in chatter.getvalue().splitlines():
        if line.strip():
            log.info("TLS: %s", line.strip())
    for warning in caught:
        log.warning("TLS: %s", warning.message)
    period = float(r.period)
    depth = (1.0 - float(r.depth)) * 1e6 if np.isfinite(r.depth) else math.nan
    power = np.asarray(r.power, dtype=np.float64)
    best = int(np.argmin(np.abs(np.asarray(r.periods) - period)))
    count = int(r.distinct_transit_count) if np.isfinite(r.distinct_transit_count) else 0
    return SearchResult.build(
        data, period=period, epoch=float(r.T0), duration=float(r.duration), depth=depth,
        power=float(power[best]), snr=float(r.snr), sde_value=float(r.SDE), count=count,
        periodogram={"period": np.asarray(r.periods, dtype=np.float64), "power": power,
                     "sr": np.asarray(r.SR, dtype=np.float64)},
        extra={"n_periods": int(np.asarray(r.periods).size)})
