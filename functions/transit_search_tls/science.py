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

import contextlib
import io
import logging
import math
import warnings
from typing import Any, Mapping

import numpy as np

from eas_runtime.bls.prebin import prebin
from eas_runtime.lightcurve import LightCurve
from eas_runtime.lightcurve.search import (SearchInput, SearchResult, number, period_range,
                                           prepare, settings_from)
from eas_runtime.task_api import ParameterError

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
BINNINGS = ("duration", "none")
#: ``binning: "duration"`` bins only light curves of at least this many good samples: below it
#: TLS on every sample takes about a second, binning gains nothing, and on real TESS sectors
#: (18,000 samples at 2 min) the binned SDE of hot Jupiters came out 20-40 % below TLS's own
#: (WASP-100 b 12.9 against 20.5), beyond the 5 % the binning is meant to keep.
BIN_MIN_SAMPLES = 25_000
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


def period_grid(baseline: float, keywords: Mapping[str, Any]) -> np.ndarray:
    """TLS's own trial periods [d] over ``baseline`` [d] with its ``keywords``, as ``power()``
    will make them. ParameterError when there is none (``period_min``/``period_max`` outside
    what the baseline allows): TLS's own ValueError would fail the task as a science error."""
    from transitleastsquares import grid
    from transitleastsquares import tls_constants as c

    def get(key, default):
        return float(keywords.get(key, default))

    try:
        with warnings.catch_warnings():   # TLS's fallback to a solar star warns; power() says it
            warnings.simplefilter("ignore")
            periods = grid.period_grid(
                R_star=get("R_star", c.R_STAR), M_star=get("M_star", c.M_STAR),
                time_span=baseline, period_min=get("period_min", 0.0),
                period_max=get("period_max", math.inf),
                oversampling_factor=get("oversampling_factor", c.OVERSAMPLING_FACTOR),
                n_transits_min=c.N_TRANSITS_MIN)
    except ValueError as exc:
        periods, why = np.empty(0), str(exc)
    else:
        why = ""
    if np.size(periods) == 0:
        raise ParameterError(
            f"TLS has no trial period between period_min {get('period_min', 0.0):g} d and "
            f"period_max {get('period_max', math.inf):g} d for a baseline of {baseline:g} d "
            f"(two transits at least){': ' + why if why else ''}")
    return np.asarray(periods, dtype=np.float64)


def shortest_duration(baseline: float, keywords: Mapping[str, Any],
                      periods: np.ndarray | None = None) -> float:
    """The shortest transit duration [d] TLS searches over ``baseline`` [d] with its
    ``keywords``: ``T14(R_star_min, m_short, P_min, small=True) * P_min`` at the shortest
    period ``P_min`` of TLS's own period grid, as TLS's kernels restrict their durations (the
    duration grid is in fractions of the period; the shortest fraction allowed at ``P`` times
    ``P`` grows as ``P**(1/3)``). ``periods``: that grid, when the caller has it."""
    from transitleastsquares import tls_constants as c
    from transitleastsquares.grid import T14, duration_limit_masses

    def get(key, default):
        return float(keywords.get(key, default))

    if periods is None:
        periods = period_grid(baseline, keywords)
    r_min = get("R_star_min", c.R_STAR_MIN)
    m_short, _ = duration_limit_masses(r_min, get("R_star_max", c.R_STAR_MAX),
                                       get("M_star_min", c.M_STAR_MIN),
                                       get("M_star_max", c.M_STAR_MAX))
    p_min = float(np.min(periods))
    return float(T14(R_s=r_min, M_s=m_short, P=p_min, small=True)) * p_min


