"""transit_search_qats: the vectorised kernel against the reference one, transit timing
variations, injection-recovery, the prototype's demo, the debugging output, parameters."""
from __future__ import annotations

import io
import json
import tarfile

import numpy as np
import pytest

from eas_runtime.lightcurve import LightCurve, read_lightcurve, read_metadata_cfg
from eas_runtime.task_api import ParameterError
from functions.synthesis_batman.science import synthesize
from functions.transit_search_qats import core
from functions.transit_search_qats.methods import numpy_kernel, reference_kernel
from functions.transit_search_qats.science import DEFAULT_SETTINGS, search, spans


def _dips(n=400, seed=3, starts=range(7, 400, 41), width=4, depth=2.0):
    d = np.random.default_rng(seed).normal(0, 1, n)
    for t in starts:
        d[t:t + width] -= depth
    return d


# ---------------------------------------------------------------- kernels
@pytest.mark.parametrize("dmin, dmax", [(40, 41), (38, 45), (20, 20), (100, 160), (5, 9)])
@pytest.mark.parametrize("m_min", [1, 2])
def test_numpy_kernel_agrees_with_the_reference_kernel(dmin, dmax, m_min):
    d = _dips(n=300)
    q = np.array([2, 4, 7])
    fast = numpy_kernel(d, q, dmin, dmax, m_min)
    slow = reference_kernel(d, q, dmin, dmax, m_min)
    np.testing.assert_allclose(fast[0], slow[0], rtol=1e-12)   # same optimum, 1e-12 relative
    assert np.array_equal(fast[1], slow[1])


def test_best_sequence_realises_the_statistic_and_obeys_the_constraints():
    d = _dips()
    q = np.array([4])
    for dmin, dmax in [(40, 42), (35, 50)]:
        stat, m = numpy_kernel(d, q, dmin, dmax, 2)
        score = core.box_scores(d, 4)
        seq = core.best_sequence(score, dmin, dmax, int(m[0]))
        assert score[seq].sum() / np.sqrt(m[0] * 4) == pytest.approx(stat[0], rel=1e-12)
        gaps = np.diff(seq)
        assert gaps.min() >= dmin and gaps.max() <= dmax
        assert seq[0] < dmax and d.size - seq[-1] <= dmax
        # the injected dips, to within 2 samples (noise can shift a box)
        assert np.abs(seq - np.arange(7, 400, 41)).max() <= 2


def test_sliding_max_matches_a_direct_window_maximum():
    rng = np.random.default_rng(0)
    values = rng.normal(size=(3, 50))
    for w in (1, 2, 5, 13):
        out = core.sliding_max(values, w)
        padded = np.concatenate([np.full((3, w - 1), -np.inf), values,
                                 np.full((3, w - 1), -np.inf)], axis=1)
        direct = np.stack([padded[:, x:x + w].max(axis=1) for x in range(50 + w - 1)], axis=1)
        assert np.array_equal(out, direct)


def test_spans_follow_equations_15_and_16():
    grid = spans(4.0, 120.0, 900 / 86400, 0.0005)
    assert grid[0][0] == 384 and all(b > a for a, b in grid)
    assert grid[-1][1] <= 11520 and len(set(grid)) == len(grid)
    assert DEFAULT_SETTINGS["period_min"] == 4 and DEFAULT_SETTINGS["duration_count"] == 16
    assert DEFAULT_SETTINGS["max_ttv_mag"] == 0.0005


# ---------------------------------------------------------------- searches
def test_transit_timing_variations_are_followed():
    """QATS's point: transits whose times wander (here +-0.05 d around a 6 d period) are each
    found, where a strictly periodic box would smear them."""
    step = 1800 / 86400
    time = np.arange(0, 60, step)
    rng = np.random.default_rng(7)
    flux = 1 + rng.normal(0, 3e-4, time.size)
    truth = 2.0 + 6.0 * np.arange(10) + 0.05 * np.sin(2 * np.pi * np.arange(10) / 5)
    for mid in truth:
        flux[np.abs(time - mid) < 0.08] -= 1.5e-3
    lc = LightCurve(time, flux, meta={"orbital_period": 6.0})
    found = search(lc, search_settings={"max_ttv_mag": 0.04, "period_max": 10})
    result = found.result
    assert result.transit_count == 10 and result.outcome == "PASS"
    final = found.debugging["final.qats"].decode().splitlines()[1:]
    starts = np.array([int(line.split()[1]) for line in final])
    mids = time[0] + (starts + 0.5 * (round(result.duration / step) - 1)) * step
    assert np.max(np.abs(mids - truth)) < 0.05               # each transit within 0.05 d
    assert result.extra["first_transit"] == pytest.approx(truth[0], abs=0.05)
    assert result.extra["last_transit"] == pytest.approx(truth[-1], abs=0.05)


