"""The batman transit model with white noise: the science of the ``synthesis_batman`` task.

It lives in the runtime, not in functions/synthesis_batman/, because more than one image needs
it: ``synthesis_psls`` multiplies its transits into a PSLS light curve, and every function image
ships only its own folder of ``functions/`` (functions/synthesis_batman/science.py re-exports it).

Spec names, units and defaults are the prototype's (its ``specs`` dictionary):

===================  ==========================================  ===========================
spec                 meaning                                     default
===================  ==========================================  ===========================
duration             length of the light curve [days]            730
t0                   time of the first inferior conjunction [d]  1
eccentricity         orbital eccentricity                        0
star_radius          stellar radius [Jupiter radii]              solar radius (9.728...)
planet_radius        planet radius [Jupiter radii]               1
orbital_period       [days]                                      365
semi_major_axis      [AU]                                        1
orbital_angle        90 - inclination [degrees]; 0 is edge-on    0
impact_parameter     0-1; when given, replaces orbital_angle     None
noise                white noise per 25 s sample (flux units)    0
mes_assume_noise     noise per 25 s sample assumed for the MES   None (use ``noise``)
sampling_cadence     [s]                                         25
===================  ==========================================  ===========================

Noise levels scale with ``sqrt(25 s / sampling_cadence)``. Quadratic limb darkening with
u = [0.1, 0.3]; longitude of periastron 90 degrees. The raster starts at t = 0.

Output metadata: every setting plus ``inclination`` [degrees],
``integrated_transit_power`` = sum(1 - flux) of the noiseless model, ``pixels_in_transit``
(samples with flux < 1), ``pixels_out_of_transit`` and ``mes`` =
integrated_transit_power / noise per sample / sqrt(pixels_in_transit) (0 with no transit,
infinite with no noise, as in the prototype), and ``noise_seed``.
"""
from __future__ import annotations

import math
from typing import Any, Mapping

import batman
import numpy as np

from eas_runtime.lightcurve import LightCurve
from eas_runtime.lightcurve.model import SECONDS_PER_DAY
from eas_runtime.task_api import ParameterError

SUN_RADIUS_M = 695500e3
JUPITER_RADIUS_M = 71492e3
AU_M = 149597870700.0
REFERENCE_CADENCE_S = 25.0
LIMB_DARKENING = (0.1, 0.3)

#: A complete set of specs: floats, except impact_parameter, orbital_angle and mes_assume_noise,
#: which may be None (unset); typed Any because which keys may be None is the checks' business.
Specs = dict[str, Any]

DEFAULTS: Specs = {
    "duration": 730.0,
    "t0": 1.0,
    "eccentricity": 0.0,
    "star_radius": SUN_RADIUS_M / JUPITER_RADIUS_M,
    "planet_radius": 1.0,
    "orbital_period": 365.0,
    "semi_major_axis": 1.0,
    "orbital_angle": 0.0,
    "impact_parameter": None,
    "noise": 0.0,
    "mes_assume_noise": None,
    "sampling_cadence": REFERENCE_CADENCE_S,
}
#: Accepted for compatibility with the prototype's job files, and ignored.
IGNORED_SPECS = frozenset({"threads"})


def _settings(specs: Mapping[str, Any]) -> Specs:
    unknown = sorted(set(specs) - set(DEFAULTS) - IGNORED_SPECS)
    if unknown:
        raise ParameterError(f"unknown synthesis_batman spec(s) {unknown}; "
                         f"allowed: {sorted(DEFAULTS)}")
    settings = dict(DEFAULTS)
    for key, value in specs.items():
        if key in IGNORED_SPECS or value is None:
            continue
        try:
            number = float(value)
        except (TypeError, ValueError):
            raise ParameterError(f"spec {key} = {value!r} is not a number") from None
        if not math.isfinite(number):
            raise ParameterError(f"spec {key} = {value!r} is not finite")
        settings[key] = number
    if specs.get("impact_parameter") is not None:
        settings["orbital_angle"] = None
    for key in ("duration", "star_radius", "orbital_period", "semi_major_axis",
                "sampling_cadence"):
        if not settings[key] > 0:
            raise ParameterError(f"spec {key} must be positive, got {settings[key]!r}")
    for key in ("noise", "planet_radius"):
        if settings[key] < 0:
            raise ParameterError(f"spec {key} must be >= 0, got {settings[key]!r}")
    if not 0 <= settings["eccentricity"] < 1:
        raise ParameterError(f"spec eccentricity must be in [0, 1), got {settings['eccentricity']!r}")
    return settings


