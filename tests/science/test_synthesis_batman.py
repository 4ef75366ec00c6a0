"""synthesis_batman: prototype defaults, transit depth, MES bookkeeping, seeded noise."""
from __future__ import annotations

import json
import math

import numpy as np
import pytest

from eas_runtime.lightcurve import read_lightcurve
from functions.synthesis_batman.science import DEFAULTS, synthesize

HOT = {"duration": 20, "orbital_period": 4.0, "semi_major_axis": 0.05, "planet_radius": 0.5,
       "sampling_cadence": 300}


def test_defaults_are_the_prototypes():
    assert DEFAULTS["duration"] == 730 and DEFAULTS["t0"] == 1 and DEFAULTS["eccentricity"] == 0
    assert DEFAULTS["star_radius"] == pytest.approx(695500e3 / 71492e3)
    assert DEFAULTS["planet_radius"] == 1 and DEFAULTS["orbital_period"] == 365
    assert DEFAULTS["semi_major_axis"] == 1 and DEFAULTS["orbital_angle"] == 0
    assert DEFAULTS["impact_parameter"] is None and DEFAULTS["noise"] == 0
    assert DEFAULTS["mes_assume_noise"] is None and DEFAULTS["sampling_cadence"] == 25


def test_raster_and_metadata_hold_every_setting():
    lc = synthesize({"duration": 2, "sampling_cadence": 60})
    assert len(lc) == 2880 and lc.time[0] == 0.0 and lc.is_fixed_step()
    for key, value in DEFAULTS.items():
        expected = {"duration": 2.0, "sampling_cadence": 60.0}.get(key, value)
        assert lc.meta[key] == expected, key
    assert lc.meta["inclination"] == 90.0 and lc.flux_err is None


def test_central_depth_matches_limb_darkened_disc():
    lc = synthesize(HOT)
    k = 0.5 / DEFAULTS["star_radius"]
    # small-planet central depth, quadratic law u = (0.1, 0.3): k^2 / (1 - u1/3 - u2/6);
    # tolerance 2 % (finite planet size and 300 s sampling of the bottom)
    assert 1 - lc.flux.min() == pytest.approx(k ** 2 / (1 - 0.1 / 3 - 0.3 / 6), rel=0.02)
    # transits at t0 + n P: 1, 5, 9, 13, 17 d
    in_transit = lc.time[lc.flux < 1]
    assert np.allclose(np.unique(np.rint((in_transit - 1.0) / 4.0)), np.arange(5))


def test_mes_bookkeeping_follows_the_prototype():
    noiseless = synthesize(HOT)
    flux = noiseless.flux
    assert noiseless.meta["integrated_transit_power"] == pytest.approx(np.sum(1 - flux))
    assert noiseless.meta["pixels_in_transit"] == np.count_nonzero(flux < 1)
    assert noiseless.meta["pixels_out_of_transit"] == len(flux) - np.count_nonzero(flux < 1)
    assert math.isinf(noiseless.meta["mes"])  # no noise, nothing assumed

    assumed = synthesize({**HOT, "mes_assume_noise": 3.15e-4})
    per_sample = 3.15e-4 * math.sqrt(25 / 300)
    expected = np.sum(1 - flux) / per_sample / math.sqrt(np.count_nonzero(flux < 1))
    assert assumed.meta["mes"] == pytest.approx(expected, rel=1e-12)
    assert np.array_equal(assumed.flux, flux)  # assumed noise is not added

    no_transit = synthesize({**HOT, "planet_radius": 0})
    assert no_transit.meta["mes"] == 0 and no_transit.meta["pixels_in_transit"] == 0


def test_noise_scales_with_cadence_and_is_seeded():
    a = synthesize({**HOT, "noise": 1e-3}, seed=42)
    b = synthesize({**HOT, "noise": 1e-3}, seed=42)
    c = synthesize({**HOT, "noise": 1e-3}, seed=43)
    assert np.array_equal(a.flux, b.flux) and not np.array_equal(a.flux, c.flux)
    assert a.meta["noise_seed"] == 42
    residual = a.flux - synthesize(HOT).flux
    # 5,760 samples: the sample std is within 3 % of sigma = 1e-3 * sqrt(25/300)
    assert residual.std() == pytest.approx(1e-3 * math.sqrt(25 / 300), rel=0.03)
    assert np.allclose(a.flux_err, 1e-3 * math.sqrt(25 / 300))
    unseeded = synthesize({**HOT, "noise": 1e-3})
    again = synthesize({**HOT, "noise": 1e-3}, seed=unseeded.meta["noise_seed"])
    assert np.array_equal(unseeded.flux, again.flux)


def test_impact_parameter_replaces_orbital_angle():
    lc = synthesize({**HOT, "impact_parameter": 0.5})
    a_over_r = 0.05 * 149597870700 / 71492e3 / DEFAULTS["star_radius"]
    assert lc.meta["orbital_angle"] is None and lc.meta["impact_parameter"] == 0.5
    # b = a cos(i) / R*  (tolerance 1e-12)
    assert a_over_r * math.cos(math.radians(lc.meta["inclination"])) == pytest.approx(0.5)
    assert synthesize(HOT).flux.min() < lc.flux.min() < 1  # shallower and shorter, not gone


def test_grazing_angle_misses_the_star():
    assert synthesize({**HOT, "orbital_angle": 20}).meta["pixels_in_transit"] == 0


@pytest.mark.parametrize("specs, message", [
    ({"colour": "blue"}, "unknown synthesis_batman spec"),
    ({"duration": "long"}, "not a number"),
    ({"duration": -1}, "must be positive"),
    ({"impact_parameter": 1e6}, "impossible"),
])
def test_bad_specs_are_rejected(specs, message):
    with pytest.raises(ValueError, match=message):
        synthesize({**HOT, **specs})


def test_samples_were_made_by_this_code(functions_dir):
    """The verify and BLS samples are reproducible from their README specs and seeds."""
    for folder, specs, seed in [
        ("verify/sample/batman_fixed_step.fits",
         {"duration": 10, "sampling_cadence": 600, "orbital_period": 3.0,
          "semi_major_axis": 0.04, "planet_radius": 0.5, "noise": 0.000315}, 7),
        ("transit_search_bls_reference/sample/batman_p3.2d.fits",
         {"duration": 40, "sampling_cadence": 1800, "orbital_period": 3.2,
          "semi_major_axis": 0.042, "planet_radius": 0.2, "noise": 0.000315, "t0": 1.7}, 11),
    ]:
        stored = read_lightcurve(functions_dir / folder)
        fresh = synthesize(specs, seed=seed)
        # tolerance 1e-12: identical algorithm and seed, only platform floating-point noise
        assert np.allclose(stored.flux, fresh.flux, rtol=0, atol=1e-12)
        assert (functions_dir / folder).stat().st_size < 300_000


def test_specs_sample_is_valid(functions_dir):
    specs = json.loads((functions_dir / "synthesis_batman/sample/specs.json").read_text())
    lc = synthesize(specs)
    assert len(lc) == 240 * 96 and lc.meta["pixels_in_transit"] > 0
