"""The ``planet_search`` task: every transit-like signal of one star's light curve.

Single transit events first, then periodic signals one after another, each masked before the
next search (:mod:`eas_runtime.planets.search`, which documents the method and cites its
sources). The input is a normalised or raw light curve that has been detrended (``detrend``):
a raw one is searched as it is, and its variability will be found as signals.

Settings (``search_settings``) and their defaults:

===================  ==============================================================  =========
setting              meaning                                                         default
===================  ==============================================================  =========
snr_min              S/N (red-noise corrected) a periodic candidate needs            7.1
max_planets          most periodic candidates                                        5
single_snr_min       SES a single-transit candidate needs; null skips singles        10
single_durations     trial durations of single events [d]                            1 h - 17 h
mask_factor          masked window around each transit, in durations                 2
mask_ephemerides     transits to mask first: [{period, epoch, duration}] [d]         []
                     (``period`` null or absent for one event)
period_min           shortest trial period [d]                                       3 stellar
                                                                                     radii orbit
period_max           longest trial period [d]                                        baseline/2
min_transits         transits a periodic candidate needs with data                   2
oversampling         Ofir grid oversampling                                          3
stellar_density      the star's density [solar]; or stellar_mass and stellar_radius  the Sun
===================  ==============================================================  =========

Results: ``n_candidates``, ``n_periodic``, ``n_single``, ``rounds``, ``stopped_because``; the
strongest periodic candidate's ``period``, ``epoch``, ``duration``, ``depth``, ``snr``,
``sde``; ``target_period`` and ``outcome`` (PASS when a candidate's period is within 3 % of
the target, as the other searches judge it). Outputs: ``candidates`` (ECSV table,
:mod:`eas_runtime.planets.table`) and ``periodogram`` (FITS, one ``PERIODOGRAM`` extension per
round: ``PERIODOGRAM``, ``PERIODOGRAM2``...).
"""
from __future__ import annotations

import io
import math
import numbers
from pathlib import Path
from typing import Any, Mapping

import numpy as np

from eas_runtime.bls.grid import (check_grid_settings, check_grid_size, roche_period,
                                  stellar_density)
from eas_runtime.bls.grid import grid_size as ofir_grid_size
from eas_runtime.lightcurve import LightCurve
from eas_runtime.lightcurve.qc import period_outcome
from eas_runtime.lightcurve.search import number, positive_days, prepare, settings_from
from eas_runtime.planets import search as planets
from eas_runtime.task_api import ParameterError

TASK = "planet_search"
DEFAULT_SETTINGS: dict[str, Any] = {
    "snr_min": planets.SNR_MIN,
    "max_planets": planets.MAX_PLANETS,
    "single_snr_min": planets.SINGLE_SNR_MIN,
    "single_durations": list(planets.SINGLE_DURATIONS),
    "mask_factor": planets.MASK_FACTOR,
    "mask_ephemerides": [],
    "period_min": None,
    "period_max": None,
    "min_transits": 2,
    "oversampling": 3.0,
    "stellar_density": None,
    "stellar_mass": None,
    "stellar_radius": None,
}
#: Most periodic candidates one task may look for (each is one more search).
MAX_PLANETS_LIMIT = 20
# The bounds that keep the period grid and its memory finite are the Ofir grid's
# (eas_runtime.bls.grid: check_grid_settings, check_grid_size).


def _ephemerides(value: Any) -> list[dict[str, float | None]]:
    if not isinstance(value, list):
        raise ParameterError(f"search setting 'mask_ephemerides' must be a list of "
                             f"{{period, epoch, duration}} objects, got {value!r}")
    out = []
    for i, item in enumerate(value):
        if not isinstance(item, Mapping):
            raise ParameterError(f"mask_ephemerides[{i}] must be an object with epoch, duration "
                                 f"and period [d], got {item!r}")
        unknown = sorted(set(item) - {"period", "epoch", "duration"})
        if unknown:
            raise ParameterError(f"mask_ephemerides[{i}] has unknown key(s) {unknown}; "
                                 f"allowed: period, epoch, duration")
        epoch = item.get("epoch")
        if not (isinstance(epoch, numbers.Real) and not isinstance(epoch, bool)
                and math.isfinite(epoch)):
            raise ParameterError(f"mask_ephemerides[{i}].epoch must be a number of days, "
                                 f"got {epoch!r}")
        out.append({"epoch": float(epoch),
                    "duration": positive_days(item.get("duration"),
                                              f"mask_ephemerides[{i}].duration"),
                    "period": positive_days(item.get("period"), f"mask_ephemerides[{i}].period")})
        if out[-1]["duration"] is None:
            raise ParameterError(f"mask_ephemerides[{i}] needs a duration [d]")
    return out