def _inclination_deg(s: Mapping[str, Any]) -> float:
    if s["impact_parameter"] is None:
        return 90.0 - s["orbital_angle"]
    a_jupiter_radii = s["semi_major_axis"] * AU_M / JUPITER_RADIUS_M
    sine = s["impact_parameter"] * s["star_radius"] / a_jupiter_radii
    if not -1 <= sine <= 1:
        raise ParameterError(f"impact_parameter {s['impact_parameter']} is impossible for a "
                         f"semi-major axis of {s['semi_major_axis']} AU")
    return 90.0 - math.degrees(math.asin(sine))


def transit_model(settings: Mapping[str, Any], time_days: np.ndarray) -> np.ndarray:
    """The noiseless batman flux at ``time_days`` for complete ``settings`` (see module doc)."""
    params = batman.TransitParams()
    params.t0 = settings["t0"]
    params.per = settings["orbital_period"]
    params.rp = settings["planet_radius"] / settings["star_radius"]
    params.a = settings["semi_major_axis"] * AU_M / JUPITER_RADIUS_M / settings["star_radius"]
    params.inc = _inclination_deg(settings)
    params.ecc = settings["eccentricity"]
    params.w = 90.0
    params.u = list(LIMB_DARKENING)
    params.limb_dark = "quadratic"
    model = batman.TransitModel(params, np.ascontiguousarray(time_days, dtype=np.float64))
    return np.asarray(model.light_curve(params), dtype=np.float64)


def synthesize(specs: Mapping[str, Any] | None = None, *, seed: int | None = None) -> LightCurve:
    """Synthesise a light curve; ``specs`` overrides :data:`DEFAULTS` (see module doc).

    ``seed`` seeds the noise (a :class:`numpy.random.Generator`); without it a fresh seed is
    drawn and recorded as ``meta['noise_seed']`` so the curve can be reproduced.
    """
    settings = _settings(specs or {})
    step_days = settings["sampling_cadence"] / SECONDS_PER_DAY
    time = np.arange(0.0, settings["duration"], step_days)
    if settings["planet_radius"] > 0:
        flux = transit_model(settings, time)
    else:  # batman leaves 1e-12 dips for a planet of radius 0: no planet, no dip
        flux = np.ones(time.size)

    scale = math.sqrt(REFERENCE_CADENCE_S / settings["sampling_cadence"])
    noise_per_sample = settings["noise"] * scale
    assumed = settings["mes_assume_noise"]
    mes_noise = assumed * scale if assumed is not None else noise_per_sample

    integrated_transit_power = float(np.sum(1.0 - flux))
    pixels_in_transit = int(np.count_nonzero(flux < 1))
    if pixels_in_transit < 1:
        mes = 0.0
    elif mes_noise <= 0:
        mes = math.inf
    else:
        mes = integrated_transit_power / mes_noise / math.sqrt(pixels_in_transit)

    if seed is None:
        entropy = np.random.SeedSequence().entropy
        assert isinstance(entropy, int)          # a fresh SeedSequence draws one integer
        seed = entropy % (2 ** 63)
    if noise_per_sample > 0:
        flux = flux + np.random.default_rng(seed).normal(0.0, noise_per_sample, flux.size)
        flux_err = np.full(flux.size, noise_per_sample)
    else:
        flux_err = None

    meta = {
        **settings,
        "inclination": _inclination_deg(settings),
        "integrated_transit_power": integrated_transit_power,
        "pixels_in_transit": pixels_in_transit,
        "pixels_out_of_transit": int(flux.size - pixels_in_transit),
        "mes": mes,
        "noise_seed": int(seed),
        "provenance": "synthesis_batman",
    }
    return LightCurve(time, flux, flux_err, None, meta)
