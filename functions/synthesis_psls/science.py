"""The ``synthesis_psls`` task: a PLATO light curve of a solar-like star from PSLS (the PLATO
Solar-like Light-curve Simulator, Samadi et al. 2019, package ``psls``), with a transit.

Specs (the prototype's names, units and defaults), all optional:

=========================  =================================================  ================
spec                       meaning                                            default
=========================  =================================================  ================
mode                       star: ``main_sequence`` or ``red_giant``           main_sequence
duration                   length of the light curve [days]                   730
t0                         time of the first mid-transit [days]               1
enable_transits            inject a transit                                   true
star_radius                stellar radius [Jupiter radii]                     see below
planet_radius              [Jupiter radii]                                    1
orbital_period             [days]                                             365
semi_major_axis            [AU]                                               1
orbital_angle              90 - inclination [degrees]                         0
impact_parameter           0-1; when given, replaces orbital_angle            None
nsr                        noise-to-signal ratio of one camera [ppm hr^0.5]   73
sampling_cadence           [s], a multiple of 25 (PSLS's rule)                25
mask_updates               systematics table with mask updates               false
enable_systematics         add PSLS's instrumental systematics                false
enable_random_noise        add random noise                                   true
number_camera_groups       1-4                                                4
number_cameras_per_group   1-6                                                6
master_seed                seed of every random number                        drawn, recorded
=========================  =================================================  ================

The star is PSLS's "universal pattern" model (no stellar model files needed): main sequence
Teff 5750 K, 1 M_sun, V = 10, granulation, oscillations and activity (40 ppm, 0.2 d), as the
prototype's main-sequence template; red giant Teff 5400 K, V = 12.5, the prototype's template's
numax 181.77 uHz and large separation 13.709 uHz (1.71 M_sun, 5.49 R_sun). Its radius is
``star_radius`` (default: the Sun's for the main sequence, 5.49 R_sun for the red giant): the
oscillation frequencies are scaled to it, so the star PSLS simulates is the one transited.

Random noise: ``nsr`` per camera, averaged over the cameras (PSLS's ``User`` noise). The
prototype selected PSLS's magnitude-based noise, which ignores ``nsr``. Systematics need
PSLS's table (``PLATO_systematics_BOL_V2.npy``, or ``..._FixedMask_V2.npy`` without mask
updates), which the ``psls`` package does not ship: give it as the task's input
``systematics``; noise then comes from the table (PSLS's ``PLATO_SIMU``).

The transit is the batman model of ``synthesis_batman`` (quadratic limb darkening 0.1, 0.3)
multiplied into PSLS's light curve: PSLS's own transit is always central and its
``OrbitalAngle`` is an orbital phase, so the prototype's ``orbital_angle`` moved its transits
(to t0 + P/4: the dips of ``demo_superearth`` are at 13.5 + 50 k days) instead of tilting the
orbit. Flux = (1 + 1e-6 * PSLS's ppm) * batman flux; time [days] starts at 0.

Output metadata: the specs, ``integrated_transit_power``, ``pixels_in_transit``,
``pixels_out_of_transit`` and ``mes`` of the noiseless batman model with noise
``0.000315 * nsr / 73`` per 25 s (the prototype's rule), ``star_mass``, ``numax``,
``delta_nu`` and ``transit_model``.
"""
from __future__ import annotations

import math
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any, Mapping

import numpy as np
import yaml

from eas_runtime.batman_synthesis import JUPITER_RADIUS_M, SUN_RADIUS_M
from eas_runtime.batman_synthesis import synthesize as batman_synthesize
from eas_runtime.lightcurve import LightCurve
from eas_runtime.lightcurve.model import SECONDS_PER_DAY
from eas_runtime.task_api import ParameterError

