"""transit_search_tls: injection-recovery, the prototype's demo, threads, settings."""
from __future__ import annotations

import numpy as np
import pytest

from eas_runtime.lightcurve import LightCurve, read_lightcurve, read_metadata_cfg
from eas_runtime.task_api import ParameterError
from functions.synthesis_batman.science import synthesize
from functions.transit_search_tls.science import search, shortest_duration


@pytest.mark.parametrize("period_d, cadence_s, radius", [(2.3, 1800, 0.25), (7.9, 600, 0.3)])
def test_injected_transits_are_recovered(period_d, cadence_s, radius):
    specs = {"duration": 40, "sampling_cadence": cadence_s, "orbital_period": period_d,
             "semi_major_axis": (period_d / 365.25) ** (2 / 3), "planet_radius": radius,
             "noise": 1e-3, "t0": 1.3}
    lc = synthesize(specs, seed=int(period_d * 10))
    result = search(lc, search_settings={"period_min": 1.0, "period_max": 20}, cpus=2)
    # well above the noise (MES > 40): period within 1 %, QC PASS
    assert lc.meta["mes"] > 40
    assert abs(result.period / period_d - 1) < 0.01 and result.outcome == "PASS"
    phase = (result.epoch - 1.3 + period_d / 2) % period_d - period_d / 2
    assert abs(phase) < result.duration
    assert result.sde > 9 and result.power == pytest.approx(result.sde, rel=0.05)
    k2 = (radius / (695500e3 / 71492e3)) ** 2 * 1e6
    assert 0.5 * k2 < result.depth < 1.5 * k2                 # depth in ppm, within 50 %
    assert result.transit_count == pytest.approx(40 / period_d, abs=1)
    assert set(result.periodogram) == {"period", "power", "sr"}


def test_noise_only_light_curve_does_not_pass():
    rng = np.random.default_rng(2024)
    time = np.arange(0, 40, 1800 / 86400)
    lc = LightCurve(time, 1 + rng.normal(0, 1e-3, time.size), meta={"orbital_period": 7.3})
    result = search(lc, search_settings={"period_min": 1.0, "period_max": 20})
    assert result.target_period == 7.3 and result.outcome != "PASS"
    assert result.sde < 9                                     # TLS's own threshold: SDE 9


def test_demo_superearth_is_recovered_with_the_prototypes_settings(demo_superearth):
    """The prototype's test_tls.cfg (240 d, TLS's default grid, 28,000 periods): P = 50 d
    within 0.1 %, the five transits."""
    lc = read_lightcurve(demo_superearth,
                         metadata=read_metadata_cfg(f"{demo_superearth}.metadata.cfg"))
    result = search(lc, lc_duration=240, cpus=2)
    assert result.outcome == "PASS" and abs(result.period / 50 - 1) < 1e-3
    assert result.transit_count == 5 and result.sde > 20
    assert result.extra["mes"] == pytest.approx(238.88, abs=0.01)   # copied from the input


@pytest.mark.parametrize("settings, message", [
    ({"period": 3}, r"unknown search setting\(s\) \['period'\]"),
    ({"period_min": -1}, "'period_min' must be a number > 0, got -1"),
    ({"oversampling_factor": "many"}, "'oversampling_factor' must be a number > 0"),
    ({"period_min": 30, "period_max": 10}, "empty period range"),
])
def test_bad_settings_name_the_setting(settings, message):
    lc = synthesize({"duration": 20, "sampling_cadence": 1800, "orbital_period": 3.0,
                     "semi_major_axis": 0.04, "planet_radius": 0.3})
    with pytest.raises(ParameterError, match=message):
        search(lc, search_settings=settings)


# ---------------------------------------------------------------------- binning (issue 12)
def _two_earths(days: float, cadence_s: float):
    """A 2 Earth-radius planet at 1.7 d around the Sun, 600 ppm per sample."""
    return synthesize({"duration": days, "sampling_cadence": cadence_s, "orbital_period": 1.7,
                       "semi_major_axis": (1.7 / 365.25) ** (2 / 3),
                       "planet_radius": 2 * 6371 / 71492, "noise": 600e-6, "t0": 0.4}, seed=3)


@pytest.mark.parametrize("days, cadence_s", [(40, 25), (60, 120)])
def test_binned_tls_agrees_with_tls_on_every_sample(days, cadence_s):
    """40 days at 25 s (138,240 samples) and 60 days at 2 min: the default (bins of 1/3 of the
    shortest duration TLS searches, 0.018 d, 515 s) finds TLS's period within 0.1 % and its
    SDE within 5 %, on 20 (4.3) times fewer points; the metadata record the binning."""
    lc = _two_earths(days, cadence_s)
    binned = search(lc, cpus=2)
    full = search(lc, search_settings={"binning": "none"}, cpus=2)
    assert full.outcome == binned.outcome == "PASS"
    assert binned.period == pytest.approx(full.period, rel=1e-3)
    assert binned.sde == pytest.approx(full.sde, rel=0.05)
    assert binned.snr == pytest.approx(full.snr, rel=0.1)
    meta, reference = binned.to_dict(), full.to_dict()
    n = round(days * 86400 / cadence_s)
    width = shortest_duration(days - cadence_s / 86400, {}) / 3
    assert meta["binning"] == "duration" and meta["n_samples"] == reference["n_samples"] == n
    assert meta["binned_cadence_s"] == pytest.approx(width * 86400, rel=1e-3)
    assert meta["n_points"] == pytest.approx(n * cadence_s / (width * 86400), rel=0.25)
    assert reference["binning"] == "none" and reference["binned_cadence_s"] == 0
    assert reference["n_points"] == n
    assert binned.units["binned_cadence_s"] == "s"


