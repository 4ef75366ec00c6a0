"""transit_search_tls: injection-recovery, the prototype's demo, threads, settings."""
from __future__ import annotations

import numpy as np
import pytest

from eas_runtime.lightcurve import LightCurve, read_lightcurve, read_metadata_cfg
from eas_runtime.task_api import ParameterError
from functions.synthesis_batman.science import synthesize
from functions.transit_search_tls.science import search


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