PLATO_NOISE_PER_25S = 0.000315   # the prototype's constants.plato_noise
NOMINAL_NSR = 73.0
NUMAX_SUN = 3104.0               # PSLS's solar reference values (sls.py)
DELTA_NU_SUN = 135.0
TEFF_SUN = 5777.0
STARS = {
    "main_sequence": {"teff": 5750.0, "mass": 1.0, "radius": 1.0, "mag": 10.0, "dpi": -1.0,
                      "q": 0.0, "activity": (40.0, 0.2)},
    "red_giant": {"teff": 5400.0, "numax": 181.77120898, "delta_nu": 13.70885191,
                  "mag": 12.5, "dpi": 80.30739925, "q": 0.15611347, "activity": None},
}
MODES = tuple(STARS)
DEFAULTS: dict[str, Any] = {
    "mode": "main_sequence", "duration": 730.0, "t0": 1.0, "enable_transits": True,
    "star_radius": None, "planet_radius": 1.0, "orbital_period": 365.0, "semi_major_axis": 1.0,
    "orbital_angle": 0.0, "impact_parameter": None, "nsr": NOMINAL_NSR,
    "sampling_cadence": 25.0, "mask_updates": False, "enable_systematics": False,
    "enable_random_noise": True, "number_camera_groups": 4, "number_cameras_per_group": 6,
    "master_seed": None,
}
BOOLEANS = ("enable_transits", "mask_updates", "enable_systematics", "enable_random_noise")
#: numax limits of PSLS's granulation model [uHz]
NUMAX_RANGE = (2.0, 3500.0)


def _red_giant_mass_radius() -> tuple[float, float]:
    star = STARS["red_giant"]
    t = star["teff"] / TEFF_SUN
    mass = (star["numax"] / NUMAX_SUN) ** 3 * (star["delta_nu"] / DELTA_NU_SUN) ** -4 * t ** 1.5
    radius = (star["numax"] / NUMAX_SUN) * (star["delta_nu"] / DELTA_NU_SUN) ** -2 * t ** 0.5
    return mass, radius


def _flag(key: str, value: Any) -> bool:
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    if isinstance(value, (int, float)) and value in (0, 1):
        return bool(value)
    raise ParameterError(f"spec {key!r} must be true or false (or 1 or 0), got {value!r}")


def settings(specs: Mapping[str, Any] | None) -> dict[str, Any]:
    """Complete, checked settings; :class:`ParameterError` names a bad spec."""
    specs = dict(specs or {})
    unknown = sorted(set(specs) - set(DEFAULTS))
    if unknown:
        raise ParameterError(f"unknown synthesis_psls spec(s) {unknown}; allowed: {sorted(DEFAULTS)}")
    s = {**DEFAULTS, **{k: v for k, v in specs.items() if k in DEFAULTS and v is not None}}
    if s["mode"] not in MODES:
        raise ParameterError(f"spec 'mode' must be one of {list(MODES)}, got {s['mode']!r}")
    for key in BOOLEANS:
        s[key] = _flag(key, s[key])
    for key in ("duration", "t0", "planet_radius", "orbital_period", "semi_major_axis",
                "orbital_angle", "nsr", "sampling_cadence", "star_radius", "impact_parameter"):
        if s[key] is None:
            continue
        try:
            s[key] = float(s[key])
        except (TypeError, ValueError):
            raise ParameterError(f"spec {key!r} must be a number, got {s[key]!r}") from None
        if not math.isfinite(s[key]):
            raise ParameterError(f"spec {key!r} must be finite, got {s[key]!r}")
    for key in ("duration", "orbital_period", "semi_major_axis", "sampling_cadence"):
        if not s[key] > 0:
            raise ParameterError(f"spec {key!r} must be positive, got {s[key]!r}")
    if s["nsr"] < 0 or s["planet_radius"] < 0:
        raise ParameterError(f"specs 'nsr' and 'planet_radius' must be >= 0, got "
                             f"{s['nsr']!r} and {s['planet_radius']!r}")
    cadence = s["sampling_cadence"]
    if abs(cadence / 25 - round(cadence / 25)) > 1e-9:
        raise ParameterError(f"spec 'sampling_cadence' must be a multiple of 25 s (PSLS), "
                             f"got {cadence!r}")
    for key, top in (("number_camera_groups", 4), ("number_cameras_per_group", 6)):
        value = s[key]
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= top:
            raise ParameterError(f"spec {key!r} must be an integer from 1 to {top}, got {s[key]!r}")
        s[key] = value
    seed = s["master_seed"]
    if seed is None:
        seed = int(np.random.SeedSequence().entropy % (2 ** 31))
    try:
        seed = int(seed)
    except (TypeError, ValueError, OverflowError):
        raise ParameterError(f"spec 'master_seed' must be an integer, got {s['master_seed']!r}") from None
    s["master_seed"] = seed % (2 ** 31)
    if s["star_radius"] is None:
        solar = STARS[s["mode"]].get("radius") or _red_giant_mass_radius()[1]
        s["star_radius"] = solar * SUN_RADIUS_M / JUPITER_RADIUS_M
    if not s["star_radius"] > 0:
        raise ParameterError(f"spec 'star_radius' must be positive, got {s['star_radius']!r}")
    return s


