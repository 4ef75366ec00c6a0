"""The ``transit_search_tls`` task: Transit Least Squares (Hippke & Heller 2019), the
``transitleastsquares`` package.

``search_settings`` (the prototype passed ``period_min`` and ``period_max``; the others are
TLS's own keywords, passed through): ``period_min``, ``period_max`` [d],
``oversampling_factor``, ``duration_grid_step``, ``transit_depth_min``, ``T0_fit_margin``,
``R_star``, ``R_star_min``, ``R_star_max``, ``M_star``, ``M_star_min``, ``M_star_max``
(solar units). TLS runs on ``use_threads`` = the CPUs allotted to the function.

Binning (``binning``, ``bin_fraction``): by default (``binning: "duration"``) the good samples
are first averaged in time bins of ``bin_fraction`` (default 1/3) of the shortest transit
duration TLS searches, as the BLS search does (:func:`eas_runtime.bls.prebin.prebin`:
inverse-variance weighted mean time and flux, uncertainty ``1 / sqrt(sum w)``), and TLS runs on
the bins. The shortest duration is TLS's own: its trial durations at a period ``P`` are those
not shorter than ``T14(R_star_min, M, P, small=True)`` (:mod:`transitleastsquares.grid`, the
mass paired with ``R_star_min`` by ``duration_limit_masses``), shortest at the shortest period
of TLS's period grid for the baseline, the star and ``period_min``/``period_max`` (0.018 d, 26
minutes, at 0.60 d for the default star and periods). A cadence already at least that bin is
not binned, nor is a light curve of fewer than :data:`BIN_MIN_SAMPLES` good samples (a TESS
sector: TLS on every sample is cheap there, and exact). ``binning: "none"`` runs
transitleastsquares on every good sample, exactly as before: the reference. TLS's own
pre-binning by period (``transitleastsquares.binning``,
present in the installed version) is set to the same fraction, so that longer periods, whose
shortest duration is longer, search coarser bins (2, 4... of ours). What differs with binning:
TLS searches the binned points and picks its peak there; the signal residue ``sr``, the
``power`` spectrum and ``sde`` are TLS's own (``transitleastsquares.stats.spectra``) recomputed
from its chi2 plus the within-bin scatter ``sum w (y - y_bin)**2``, which puts them on the
unbinned chi2 scale (binned chi2 alone inflates the SDE, by 10-15 % at 25 s and 2 min); the
SNR, depth, duration, epoch and in-transit counts are computed on the binned points (TLS's
``snr`` is the depth over the scatter of the out-of-transit points, times the square root of
the in-transit points: both change by the square root of the points per bin, so for white noise
it is unchanged); the period grid is TLS's own, for the bins' baseline (shorter than the
samples' by less than one bin, so the grid moves by less than the bin over the baseline,
relatively). The metadata record ``binning``, ``binned_cadence_s`` (the bin width [s], 0
without binning), ``n_samples`` (good samples) and ``n_points`` (the points TLS ran on).

Only good samples are used; the flux is divided by its median. Results: ``period``,
``epoch`` (TLS's ``T0``, mid-transit [d]), ``duration`` [d], ``depth`` [ppm]
(``1 - depth`` of TLS, which gives the mean in-transit flux), ``sde`` (TLS's SDE),
``power`` (the SDE-normalised TLS spectrum at the peak), ``snr`` (TLS's ``snr``),
``transit_count`` (transits with data: TLS's ``distinct_transit_count``; the prototype counted
every predicted transit time), ``target_period`` and ``outcome``. Periodogram columns:
``period`` [d], ``power`` (SDE spectrum) and ``sr`` (signal residue).
"""
from __future__ import annotations

import logging
import math
import warnings
from typing import Any, Mapping

import numpy as np

from eas_runtime.lightcurve import LightCurve
from eas_runtime.lightcurve.search import (SearchResult, number, period_range, prepare,
                                           settings_from)
from eas_runtime.tls import (BIN_MIN_SAMPLES, BINNINGS, period_grid, run,  # noqa: F401
                             shortest_duration)

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
    "binning": "duration",      # or "none": transitleastsquares on every sample (reference)
    "bin_fraction": 1 / 3,      # of the shortest duration searched: the BLS search's fraction
}
#: The settings of this module, not TLS's keywords.
OWN_SETTINGS = ("period_min", "period_max", "binning", "bin_fraction")
log = logging.getLogger("eas.task.transit_search_tls")


def _tls_keywords(s: Mapping[str, Any], baseline: float) -> dict[str, Any]:
    keywords: dict[str, Any] = {}
    for key in DEFAULT_SETTINGS:
        if key in OWN_SETTINGS or s.get(key) is None:
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
    s = settings_from(search_settings, DEFAULT_SETTINGS, task=TASK)
    if s.get("period_min"):
        number(s, "period_min", positive=True)
    fraction = number(s, "bin_fraction", positive=True)
    data = prepare(lc, lc_duration, target_period=target_period)
    keywords = _tls_keywords(s, data.baseline)
    found = run(data, keywords, binning=s["binning"], fraction=fraction, cpus=cpus, log=log)
    r = found.r
    period = float(r.period)
    depth = (1.0 - float(r.depth)) * 1e6 if np.isfinite(r.depth) else math.nan
    if not found.fitted:
        log.warning("TLS fitted no transit at any period: no signal")
    best = int(np.argmin(np.abs(np.asarray(r.periods) - period)))
    count = int(r.distinct_transit_count) if np.isfinite(r.distinct_transit_count) else 0
    return SearchResult.build(
        data, period=period, epoch=float(r.T0), duration=float(r.duration), depth=depth,
        power=float(found.power[best]), snr=float(r.snr), sde_value=found.sde, count=count,
        periodogram={"period": np.asarray(r.periods, dtype=np.float64), "power": found.power,
                     "sr": found.sr},
        extra={**({} if found.fitted else {"no_signal": "TLS fitted no transit at any period "
                                                        "(every trial depth below its "
                                                        "transit_depth_min)"}),
               "n_periods": int(np.asarray(r.periods).size), "binning": s["binning"],
               "binned_cadence_s": found.width * 86400.0, "n_samples": int(data.time.size),
               "n_points": found.n_points})


def warm_up() -> None:
    """Compile (or load from numba's cache) TLS's kernels and those of the binned path, on a
    small light curve (:mod:`eas_runtime.warmup` runs this when the image is built; TLS's pool
    workers, started by the replica's forkserver, then load the same kernels from the cache)."""
    from transitleastsquares.warmup import ensure_compiled

    with warnings.catch_warnings():      # its tiny search's grid falls back to a solar star
        warnings.simplefilter("ignore")
        ensure_compiled(None, verbose=False)
    rng = np.random.default_rng(0)
    t = np.arange(0.0, 12.0, 25.0 / 86400.0 * 8)
    y = 1.0 + rng.normal(0.0, 3e-4, t.size)
    y[(t % 3.1) < 0.08] -= 2e-3
    for binning in BINNINGS:
        search(LightCurve(t, y, None), search_settings={"period_min": 2.5, "period_max": 3.5,
                                                        "binning": binning}, cpus=1)
