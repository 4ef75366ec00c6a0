"""transit_search_bls_reference: injection-recovery, the prototype's demo, QC outcome."""
from __future__ import annotations

import json
import math

import numpy as np
import pytest

from eas_runtime.bls.grid import ofir_periods
from eas_runtime.lightcurve import LightCurve, period_outcome, read_lightcurve, read_metadata_cfg
from eas_runtime.task_api import ParameterError
from functions.synthesis_batman.science import synthesize
from functions.transit_search_bls_reference.science import (
    DEFAULT_DURATIONS_D, UNITS, SearchResult, search)


# ---------------------------------------------------------------- QC rule
@pytest.mark.parametrize("target, found, outcome", [
    (50.0, 50.0, "PASS"), (50.0, 49.0, "PASS"), (50.0, 51.5, "PASS"),
    (50.0, 25.0, "FAIL"), (50.0, 100.0, "FAIL"),
    (0.97, 1.0, "FAIL"), (1.03, 1.0, "FAIL"),  # the bounds are exclusive
    (None, 50.0, "UNDEFINED"), (50.0, None, "UNDEFINED"), (50.0, math.nan, "UNDEFINED"),
    ("abc", 50.0, "UNDEFINED"), (0, 50.0, "UNDEFINED"),
])
def test_period_outcome(target, found, outcome):
    assert period_outcome(target, found) == outcome


# ---------------------------------------------------------------- injection-recovery
@pytest.mark.parametrize("period_d", [2.3, 5.1, 11.0])
def test_injected_transit_is_recovered(period_d):
    specs = {"duration": 60, "sampling_cadence": 1800, "orbital_period": period_d,
             "semi_major_axis": (period_d / 365.25) ** (2 / 3), "planet_radius": 0.3,
             "noise": 1e-3, "t0": 1.3}
    lc = synthesize(specs, seed=int(period_d * 10))
    result = search(lc)
    # moderate noise: 118 ppm per 30-min sample against a ~950 ppm transit (MES 58-91)
    assert abs(result.period / period_d - 1) < 0.01  # recovered within 1 %
    assert result.outcome == "PASS" and result.target_period == period_d
    # epoch within one duration of a true transit time, modulo the period
    phase = (result.epoch - 1.3 + period_d / 2) % period_d - period_d / 2
    assert abs(phase) < result.duration
    # depth within 25 % of the limb-darkened central depth (a box under-fits the ingress)
    k2 = (0.3 / (695500e3 / 71492e3)) ** 2
    assert result.depth == pytest.approx(k2 / (1 - 0.1 / 3 - 0.3 / 6) * 1e6, rel=0.25)
    assert result.transit_count == pytest.approx(60 / period_d, abs=1)
    assert result.sde > 10 and result.snr > 20


def test_bls_sample_and_result_record(functions_dir):
    lc = read_lightcurve(functions_dir / "transit_search_bls_reference/sample/batman_p3.2d.fits")
    result = search(lc)
    assert isinstance(result, SearchResult) and result.outcome == "PASS"
    assert abs(result.period / 3.2 - 1) < 1e-3
    record = result.to_dict()
    assert "periodogram_period" not in record and "periodogram_power" not in record
    json.dumps(record)
    assert set(record) <= set(UNITS) | {"transit_count"} and UNITS["depth"] == "ppm"
    assert SearchResult.UNITS["period"] == "d"
    # the periodogram: uniform in frequency, 0.5 d to half the baseline, frequency factor 2
    periods = result.periodogram_period
    assert periods.min() == pytest.approx(0.5, rel=1e-6)
    assert periods.max() == pytest.approx(lc.duration / 2, rel=1e-2)
    df = np.diff(1 / periods[::-1])
    assert np.allclose(np.abs(df), 2 * 0.05 / lc.duration ** 2, rtol=1e-6)
    assert len(DEFAULT_DURATIONS_D) == 10 and DEFAULT_DURATIONS_D[0] == 0.05


def test_noise_only_light_curve_does_not_pass():
    rng = np.random.default_rng(2024)
    time = np.arange(0, 60, 1800 / 86400)
    lc = LightCurve(time, 1 + rng.normal(0, 1e-3, time.size), meta={"orbital_period": 7.3})
    result = search(lc)
    assert result.target_period == 7.3 and result.outcome != "PASS"
    assert result.sde < 10  # no significant peak