def star_model(s: Mapping[str, Any]) -> dict[str, float]:
    """Teff, mass, numax and large separation of the star of radius ``star_radius``."""
    star = STARS[s["mode"]]
    mass = star.get("mass") or _red_giant_mass_radius()[0]
    radius_sun = s["star_radius"] * JUPITER_RADIUS_M / SUN_RADIUS_M
    t = star["teff"] / TEFF_SUN
    numax = NUMAX_SUN * mass / radius_sun ** 2 / math.sqrt(t)
    delta_nu = DELTA_NU_SUN * math.sqrt(mass / radius_sun ** 3)
    if not NUMAX_RANGE[0] <= numax <= NUMAX_RANGE[1]:
        low = math.sqrt(NUMAX_SUN * mass / math.sqrt(t) / NUMAX_RANGE[1])
        high = math.sqrt(NUMAX_SUN * mass / math.sqrt(t) / NUMAX_RANGE[0])
        raise ParameterError(
            f"spec 'star_radius' = {s['star_radius']:g} Jupiter radii ({radius_sun:.3g} R_sun) "
            f"is outside what PSLS can simulate for mode {s['mode']!r}: "
            f"{low:.3g} to {high:.3g} R_sun")
    return {"teff": star["teff"], "mass": mass, "numax": numax, "delta_nu": delta_nu}


def psls_config(s: Mapping[str, Any], star: Mapping[str, float], n_samples: int,
                systematics: Path | None) -> dict[str, Any]:
    """The PSLS 2.0 configuration (YAML document as a dict)."""
    mode = STARS[s["mode"]]
    cadence = s["sampling_cadence"]
    activity = mode["activity"]
    return {
        "Observation": {"QuarterDuration": [(n_samples + 2) * cadence / SECONDS_PER_DAY],
                        "MasterSeed": int(s["master_seed"]), "Gaps": {"Enable": 0}},
        "Instrument": {
            "Sampling": float(cadence), "IntegrationTime": float(cadence) * 22 / 25,
            "GroupID": list(range(1, s["number_camera_groups"] + 1)),
            "NCamera": int(s["number_cameras_per_group"]), "TimeShift": 6.25,
            "RandomNoise": {"Enable": int(s["enable_random_noise"]),
                            "Type": "PLATO_SIMU" if s["enable_systematics"] else "User",
                            "NSR": float(s["nsr"])},
            "Systematics": {"Enable": int(s["enable_systematics"]), "Seed": 0, "Version": 2,
                            "DriftLevel": "low", "Table": str(systematics or "none")},
        },
        "Star": {"Mag": mode["mag"], "ID": 12069449, "ModelDir": ".", "ModelType": "UP",
                 "ModelName": "up", "ES": "ms" if s["mode"] == "main_sequence" else "rg",
                 "Teff": star["teff"], "Logg": 4.4, "SurfaceRotationPeriod": 0.0,
                 "CoreRotationFreq": 0.0, "Inclination": 0.0},
        "Oscillations": {"Enable": 1, "Seed": 0, "numax": star["numax"],
                         "delta_nu": star["delta_nu"], "DPI": mode["dpi"], "q": mode["q"],
                         "SurfaceEffects": 0},
        "Granulation": {"Enable": 1, "Type": 1, "Seed": 0},
        "Activity": {"Enable": int(activity is not None),
                     "Sigma": activity[0] if activity else 0.0,
                     "Tau": activity[1] if activity else 1.0, "Seed": 0,
                     "Spot": {"Enable": 0}, "Flare": {"Enable": 0}},
        "Transit": {"Enable": 0},
        "External": {"Enable": 0},
    }


