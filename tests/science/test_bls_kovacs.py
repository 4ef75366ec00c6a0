"""transit_search_bls_kovacs: the vectorised kernel against the reference one and against
hand-made cases, injection-recovery, the prototype's demo, parameter errors."""
from __future__ import annotations

import numpy as np
import pytest

from eas_runtime.lightcurve import LightCurve, read_lightcurve, read_metadata_cfg
from eas_runtime.task_api import ParameterError
from functions.synthesis_batman.science import synthesize
from functions.transit_search_bls_kovacs import core
from functions.transit_search_bls_kovacs.methods import (
    box_limits,
    numba_kernel,
    numpy_kernel,
    reference_kernel,
)
from functions.transit_search_bls_kovacs.science import DEFAULT_SETTINGS, frequency_grid, search

#: Settings fine enough to tell a period from its harmonics (see the sample's README): boxes
#: from 1 % of the period in 100 bins; frequency step 10 * 0.01 / baseline^2.
FINE = {"nb": 100, "qmi": 0.01, "qma": 0.1, "frequency_factor": 10}


def _random_case(seed, n=1500, span=40.0):
    rng = np.random.default_rng(seed)
    t = np.sort(rng.uniform(0, span, n))
    t = t[(t < 12) | (t > 15)]                      # a gap
    u = t - t[0]
    v = rng.normal(0, 1, u.size)
    v[(u % 3.7) < 0.15] -= 1.5                      # a periodic dip
    return u, v - v.mean()


# ---------------------------------------------------------------- kernels
# (boxes wider than half the bins would tie exactly with their complements, whose sums are
# computed in a different order: such settings are left out of the box comparison)
@pytest.mark.parametrize("nb, qmi, qma", [(10, 0.05, 0.2), (50, 0.01, 0.1), (12, 0.1, 0.25)])
@pytest.mark.parametrize("seed", [1, 2])
def test_numpy_kernel_agrees_with_the_reference_kernel(seed, nb, qmi, qma):
    u, v = _random_case(seed)
    freqs = np.linspace(1 / 20, 3.0, 400)
    fast = numpy_kernel(u, v, freqs, nb, qmi, qma)
    slow = reference_kernel(u, v, freqs, nb, qmi, qma)
    # same boxes, same statistics: powers to 1e-12 relative (summation order differs)
    np.testing.assert_allclose(fast.power, slow.power, rtol=1e-12, atol=1e-15)
    assert np.array_equal(fast.start, slow.start) and np.array_equal(fast.width, slow.width)
    assert np.array_equal(fast.in_count, slow.in_count)
    np.testing.assert_allclose(fast.in_sum, slow.in_sum, rtol=1e-9, atol=1e-9)


@pytest.mark.parametrize("nb, qmi, qma", [(10, 0.05, 0.2), (50, 0.01, 0.1), (12, 0.1, 0.25),
                                          (300, 0.002, 0.02)])
@pytest.mark.parametrize("seed", [1, 2])
def test_numba_kernel_is_the_reference_kernel_to_the_last_bit(seed, nb, qmi, qma):
    """Same loops, same order of additions: every field of every frequency identical (401
    frequencies: groups of eight with a partial last one)."""
    u, v = _random_case(seed)
    freqs = np.linspace(1 / 20, 3.0, 401)
    fast = numba_kernel(u, v, freqs, nb, qmi, qma)
    slow = reference_kernel(u, v, freqs, nb, qmi, qma)
    for field in ("power", "start", "width", "in_sum", "in_count"):
        np.testing.assert_array_equal(getattr(fast, field), getattr(slow, field), err_msg=field)
    assert fast.start.dtype == fast.width.dtype == fast.in_count.dtype == np.int64


def test_numba_kernel_does_not_depend_on_the_thread_count():
    from functions.transit_search_bls_kovacs import compiled
    u, v = _random_case(4)
    freqs = np.linspace(1 / 20, 3.0, 997)
    kmi, kma, kkmi = box_limits(u.size, 20, 0.02, 0.15)
    one = compiled.spectrum(u, v, freqs, 20, kmi, kma, kkmi, threads=1)
    two = compiled.spectrum(u, v, freqs, 20, kmi, kma, kkmi, threads=2)
    for a, b in zip(one, two):
        np.testing.assert_array_equal(a, b)


def test_both_folds_give_the_eebls_bin_sums():
    u, v = _random_case(3)
    freqs = np.linspace(0.02, 4.0, 300)
    y1, c1 = core.fold_by_edges(u, v, freqs, 13)
    y2, c2 = core.fold_by_bincount(u, v, freqs, 13)
    assert np.array_equal(c1, c2) and c1.sum(axis=1).tolist() == [u.size] * freqs.size
    np.testing.assert_allclose(y1, y2, atol=1e-9)