def _binned(data: SearchInput, s: Mapping[str, Any], keywords: Mapping[str, Any],
            periods: np.ndarray):
    """(time, flux, flux_err, bin width [d], chi2 offset) TLS runs on; width 0 when not
    binned. The offset is the within-bin scatter ``sum w (y - y_bin)**2``: the unbinned chi2
    of a model constant within each bin is the binned chi2 plus it (TLS's own pre-binning,
    ``transitleastsquares.binning``, adds it for the same reason)."""
    binning = s.get("binning")
    if binning not in BINNINGS:
        raise ParameterError(f"search setting 'binning' must be one of {list(BINNINGS)}, "
                             f"got {binning!r}")
    fraction = number(s, "bin_fraction", positive=True)
    if fraction > 1:
        raise ParameterError(f"search setting 'bin_fraction' must be at most 1 (a fraction of "
                             f"the shortest duration), got {fraction!r}")
    if binning == "none" or data.time.size < BIN_MIN_SAMPLES:
        return data.time, data.flux, data.flux_err, 0.0, 0.0
    width = fraction * shortest_duration(data.baseline, keywords, periods)
    cadence = float(np.median(np.diff(data.time)))
    if not width > cadence:   # the samples are already as coarse as the bins
        return data.time, data.flux, data.flux_err, 0.0, 0.0
    # no uncertainties: equal weights (the robust scatter), as TLS assumes without dy
    err = data.flux_err if data.flux_err is not None else max(data.sigma, 1e-12)
    b = prebin(data.time, data.flux, err, width)
    # sum w (y - y_bin)^2 = sum w (y - 1)^2 - sum W (y_bin - 1)^2; about 1 for less rounding
    w = 1.0 / np.broadcast_to(err, data.flux.shape) ** 2
    offset = float(np.sum(w * (data.flux - 1.0) ** 2) - np.sum(b.weight * (b.y - 1.0) ** 2))
    return b.t, b.y, b.dy, width, max(offset, 0.0)


@contextlib.contextmanager
def _tls_period_binning(fraction: float | None):
    """TLS's own period-dependent pre-binning (``tls_constants.BIN_FRACTION``, where the
    installed transitleastsquares has it) at ``fraction`` of the shortest duration at each
    period while TLS runs on binned points: longer periods, whose shortest duration is longer
    (as ``P**(1/3)``), search bins of 2, 4... points, TLS adding their within-bin scatter to
    chi2. None leaves TLS as it is (the reference). The process runs one search at a time."""
    from transitleastsquares import tls_constants

    if fraction is None or not hasattr(tls_constants, "BIN_FRACTION"):
        yield
        return
    saved = tls_constants.BIN_FRACTION
    tls_constants.BIN_FRACTION = float(fraction)
    try:
        yield
    finally:
        tls_constants.BIN_FRACTION = saved


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
    periods = period_grid(data.baseline, keywords)      # an empty grid is the settings' fault
    time, flux, flux_err, width, offset = _binned(data, s, keywords, periods)
    model = transitleastsquares(time, flux, flux_err)
    chatter = io.StringIO()
    with contextlib.redirect_stdout(chatter), warnings.catch_warnings(record=True) as caught, \
            _tls_period_binning(s["bin_fraction"] if width > 0 else None):
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
    sde_value, sr = float(r.SDE), np.asarray(r.SR, dtype=np.float64)
    fitted = math.isfinite(period)
    if not fitted:
        # TLS fitted no transit at any period (every depth below transit_depth_min, or a flat
        # chi2: a noiseless curve without a dip): its SR is a scalar 0 and its period NaN. The
        # periodogram keeps its periods with zero power: no signal, not a failed search.
        log.warning("TLS fitted no transit at any period: no signal")
        power = np.zeros(np.size(r.periods))
        sr = np.zeros(np.size(r.periods))
        sde_value = 0.0
    elif width > 0 and np.size(r.chi2) > 1 and np.all(np.isfinite(r.chi2)):
        # the spectrum on the unbinned chi2 scale: binned chi2 alone exaggerates the peak's
        # contrast (SR = min chi2 / chi2 with a smaller chi2), by about 10 % in SDE at 2 min
        from transitleastsquares import tls_constants
        from transitleastsquares.stats import spectra
        oversampling = keywords.get("oversampling_factor", tls_constants.OVERSAMPLING_FACTOR)
        spectrum = spectra(np.asarray(r.chi2, dtype=np.float64) + offset, oversampling)
        sr, power = (np.asarray(spectrum[i], dtype=np.float64) for i in (0, 2))
        sde_value = float(spectrum[4])
    best = int(np.argmin(np.abs(np.asarray(r.periods) - period)))
    count = int(r.distinct_transit_count) if np.isfinite(r.distinct_transit_count) else 0
    return SearchResult.build(
        data, period=period, epoch=float(r.T0), duration=float(r.duration), depth=depth,
        power=float(power[best]), snr=float(r.snr), sde_value=sde_value, count=count,
        periodogram={"period": np.asarray(r.periods, dtype=np.float64), "power": power,
                     "sr": sr},
        extra={**({} if fitted else {"no_signal": "TLS fitted no transit at any period (every "
                                                  "trial depth below its transit_depth_min)"}),
               "n_periods": int(np.asarray(r.periods).size), "binning": s["binning"],
               "binned_cadence_s": width * 86400.0, "n_samples": int(data.time.size),
               "n_points": int(time.size)})


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
