"""synthesis_psls: reproducible PSLS light curves with a transit where it belongs, the MES
bookkeeping, noise levels and parameter checks."""
from __future__ import annotations

import numpy as np
import pytest

from eas_runtime.lightcurve.search import in_transit, robust_sigma
from eas_runtime.task_api import ParameterError
from functions.synthesis_batman.science import synthesize as batman
from functions.synthesis_psls.science import DEFAULTS, settings, star_model, synthesize

SPECS = {"duration": 12, "sampling_cadence": 900, "planet_radius": 0.5, "orbital_period": 4.0,
         "semi_major_axis": 0.05, "t0": 1.5, "master_seed": 11}


@pytest.fixture(scope="module")
def psls_lc():
    return synthesize(SPECS)


def test_same_seed_same_light_curve_and_the_seed_is_recorded(psls_lc):
    again = synthesize(SPECS)
    assert np.array_equal(psls_lc.flux, again.flux) and psls_lc.meta["master_seed"] == 11
    other = synthesize({**SPECS, "master_seed": 12})
    assert not np.array_equal(psls_lc.flux, other.flux)
    drawn = settings({})["master_seed"]
    assert isinstance(drawn, int) and 0 <= drawn < 2 ** 31


def test_raster_transits_at_t0_and_mes_from_the_noiseless_model(psls_lc):
    lc = psls_lc
    assert len(lc) == 1152 and lc.time[0] == 0 and np.allclose(np.diff(lc.time), 900 / 86400)
    inside = in_transit(lc.time, 4.0, 1.5, 0.1)
    outside = ~in_transit(lc.time, 4.0, 1.5, 0.4)
    depth = np.median(lc.flux[outside]) - np.mean(lc.flux[inside])
    k2 = (0.5 / DEFAULTS_STAR_RADIUS) ** 2
    assert depth == pytest.approx(k2 * 1.1, rel=0.3)          # limb-darkened centre, 30 %
    model = batman({**{k: SPECS[k] for k in ("duration", "sampling_cadence", "planet_radius",
                                             "orbital_period", "semi_major_axis", "t0")},
                    "mes_assume_noise": 0.000315})
    for key in ("integrated_transit_power", "pixels_in_transit", "mes"):
        assert lc.meta[key] == pytest.approx(model.meta[key], rel=1e-12)
    assert lc.meta["nsr"] == 73.0 and lc.meta["number_camera_groups"] == 4
    assert lc.meta["transit_model"] == "batman" and lc.meta["star_mass"] == 1.0


DEFAULTS_STAR_RADIUS = 695500e3 / 71492e3


def test_noise_follows_nsr_and_the_number_of_cameras(psls_lc):
    """High-frequency scatter (point-to-point) is dominated by the random noise: nsr per
    camera [ppm hr^0.5] averaged over 24 cameras; 4 x nsr with 1 camera is ~20 x noisier."""
    def p2p(lc):
        return robust_sigma(np.diff(lc.flux)) / np.sqrt(2)
    base = p2p(psls_lc)
    noisy = synthesize({**SPECS, "nsr": 4 * 73, "number_camera_groups": 1,
                        "number_cameras_per_group": 1, "enable_transits": False})
    ratio = p2p(noisy) / base
    assert 12 < ratio < 25                                    # sqrt(24) * 4 = 19.6 for white noise
    assert noisy.meta["mes"] == 0 and noisy.meta["pixels_in_transit"] == 0
    quiet = synthesize({**SPECS, "enable_random_noise": False})
    assert p2p(quiet) < base                                  # only the star is left


def test_star_radius_scales_the_star_and_red_giant_settings():
    ms = star_model(settings({}))
    assert ms["numax"] == pytest.approx(3104 / np.sqrt(5750 / 5777), rel=1e-9)
    rg = settings({"mode": "red_giant"})
    model = star_model(rg)
    assert rg["star_radius"] == pytest.approx(5.49 * DEFAULTS_STAR_RADIUS, rel=0.01)
    assert model["numax"] == pytest.approx(181.77, rel=1e-3)
    assert model["delta_nu"] == pytest.approx(13.709, rel=1e-3)


@pytest.mark.parametrize("specs, message", [
    ({"mode": "white_dwarf"}, r"'mode' must be one of \['main_sequence', 'red_giant'\]"),
    ({"sampling_cadence": 60}, "multiple of 25 s"),
    ({"number_camera_groups": 5}, "'number_camera_groups' must be an integer from 1 to 4, got 5"),
    ({"enable_transits": "yes"}, "'enable_transits' must be true or false"),
    ({"star_radius": 1.0}, "outside what PSLS can simulate"),
    ({"orbital_perod": 3}, r"unknown synthesis_psls spec\(s\) \['orbital_perod'\]"),
    ({"enable_systematics": True}, "give PLATO_systematics_BOL_FixedMask_V2.npy as the task's input"),
])
def test_bad_specs_name_the_spec(specs, message):
    with pytest.raises(ParameterError, match=message):
        synthesize(specs)
    assert set(DEFAULTS) >= {"mode", "nsr", "mask_updates", "enable_systematics",
                             "enable_random_noise", "number_camera_groups",
                             "number_cameras_per_group", "master_seed"}