def test_a_box_in_one_bin_has_the_textbook_residue():
    """Independent derivation: n samples, r of them at -d in bin 0, the rest at 0 (then mean
    subtracted): s = -d r (n - r) / n and SR = s^2 / (r (n - r)) = d^2 r (n - r) / n^2."""
    n, nb, period = 1000, 10, 10.0
    u = np.arange(n) * (10 * period / n)            # 10 cycles, 100 samples each
    x = np.where((u % period) < period / nb, -0.01, 0.0)
    v = x - x.mean()
    spectrum = numpy_kernel(u, v, np.array([1 / period]), nb, 0.05, 0.2)
    r = 100
    assert spectrum.in_count[0] == r and spectrum.start[0] == 0 and spectrum.width[0] == 1
    assert spectrum.power[0] ** 2 == pytest.approx(0.01 ** 2 * r * (n - r) / n ** 2, rel=1e-12)
    assert box_limits(n, nb, 0.05, 0.2) == (1, 3, 50)


def test_frequency_grid_is_the_prototypes():
    grid = frequency_grid(0.5, 120.0, 240.0, 0.05, 2.0)
    assert grid[0] == pytest.approx(1 / 120) and grid[-1] <= 2.0
    assert np.allclose(np.diff(grid), 2 * 0.05 / 240 ** 2)
    assert DEFAULT_SETTINGS["qmi"] == 0.05 and DEFAULT_SETTINGS["qma"] == 0.2
    assert DEFAULT_SETTINGS["nb"] == 10


# ---------------------------------------------------------------- injection-recovery
@pytest.mark.parametrize("period_d, cadence_s, radius", [
    (1.3, 600, 0.25), (4.7, 1800, 0.3), (11.0, 1800, 0.35)])
def test_injected_transits_are_recovered(period_d, cadence_s, radius):
    specs = {"duration": 60, "sampling_cadence": cadence_s, "orbital_period": period_d,
             "semi_major_axis": (period_d / 365.25) ** (2 / 3), "planet_radius": radius,
             "noise": 1e-3, "t0": 0.9}
    lc = synthesize(specs, seed=int(period_d * 100))
    result = search(lc, search_settings={**FINE, "period_min": 1.0})
    # well above the noise (MES > 40): period within 1 %, QC PASS
    assert lc.meta["mes"] > 40
    assert abs(result.period / period_d - 1) < 0.01 and result.outcome == "PASS"
    phase = (result.epoch - 0.9 + period_d / 2) % period_d - period_d / 2
    assert abs(phase) < result.duration                   # epoch within a box of a transit
    assert result.depth > 0 and result.sde > 6 and result.snr > 15
    assert result.transit_count == pytest.approx(60 / period_d, abs=1)
    assert result.periodogram["period"].size == result.extra["n_periods"]


def test_noise_only_light_curve_does_not_pass():
    rng = np.random.default_rng(2024)
    time = np.arange(0, 60, 1800 / 86400)
    lc = LightCurve(time, 1 + rng.normal(0, 1e-3, time.size), meta={"orbital_period": 7.3})
    result = search(lc, search_settings={**FINE, "period_min": 1.0})
    assert result.target_period == 7.3 and result.outcome != "PASS"
    assert result.sde < 7                                 # no significant peak


# ---------------------------------------------------------------- the prototype's demo
def _demo(path):
    return read_lightcurve(path, metadata=read_metadata_cfg(f"{path}.metadata.cfg"))


def test_demo_superearth_is_recovered_with_fine_bins(demo_superearth):
    """P = 50 d: boxes from 0.1 d in 500 bins find it within 0.1 % (periods 20-100 d keep the
    test short)."""
    result = search(_demo(demo_superearth), lc_duration=240, search_settings={
        "period_min": 20, "period_max": 100, "nb": 500, "qmi": 0.002, "qma": 0.02,
        "frequency_factor": 100})
    assert result.outcome == "PASS" and abs(result.period / 50 - 1) < 1e-3
    assert result.transit_count == 5 and 900 < result.depth < 1500


def test_demo_superearth_with_the_prototypes_settings_finds_a_harmonic(demo_superearth):
    """Regression of a defect of the prototype's settings (10 bins, boxes of at least 5 % of
    the samples): every transit falls in one bin at P, P/2, P/3..., which then have the same
    signal residue, so the search returns one of them; all five transits are in its box."""
    result = search(_demo(demo_superearth), lc_duration=240,
                    search_settings={"period_min": 20, "period_max": 100})
    ratio = 50.0 / result.period
    assert abs(ratio - round(ratio)) < 0.01 and 1 <= round(ratio) <= 2


# ---------------------------------------------------------------- parameters
@pytest.mark.parametrize("settings, message", [
    ({"bins": 10}, r"unknown search setting\(s\) \['bins'\]"),
    ({"nb": 0}, "'nb' must be an integer > 0, got 0"),
    ({"nb": 5000}, "'nb' must be at most 2000"),
    ({"qmi": 0.3, "qma": 0.2}, "qmi <= qma < 1"),
    ({"method": "fortran"},
     r"'method' must be one of \['numba', 'numpy', 'reference'\], got 'fortran'"),
    ({"period_min": 30}, "empty period range"),
])
def test_bad_settings_name_the_setting(settings, message):
    lc = synthesize({"duration": 20, "sampling_cadence": 1800, "orbital_period": 3.0,
                     "semi_major_axis": 0.04, "planet_radius": 0.3})
    with pytest.raises(ParameterError, match=message):
        search(lc, search_settings=settings)