def settings(search_settings: Mapping[str, Any] | None) -> dict[str, Any]:
    """Validated settings; ParameterError names the bad one."""
    s = settings_from(search_settings, DEFAULT_SETTINGS, task=TASK)
    if "single_snr_min" in (search_settings or {}) and search_settings["single_snr_min"] is None:
        s["single_snr_min"] = None
    s["snr_min"] = number(s, "snr_min", positive=True)
    s["max_planets"] = number(s, "max_planets", minimum=0, integer=True)
    if s["max_planets"] > MAX_PLANETS_LIMIT:
        raise ParameterError(f"search setting 'max_planets' must be at most "
                             f"{MAX_PLANETS_LIMIT}, got {s['max_planets']!r}")
    if s["single_snr_min"] is not None:
        s["single_snr_min"] = number(s, "single_snr_min", positive=True)
    durations = s["single_durations"]
    if not (isinstance(durations, (list, tuple)) and 0 < len(durations) <= 50):
        raise ParameterError(f"search setting 'single_durations' must be a list of 1 to 50 "
                             f"durations [d], got {durations!r}")
    s["single_durations"] = [positive_days(d, "single_durations") for d in durations]
    s["mask_factor"] = number(s, "mask_factor", positive=True)
    s["mask_ephemerides"] = _ephemerides(s["mask_ephemerides"])
    for key in ("period_min", "period_max"):
        s[key] = number(s, key, positive=True, optional=True)
    s["min_transits"] = number(s, "min_transits", minimum=1, integer=True)
    s["oversampling"] = number(s, "oversampling", positive=True)
    try:
        s["density"] = stellar_density(
            *(number(s, k, positive=True, optional=True)
              for k in ("stellar_density", "stellar_mass", "stellar_radius")))
    except ValueError as exc:
        raise ParameterError(f"search settings: {exc}") from None
    try:
        check_grid_settings(oversampling=s["oversampling"], density=s["density"],
                            period_min=s["period_min"])
    except ValueError as exc:
        raise ParameterError(str(exc)) from None
    return s


def grid_size(baseline: float, s: Mapping[str, Any]) -> int:
    """Trial periods of the first round's Ofir grid (:func:`eas_runtime.bls.grid.ofir_periods`)
    for ``baseline`` [d] and settings ``s``, without making it."""
    p_min = s["period_min"] if s["period_min"] is not None else roche_period(s["density"])
    p_max = s["period_max"] if s["period_max"] is not None else baseline / s["min_transits"]
    return ofir_grid_size(baseline, density=s["density"], oversampling=s["oversampling"],
                          period_min=p_min, period_max=p_max)


def search(lc: LightCurve, *, lc_duration: float | None = None,
           search_settings: Mapping[str, Any] | None = None, cpus: int = 1,
           target_period: float | None = None) -> tuple[planets.PlanetSearch, dict[str, Any]]:
    """Search ``lc`` for every planet; returns the search and the result metadata."""
    s = settings(search_settings)
    data = prepare(lc, lc_duration, target_period=target_period)
    n_periods = grid_size(data.baseline, s)
    try:
        check_grid_size(n_periods)
    except ValueError as exc:
        raise ParameterError(str(exc)) from None
    found = planets.find_planets(
        data.time, data.flux, data.flux_err, snr_min=s["snr_min"], max_planets=s["max_planets"],
        single_snr_min=s["single_snr_min"], single_durations=s["single_durations"],
        mask_factor=s["mask_factor"], mask_ephemerides=s["mask_ephemerides"],
        period_min=s["period_min"], period_max=s["period_max"], density=s["density"],
        min_transits=s["min_transits"], oversampling=s["oversampling"],
        threads=max(1, int(cpus)))
    meta: dict[str, Any] = {
        "n_candidates": len(found.candidates), "n_periodic": len(found.periodic),
        "n_single": len(found.singles), "rounds": found.rounds,
        "stopped_because": found.stopped_because, "n_samples": found.n_samples,
        "n_masked": found.n_masked, "target_period": data.target_period,
        "stellar_density": s["density"]}
    best = max(found.periodic, key=lambda c: c.snr, default=None)
    for key in ("period", "epoch", "duration", "depth", "snr", "sde"):
        meta[key] = getattr(best, key) if best else None
    matches = [period_outcome(data.target_period, c.period) for c in found.periodic]
    meta["outcome"] = ("UNDEFINED" if data.target_period is None
                       else "PASS" if "PASS" in matches else "FAIL")
    meta["detected"] = bool(found.periodic)
    meta.update(data.signal)
    return found, meta


UNITS = {"period": "d", "epoch": "d", "duration": "d", "depth": "ppm", "target_period": "d",
         "stellar_density": "solar"}


def write_periodograms(found: planets.PlanetSearch, path: Path) -> Path:
    """One ``PERIODOGRAM`` extension per round (columns period [d], power, depth [ppm],
    duration [d], epoch [d], snr), written atomically."""
    from astropy.io import fits

    from eas_runtime.lightcurve._common import write_atomically

    hdus: list[Any] = [fits.PrimaryHDU()]
    hdus[0].header["TASKTYPE"] = (TASK, "search")
    hdus[0].header["ROUNDS"] = (found.rounds, "search rounds")
    for i, gram in enumerate(found.periodograms, start=1):
        cols = [fits.Column(name="PERIOD", format="D", unit="d", array=gram["period"]),
                fits.Column(name="POWER", format="D", array=gram["power"]),
                fits.Column(name="DEPTH", format="D", unit="ppm", array=gram["depth"] * 1e6),
                fits.Column(name="DURATION", format="D", unit="d", array=gram["duration"]),
                fits.Column(name="EPOCH", format="D", unit="d", array=gram["transit_time"]),
                fits.Column(name="SNR", format="D", array=gram["depth_snr"])]
        hdus.append(fits.BinTableHDU.from_columns(
            cols, name="PERIODOGRAM" if i == 1 else f"PERIODOGRAM{i}"))
        hdus[-1].header["ROUND"] = i
    if len(hdus) == 1:   # nothing searched (everything masked): an empty periodogram
        hdus.append(fits.BinTableHDU.from_columns(
            [fits.Column(name=n, format="D", array=np.empty(0)) for n in ("PERIOD", "POWER")],
            name="PERIODOGRAM"))
    buffer = io.BytesIO()
    fits.HDUList(hdus).writeto(buffer)
    write_atomically(path, buffer.getvalue())
    return path