def test_without_a_target_the_outcome_is_undefined():
    lc = synthesize({"duration": 30, "sampling_cadence": 1800, "orbital_period": 3.0,
                     "semi_major_axis": 0.04, "planet_radius": 0.3})
    lc = LightCurve(lc.time, lc.flux, meta={})
    result = search(lc, search_settings={"period_min": 2.5, "period_max": 3.5})
    assert result.outcome == "UNDEFINED" and abs(result.period / 3.0 - 1) < 0.01


def test_lc_duration_truncates_and_settings_are_checked():
    lc = synthesize({"duration": 40, "sampling_cadence": 1800, "orbital_period": 3.0,
                     "semi_major_axis": 0.04, "planet_radius": 0.3})
    result = search(lc, lc_duration=20)
    assert result.periodogram_period.max() == pytest.approx(10, rel=0.01)
    with pytest.raises(ValueError, match="unknown search setting"):
        search(lc, search_settings={"periodmin": 1})
    with pytest.raises(ValueError, match="shorter than period_min"):
        search(lc, search_settings={"period_min": 0.1})
    with pytest.raises(ValueError, match="empty period range"):
        search(lc, search_settings={"period_min": 30})


def test_flagged_samples_are_ignored():
    lc = synthesize({"duration": 30, "sampling_cadence": 1800, "orbital_period": 3.0,
                     "semi_major_axis": 0.04, "planet_radius": 0.3, "noise": 1e-3}, seed=3)
    flux = lc.flux.copy()
    flags = np.zeros(len(lc), bool)
    flags[100:110] = True
    flux[100:110] = 0.5  # deep fake dip, flagged bad
    flux[200] = np.nan
    dirty = LightCurve(lc.time, flux, lc.flux_err, flags, lc.meta)
    result = search(dirty)
    assert result.outcome == "PASS" and result.depth < 5000


# ---------------------------------------------------------------- the prototype's demo
def _demo(demo_superearth):
    meta = read_metadata_cfg(f"{demo_superearth}.metadata.cfg")
    return read_lightcurve(demo_superearth, metadata=meta)


def test_demo_superearth_is_recovered(demo_superearth):
    """P = 50 d in the prototype's demo; the period grid is limited to 20-100 d to keep the
    test short (the full prototype grid is the slow test below)."""
    result = search(_demo(demo_superearth), lc_duration=240,
                    search_settings={"period_min": 20, "period_max": 100})
    assert result.outcome == "PASS" and result.target_period == 50.0
    assert abs(result.period / 50.0 - 1) < 1e-3  # tolerance 0.1 %
    assert result.transit_count == 5


@pytest.mark.slow
def test_demo_superearth_with_the_prototype_settings(demo_superearth):
    """The prototype's test_bls_reference.cfg grid (frequency step 2 * 0.05 / 240^2, ten
    durations 0.05-0.2 d) over periods of 10-120 d: 53,000 periods. The whole 0.5-120 d grid
    (1.15 million periods, about 4 minutes on one core) is timed in benchmarks/science.py."""
    result = search(_demo(demo_superearth), lc_duration=240,
                    search_settings={"period_min": 10})
    assert result.outcome == "PASS" and abs(result.period / 50.0 - 1) < 1e-3
    assert result.periodogram_period.max() == pytest.approx(120, rel=1e-2)


# ---------------------------------------------------------------- the fast methods
@pytest.mark.parametrize("method", ["fast", "ffa"])
def test_fast_methods_find_the_sample_period(functions_dir, method):
    """The sample (40 d at 30 min, P = 3.2 d, MES 95) with eas_runtime.bls on the Ofir grid:
    the same period as astropy's search within 0.1 %, the same result fields and columns."""
    lc = read_lightcurve(functions_dir / "transit_search_bls_reference/sample/batman_p3.2d.fits")
    reference = search(lc)
    result = search(lc, search_settings={"method": method}, cpus=2)
    assert result.outcome == "PASS" and abs(result.period / 3.2 - 1) < 1e-3
    assert abs(result.period / reference.period - 1) < 1e-3
    assert result.snr == pytest.approx(reference.snr, rel=0.15)
    assert result.depth == pytest.approx(reference.depth, rel=0.15)
    record = result.to_dict()
    assert set(record) - {"n_periods"} == set(reference.to_dict())
    assert set(result.periodogram) == set(reference.periodogram)
    # Ofir's grid from 0.5 d to half the baseline, far fewer periods than astropy's; the FFA
    # searches each at its nearest row, within half a step of it
    periods = result.periodogram_period
    baseline = float(lc.time[-1] - lc.time[0])
    ofir = ofir_periods(baseline, period_min=0.5, period_max=baseline / 2)
    assert periods.size == ofir.size
    step = np.gradient(ofir)
    assert np.all(np.abs(periods - ofir) <= (0 if method == "fast" else 0.5) * step)
    assert record["n_periods"] == periods.size < reference.periodogram_period.size / 3