@pytest.mark.parametrize("period_d, cadence_s, radius", [
    (5.3, 1800, 0.25), (9.1, 1800, 0.3), (4.4, 600, 0.3)])
def test_injected_transits_are_recovered(period_d, cadence_s, radius):
    specs = {"duration": 45, "sampling_cadence": cadence_s, "orbital_period": period_d,
             "semi_major_axis": (period_d / 365.25) ** (2 / 3), "planet_radius": radius,
             "noise": 1e-3, "t0": 1.1}
    lc = synthesize(specs, seed=int(period_d * 10))
    result = search(lc, search_settings={"period_max": 20}).result
    # well above the noise (MES > 40): period within 1 %, QC PASS
    assert lc.meta["mes"] > 40
    assert abs(result.period / period_d - 1) < 0.01 and result.outcome == "PASS"
    assert result.transit_count == result.extra["period_span"] + 1
    assert result.transit_count == pytest.approx(45 / period_d, abs=1)
    assert result.extra["first_transit"] == pytest.approx(1.1, abs=0.1)
    assert result.power == result.snr and result.power > 10 and result.depth > 0


def test_noise_only_light_curve_does_not_pass():
    rng = np.random.default_rng(2024)
    time = np.arange(0, 45, 1800 / 86400)
    lc = LightCurve(time, 1 + rng.normal(0, 1e-3, time.size), meta={"orbital_period": 7.3})
    result = search(lc, search_settings={"period_max": 20}).result
    assert result.target_period == 7.3 and result.outcome != "PASS"
    assert result.power < 6                                  # no significant sequence


@pytest.mark.slow
def test_demo_superearth_with_the_prototypes_settings(demo_superearth):
    """The prototype's test_qats.cfg (240 d, periods 4-120 d, 16 durations, 7,800 spans):
    P = 50 d within 0.1 %, the five transits, their times (the dips are at 13.5 + 50 k d)."""
    lc = read_lightcurve(demo_superearth,
                         metadata=read_metadata_cfg(f"{demo_superearth}.metadata.cfg"))
    found = search(lc, lc_duration=240, cpus=2)
    result = found.result
    assert result.outcome == "PASS" and abs(result.period / 50 - 1) < 1e-3
    assert result.transit_count == 5 and result.extra["period_span"] == 4
    assert result.extra["first_transit"] == pytest.approx(13.5, abs=0.1)
    assert result.extra["last_transit"] == pytest.approx(213.5, abs=0.1)


def test_debugging_archive_holds_grid_final_and_settings(tmp_path):
    lc = synthesize({"duration": 30, "sampling_cadence": 1800, "orbital_period": 5.0,
                     "semi_major_axis": 0.06, "planet_radius": 0.3, "noise": 5e-4}, seed=2)
    found = search(lc, search_settings={"period_max": 12})
    path = found.write_debugging(tmp_path / "qats_debugging.tar.gz")
    with tarfile.open(path) as tar:
        names = tar.getnames()
        grid = tar.extractfile("grid.qats").read().decode().splitlines()
        settings = json.load(io.BytesIO(tar.extractfile("settings.json").read()))
    assert names == ["grid.qats", "final.qats", "settings.json"]
    rows = [line.split() for line in grid[1:]]
    assert all(len(r) == 5 for r in rows)
    assert float(rows[0][0]) == pytest.approx(found.result.power, rel=1e-5)   # best first
    assert float(rows[0][0]) >= float(rows[-1][0])
    assert settings["period_max"] == 12 and settings["spans"] == found.result.extra["n_periods"]
    assert found.result.periodogram["transit_count"].dtype.kind == "i"


@pytest.mark.parametrize("settings, message", [
    ({"durations": 3}, r"unknown search setting\(s\) \['durations'\]"),
    ({"duration_count": 0}, "'duration_count' must be an integer > 0, got 0"),
    ({"duration_min": 0.3}, "duration_min <= duration_max"),
    ({"max_ttv_mag": -1}, "'max_ttv_mag' must be a number > 0, got -1"),
    ({"period_min": 25}, "empty period range"),
    ({"method": "c"}, r"one of \['numpy', 'reference'\]"),
])
def test_bad_settings_name_the_setting(settings, message):
    lc = synthesize({"duration": 40, "sampling_cadence": 1800, "orbital_period": 5.0,
                     "semi_major_axis": 0.06, "planet_radius": 0.3})
    with pytest.raises(ParameterError, match=message):
        search(lc, search_settings=settings)