def test_binning_none_is_transitleastsquares_itself():
    """The reference setting runs transitleastsquares on every good sample, as before."""
    from transitleastsquares import transitleastsquares

    lc = _two_earths(12, 600)
    result = search(lc, search_settings={"binning": "none", "period_max": 5}, cpus=2)
    flux = lc.flux / np.median(lc.flux)
    r = transitleastsquares(lc.time, flux, lc.flux_err / np.median(lc.flux), verbose=False).power(
        use_threads=2, show_progress_bar=False, period_max=5)
    assert (result.period, result.epoch, result.sde, result.snr) == (r.period, r.T0, r.SDE, r.snr)
    assert np.array_equal(result.periodogram["power"], r.power)


def test_shortest_duration_is_the_shortest_tls_searches():
    """T14 of the smallest, densest star at each period of TLS's grid, times the period: the
    minimum over the grid (at its shortest period); a longer period_min gives a longer one."""
    from transitleastsquares.grid import T14, duration_limit_masses, period_grid

    periods = period_grid(R_star=1.0, M_star=1.0, time_span=60.0)
    m_short, _ = duration_limit_masses(0.13, 3.5, 0.1, 1.0)
    expected = min(T14(R_s=0.13, M_s=m_short, P=p, small=True) * p for p in periods)
    assert shortest_duration(60.0, {}) == pytest.approx(expected, rel=1e-12)
    assert 0.015 < expected < 0.02                         # about 26 minutes, at 0.60 d
    assert shortest_duration(60.0, {"period_min": 5.0}) > 1.5 * expected


@pytest.fixture
def half_hour_lc():
    """20 days at a 30-minute cadence with a large planet: cheap, and coarser than any bin."""
    return synthesize({"duration": 20, "sampling_cadence": 1800, "orbital_period": 3.0,
                       "semi_major_axis": 0.04, "planet_radius": 0.3})


def test_a_cadence_coarser_than_the_bins_is_not_binned(half_hour_lc):
    lc = half_hour_lc
    meta = search(lc, search_settings={"period_min": 1.0, "period_max": 8}).to_dict()
    assert meta["binned_cadence_s"] == 0 and meta["n_points"] == meta["n_samples"] == len(lc)


@pytest.mark.parametrize("settings, message", [
    ({"binning": "fast"}, r"'binning' must be one of \['duration', 'none'\], got 'fast'"),
    ({"bin_fraction": 2}, "'bin_fraction' must be at most 1"),
    ({"bin_fraction": 0}, "'bin_fraction' must be a number > 0"),
])
def test_bad_binning_settings_name_the_setting(half_hour_lc, settings, message):
    with pytest.raises(ParameterError, match=message):
        search(half_hour_lc, search_settings=settings)


@pytest.mark.parametrize("binning", ["duration", "none"])
@pytest.mark.parametrize("window", [(3.0, 3.0000001), (12.0, 15.0)])
def test_a_period_window_with_no_trial_period_is_a_parameter_error(half_hour_lc, binning, window):
    """A window TLS's grid has no period in (too narrow, or beyond half the 20-day baseline)
    is the settings' fault, named as such; before, TLS's own ValueError failed the task as a
    science error."""
    settings = {"period_min": window[0], "period_max": window[1], "binning": binning}
    with pytest.raises(ParameterError, match=r"no trial period between period_min .* period_max"):
        search(half_hour_lc, search_settings=settings, cpus=1)


@pytest.mark.parametrize("flux", ["flat", "below_depth_min"])
def test_a_search_where_tls_fits_no_transit_is_no_signal_with_a_periodogram(flux, tmp_path):
    """TLS fits no transit at any period (a noiseless curve without a dip, or a dip shallower
    than its ``transit_depth_min``: detection_grid_1d's smallest noiseless planet): its SR is
    a scalar and its period NaN. The search reports no signal and writes its periodogram
    (zero power at every trial period) instead of failing as a science error."""
    from eas_runtime.lightcurve.search import read_periodogram, write_periodogram
    if flux == "flat":
        lc = LightCurve(np.arange(0, 40, 1 / 48), np.ones(1920))
    else:
        lc = synthesize({"duration": 40, "sampling_cadence": 1800, "orbital_period": 7.0,
                         "semi_major_axis": 0.07, "planet_radius": 0.01, "t0": 1.0}, seed=1)
    result = search(lc, search_settings={"binning": "none"}, cpus=1)
    assert np.isnan(result.period) and result.extra["detected"] is False
    assert result.extra["no_signal"].startswith("TLS fitted no transit at any period")
    from eas_runtime.qc import check_result
    assert check_result("transit_search_tls", result.to_dict()) == []     # a result, not a QC failure
    path = write_periodogram(result, tmp_path / "periodogram.fits", task_type="transit_search_tls")
    columns = read_periodogram(path)
    assert columns["period"].size == result.extra["n_periods"] > 100
    assert not columns["power"].any() and not columns["sr"].any()