def test_fast_method_takes_the_star():
    lc = synthesize({"duration": 30, "sampling_cadence": 1800, "orbital_period": 1.7,
                     "semi_major_axis": 0.02, "star_radius": 4.9, "planet_radius": 0.2,
                     "noise": 1e-3}, seed=5)
    result = search(lc, search_settings={"method": "fast", "stellar_mass": 0.5,
                                         "stellar_radius": 0.5, "period_min": 0.4})
    assert result.outcome == "PASS" and abs(result.period / 1.7 - 1) < 1e-3


@pytest.mark.parametrize("method", ["astropy", "fast", "ffa"])
def test_a_noiseless_light_curve_is_searched_with_equal_weights(method, caplog):
    """A synthesis without noise (no uncertainties, no scatter: detection_grid_1d's batman half)
    is searched by every method, each sample weighed the same as astropy's BLS does without
    ``dy``; the transit is found and detected (without noise a dip is certain: snr +inf,
    recorded as null), and a warning says so. A flat noiseless light curve is no detection."""
    lc = synthesize({"duration": 40, "sampling_cadence": 1800, "orbital_period": 3.2,
                     "semi_major_axis": 0.04, "planet_radius": 0.3, "t0": 0.7}, seed=2)
    assert lc.flux_err is None or not np.any(lc.flux_err > 0)
    with caplog.at_level("WARNING", logger="eas.task.transit_search_bls_reference"):
        result = search(lc, search_settings={"method": method}, cpus=2)
    assert result.outcome == "PASS" and abs(result.period / 3.2 - 1) < 1e-3
    k2 = (0.3 / (695500e3 / 71492e3)) ** 2
    assert result.depth == pytest.approx(k2 / (1 - 0.1 / 3 - 0.3 / 6) * 1e6, rel=0.25)
    assert result.snr == math.inf and result.extra["detected"] is True
    assert result.to_dict()["snr"] is None
    assert any("snr is infinite" in r.getMessage() for r in caplog.records)
    flat = LightCurve(time=lc.time, flux=np.ones_like(lc.flux))
    none = search(flat, search_settings={"method": method}, cpus=2)
    assert none.outcome == "UNDEFINED" and none.extra["detected"] is False     # no target period given
    assert none.depth == 0.0 and none.snr == 0.0


@pytest.mark.parametrize("settings, message", [
    ({"method": "tls"}, "'method' must be one of"),
    ({"method": "fast", "durations": [0.1]}, r"\['durations'\] do not apply to method 'fast'"),
    ({"method": "ffa", "objective": "snr"}, r"\['objective'\] do not apply"),
    ({"stellar_density": 2.0}, "do not apply to method 'astropy'"),
    ({"method": "fast", "stellar_mass": 1.0}, "mass and radius go together"),
    ({"method": "fast", "stellar_density": -1}, "'stellar_density' must be a number > 0"),
    ({"method": "fast", "prebin_fraction": 0}, "'prebin_fraction' must be a number > 0"),
    # the Ofir grid's bounds (eas_runtime.bls.grid), as planet_search's: fail at once, not
    # after the task's time or memory
    ({"method": "fast", "oversampling": 1e6}, "'oversampling' must be from 0.5 to 20, got 1000000"),
    ({"method": "ffa", "stellar_density": 1e-9}, "density must be from 0.0001 to 1e"),
    ({"method": "fast", "period_min": 0.01}, "'period_min' must be at least 0.1 d"),
    ({"method": "fast", "period_min": "soon"}, "'period_min' must be a number > 0, got 'soon'"),
    ({"method": "fast", "oversample": 100000}, "'oversample' must be from 1 to 100"),
    ({"method": "fast", "oversampling": 20, "stellar_density": 1e7, "period_min": 0.1},
     r"the period grid would hold [\d,]+ trial periods \(at most 2,000,000\)"),
])
def test_fast_method_settings_are_checked(settings, message):
    lc = synthesize({"duration": 10, "sampling_cadence": 1800, "orbital_period": 3.0,
                     "semi_major_axis": 0.04, "planet_radius": 0.3}, seed=1)
    with pytest.raises(ParameterError, match=message):
        search(lc, search_settings=settings)