def run_psls(config: Mapping[str, Any], workdir: Path) -> np.ndarray:
    """Run PSLS in a child process in ``workdir``; its light curve as (time [s], ppm, flag)."""
    path = workdir / "psls.yaml"
    path.write_text(yaml.safe_dump(dict(config), sort_keys=False))
    code = "import sys, psls; sys.argv = ['psls', 'psls.yaml']; psls.main()"
    done = subprocess.run([sys.executable, "-c", code], cwd=workdir, capture_output=True,
                          text=True)
    output = workdir / f"{int(config['Star']['ID']):010d}.dat"
    if done.returncode != 0 or not output.exists():
        tail = "\n".join((done.stdout + done.stderr).strip().splitlines()[-15:])
        raise RuntimeError(f"PSLS failed (exit status {done.returncode}):\n{tail}")
    return np.loadtxt(output, ndmin=2)


def synthesize(specs: Mapping[str, Any] | None = None, *,
               systematics: Path | None = None) -> LightCurve:
    """Synthesise a PSLS light curve; see the module documentation."""
    s = settings(specs)
    if s["enable_systematics"] and systematics is None:
        wanted = ("PLATO_systematics_BOL_V2.npy" if s["mask_updates"]
                  else "PLATO_systematics_BOL_FixedMask_V2.npy")
        raise ParameterError(
            "spec 'enable_systematics' needs PSLS's systematics table, which the psls package "
            f"does not ship: give {wanted} as the task's input 'systematics'")
    star = star_model(s)
    step = s["sampling_cadence"] / SECONDS_PER_DAY
    time = np.arange(0.0, s["duration"], step)
    with tempfile.TemporaryDirectory(prefix="eas-psls-") as tmp:
        table = psls_table = None
        if systematics is not None:
            psls_table = Path(tmp) / Path(systematics).name
            psls_table.write_bytes(Path(systematics).read_bytes())
            table = psls_table.name
        data = run_psls(psls_config(s, star, time.size, table), Path(tmp))
    if data.shape[0] < time.size:
        raise RuntimeError(f"PSLS returned {data.shape[0]} samples, {time.size} were needed")
    flux = 1.0 + 1e-6 * data[: time.size, 1]
    flags = data[: time.size, 2] != 0

    geometry = {k: s[k] for k in ("t0", "star_radius", "planet_radius", "orbital_period",
                                  "semi_major_axis", "orbital_angle", "impact_parameter")}
    noise = PLATO_NOISE_PER_25S * s["nsr"] / NOMINAL_NSR
    model = batman_synthesize({**geometry, "duration": s["duration"],
                               "sampling_cadence": s["sampling_cadence"], "noise": 0.0,
                               "mes_assume_noise": noise,
                               "planet_radius": s["planet_radius"] if s["enable_transits"]
                               else 0.0}, seed=0)
    if s["enable_transits"]:
        flux = flux * model.flux[: time.size]
        signal = {k: model.meta[k] for k in ("integrated_transit_power", "pixels_in_transit",
                                             "pixels_out_of_transit", "mes")}
        signal["inclination"] = model.meta["inclination"]
    else:
        signal = {"integrated_transit_power": 0.0, "pixels_in_transit": 0,
                  "pixels_out_of_transit": int(time.size), "mes": 0.0}
    meta = {**s, **signal, "star_mass": star["mass"], "numax": star["numax"],
            "delta_nu": star["delta_nu"], "transit_model": "batman",
            "provenance": "synthesis_psls"}
    return LightCurve(time, flux, None, flags, meta)
