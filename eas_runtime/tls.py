"""Transit Least Squares (Hippke & Heller 2019, the ``transitleastsquares`` package) on a
prepared light curve, binned for speed: what the ``transit_search_tls`` function and the
vetting's TLS confirmation of each candidate share. ``functions/transit_search_tls/science.py``
documents the binning and why the spectrum is put back on the unbinned chi2 scale.
"""
from __future__ import annotations

import contextlib
import io
import logging
import math
import warnings
from dataclasses import dataclass
from typing import Any, Mapping

import numpy as np

from eas_runtime.bls.prebin import prebin
from eas_runtime.lightcurve.search import SearchInput
from eas_runtime.task_api import ParameterError

BINNINGS = ("duration", "none")
#: ``binning: "duration"`` bins only light curves of at least this many good samples: below it
#: TLS on every sample takes about a second, binning gains nothing, and on real TESS sectors
#: (18,000 samples at 2 min) the binned SDE of hot Jupiters came out 20-40 % below TLS's own
#: (WASP-100 b 12.9 against 20.5), beyond the 5 % the binning is meant to keep.
BIN_MIN_SAMPLES = 25_000


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


def binned(data: SearchInput, keywords: Mapping[str, Any], periods: np.ndarray, *,
           binning: str = "duration", fraction: float = 1 / 3):
    """(time, flux, flux_err, bin width [d], chi2 offset) TLS runs on; width 0 when not
    binned. The offset is the within-bin scatter ``sum w (y - y_bin)**2``: the unbinned chi2
    of a model constant within each bin is the binned chi2 plus it (TLS's own pre-binning,
    ``transitleastsquares.binning``, adds it for the same reason)."""
    if binning not in BINNINGS:
        raise ParameterError(f"search setting 'binning' must be one of {list(BINNINGS)}, "
                             f"got {binning!r}")
    if not (isinstance(fraction, (int, float)) and 0 < fraction <= 1):
        raise ParameterError(f"search setting 'bin_fraction' must be at most 1 (a fraction of "
                             f"the shortest duration) and positive, got {fraction!r}")
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
def period_binning(fraction: float | None):
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




@dataclass
class TLSRun:
    """TLS's result object ``r`` and what the binning changes: the SDE ``power`` spectrum and
    signal residue ``sr`` on the unbinned chi2 scale, ``sde``, the bin ``width`` [d] (0: not
    binned), ``n_points`` searched and whether TLS ``fitted`` a transit at all."""
    r: Any
    power: np.ndarray
    sr: np.ndarray
    sde: float
    width: float
    n_points: int
    fitted: bool


def run(data: SearchInput, keywords: Mapping[str, Any], *, binning: str = "duration",
        fraction: float = 1 / 3, cpus: int = 1,
        log: logging.Logger | None = None) -> TLSRun:
    """TLS over ``data`` with its ``keywords`` (``period_min``, ``period_max``, ``R_star``...)
    on ``cpus`` threads, binned as ``binning`` and ``fraction`` say. TLS's printed chatter and
    warnings go to ``log``. ParameterError when the keywords leave no trial period."""
    from transitleastsquares import transitleastsquares

    log = log or logging.getLogger("eas.tls")
    periods = period_grid(data.baseline, keywords)      # an empty grid is the settings' fault
    time, flux, flux_err, width, offset = binned(data, keywords, periods, binning=binning,
                                                 fraction=fraction)
    model = transitleastsquares(time, flux, flux_err)
    chatter = io.StringIO()
    with contextlib.redirect_stdout(chatter), warnings.catch_warnings(record=True) as caught, \
            period_binning(fraction if width > 0 else None):
        warnings.simplefilter("always")
        r = model.power(use_threads=max(1, int(cpus)), show_progress_bar=False, **keywords)
    for line in chatter.getvalue().splitlines():
        if line.strip():
            log.info("TLS: %s", line.strip())
    for warning in caught:
        log.warning("TLS: %s", warning.message)
    power = np.asarray(r.power, dtype=np.float64)
    sde_value, sr = float(r.SDE), np.asarray(r.SR, dtype=np.float64)
    fitted = math.isfinite(float(r.period))
    if not fitted:
        # TLS fitted no transit at any period (every depth below transit_depth_min, or a flat
        # chi2: a noiseless curve without a dip): its SR is a scalar 0 and its period NaN. The
        # periodogram keeps its periods with zero power: no signal, not a failed search.
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
    return TLSRun(r=r, power=power, sr=sr, sde=sde_value, width=width, n_points=int(time.size),
                  fitted=fitted)
