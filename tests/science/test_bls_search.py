"""eas_runtime.bls search: the Ofir grid and duration limits against hand-computed values,
pre-binning, the fast-folding search against the BLS kernel, injection-recovery, noise-only
light curves, and the sensitivity of the fast search against astropy's BLS on its default grid.
"""
from __future__ import annotations

import math

import numpy as np
import pytest

from eas_runtime.bls import ffa, grid
from eas_runtime.bls.methods import bls
from eas_runtime.bls.prebin import prebin, rebin
from eas_runtime.bls.search import search_lightcurve
from functions.synthesis_batman.science import synthesize

DETECTION_SNR = 7.1          # the project's detection threshold (lightcurve.search)
EARTH_JUPITER_RADII = 6371.0 / 71492.0


def transit_lc(days, cadence_s, period, *, radius=0.1, noise=1e-3, impact=0.0, t0=1.3,
               seed=1):
    """A batman transit around the Sun (a from Kepler's law), white noise per 25 s sample."""
    return synthesize({"duration": days, "sampling_cadence": cadence_s, "orbital_period": period,
                       "semi_major_axis": (period / 365.25) ** (2 / 3), "planet_radius": radius,
                       "noise": noise, "t0": t0, "impact_parameter": impact}, seed=seed)


def noise_lc(days, cadence_s, sigma, seed):
    time = np.arange(0.0, days, cadence_s / 86400)
    flux = 1 + np.random.default_rng(seed).normal(0, sigma, time.size)
    return time, flux, np.full(time.size, sigma)


# ------------------------------------------------------------------ grid, by hand
# The Sun, IAU 2015 nominal GM = 1.3271244e20 m3 s-2 and R = 6.957e8 m:
#   G rho = 3 GM / (4 pi R^3) = 3.98137e20 / 4.23132e27 = 9.40929e-8 s-2.
def test_semi_major_axis_and_transit_duration_of_the_earth():
    # a/R = (G rho P^2 / (3 pi))^(1/3), P = 365.25 d = 3.15576e7 s:
    #   (9.40929e-8 * 9.95882e14 / 9.42478)^(1/3) = (9.94227e6)^(1/3) = 215.03 (1 AU / R_sun)
    assert grid.semi_major_axis(365.25) == pytest.approx(215.03, abs=0.01)
    # central transit of the Earth, k = 0.00916: P / pi * asin(1.00916 / 215.03)
    #   = 116.262 d * 0.0046932 = 0.54564 d = 13.095 h
    assert grid.transit_duration(365.25, 1.0, 0.0, 0.00916) * 24 == pytest.approx(13.095, abs=0.002)
    # a star 8 times denser (half the radius, same mass) has a/R twice as large
    assert grid.semi_major_axis(10.0, 8.0) == pytest.approx(2 * grid.semi_major_axis(10.0))
    assert grid.stellar_density(mass=1.0, radius=0.5) == 8.0
    assert grid.transit_duration(1.0, 1.0, 1.5, 0.01) == 0.0      # the planet misses the star


def test_duration_limits_at_ten_days_for_the_sun():
    # a/R at 10 d: 215.029 * (10 / 365.25)^(2/3) = 19.5331
    # longest: b = 0, k = 0.2, margin 25 %: 10/pi * asin(1.2 / 19.5331) * 1.25
    #   = 3.18310 * 0.0614972 * 1.25 = 0.244593 d
    # shortest: b = 0.95, k = 0.01: chord sqrt(1.01^2 - 0.95^2) = sqrt(0.1176) = 0.342929,
    #   sin i = sqrt(1 - (0.95 / 19.5331)^2) = 0.998817,
    #   10/pi * asin(0.342929 / (19.5331 * 0.998817)) / 1.25 = 3.18310 * 0.0175779 / 1.25
    #   = 0.044762 d
    shortest, longest = grid.duration_limits([10.0])
    assert longest[0] == pytest.approx(0.244593, rel=1e-5)
    assert shortest[0] == pytest.approx(0.044762, rel=1e-4)
    # without margin and up to b = 1, the shortest is the grazing 14 % of a central transit
    short_b1, _ = grid.duration_limits([10.0], impact_max=1.0, margin=0.0)
    central = grid.transit_duration(10.0, 1.0, 0.0, 0.0)
    assert short_b1[0] / central == pytest.approx(math.sqrt(1.01 ** 2 - 1), rel=1e-3)
    # durations scale as P^(1/3) far from the star
    _, l100 = grid.duration_limits([100.0])
    assert l100[0] / longest[0] == pytest.approx(10 ** (1 / 3), rel=0.01)


def test_ofir_grid_for_the_sun_over_two_years():
    # shortest period, an orbit at 3 R: 2 pi / sqrt(4 pi G rho / 81) = 2 pi / 1.20821e-4 s
    #   = 52004 s = 0.601901 d
    assert grid.roche_period() == pytest.approx(0.601901, abs=2e-6)
    # step in f^(1/3): A / 3 with A = (2 pi)^(2/3) / pi * (3 / (4 pi G rho))^(1/3) / (T * 3)
    #   = 1.083852 * 136.382 s^(2/3) / 1.89216e8 s = 7.81262e-7 s^(-1/3);
    #   A / 3 * 86400^(1/3) = 1.151278e-5 d^(-1/3)
    assert grid.ofir_step(730.0) == pytest.approx(1.151278e-5, rel=1e-6)
    # from 365 d: (1/365)^(1/3) = 0.1399273 to (1/0.601901)^(1/3) = 1.1843815,
    #   1.0444542 / 1.151278e-5 = 90721.3 steps -> 90722 periods
    periods = grid.ofir_periods(730.0)
    assert periods.size == 90722
    assert periods[-1] == 365.0 and periods[0] == pytest.approx(0.601901, abs=1e-4)
    assert np.all(np.diff(periods) > 0)
    steps = np.diff(periods[::-1] ** (-1 / 3))
    assert np.allclose(steps, 1.151278e-5, rtol=1e-6)
    # the same grid as transitleastsquares' (its own constants: within 0.1 %)
    from transitleastsquares.grid import period_grid
    tls = period_grid(1.0, 1.0, 730.0, period_max=365.0)
    assert tls.size == pytest.approx(periods.size, rel=1e-3)


def test_ofir_step_is_a_third_of_a_central_transit_of_phase_drift():
    baseline = 400.0
    periods = grid.ofir_periods(baseline, density=0.5, period_min=1.0, period_max=100.0)
    drift = (1 / periods[:-1] - 1 / periods[1:]) * baseline            # in cycles
    duty = 1 / (math.pi * grid.semi_major_axis(periods[:-1], 0.5))     # R / (pi a)
    assert np.allclose(drift, duty / 3, rtol=2e-3)


def test_duration_grid_ratio():
    durations = grid.duration_grid(0.05, 0.5, 1.1)
    assert durations[0] == 0.05 and durations[-1] == pytest.approx(0.5)
    assert np.all(durations[1:] / durations[:-1] <= 1.1 + 1e-12)
    assert durations.size == math.ceil(math.log(10) / math.log(1.1)) + 1


@pytest.mark.parametrize("kwargs, message", [
    ({"density": 1.0, "mass": 1.0}, "not both"),
    ({"mass": 1.0}, "go together"),
    ({"density": -1.0}, "density"),
    ({"radius": math.nan, "mass": 1.0}, "radius"),
])
def test_stellar_density_errors(kwargs, message):
    with pytest.raises(ValueError, match=message):
        grid.stellar_density(**kwargs)


# ------------------------------------------------------------------ pre-binning
def test_prebin_weighted_means_and_propagated_errors():
    t = np.array([0.0, 0.1, 0.2, 1.05, 1.5, 3.2])
    y = np.array([1.0, 2.0, 4.0, 5.0, 7.0, 9.0])
    dy = np.array([1.0, 1.0, 0.5, 2.0, 2.0, 1.0])
    out = prebin(t, y, dy, 1.0)
    # bin [0, 1): weights 1, 1, 4 -> mean (1 + 2 + 16) / 6, error 1 / sqrt(6)
    assert out.y[0] == pytest.approx(19 / 6) and out.dy[0] == pytest.approx(1 / math.sqrt(6))
    assert out.t[0] == pytest.approx((0 + 0.1 + 0.8) / 6)
    # bin [1, 2): equal weights 1/4 -> plain mean; bin [2, 3) is empty and dropped
    assert out.y[1] == pytest.approx(6.0) and out.dy[1] == pytest.approx(math.sqrt(2))
    assert out.t.size == 3 and out.t[2] == 3.2
    # the sums every box statistic uses are kept
    assert np.sum(out.weight) == pytest.approx(np.sum(1 / dy ** 2))
    assert np.sum(out.weight * out.y) == pytest.approx(np.sum(y / dy ** 2))


def test_rebin_by_an_integer_factor_equals_binning_the_samples():
    rng = np.random.default_rng(4)
    t = np.sort(rng.uniform(0, 30, 5000))
    y = rng.normal(1, 1e-3, t.size)
    dy = rng.uniform(5e-4, 2e-3, t.size)
    fine = prebin(t, y, dy, 0.01)
    direct = prebin(t, y, dy, 0.07)
    again = rebin(fine, 0.07)
    assert np.allclose(again.y, direct.y, rtol=0, atol=1e-12)
    assert np.allclose(again.dy, direct.dy) and np.allclose(again.t, direct.t)
    assert rebin(fine, 0.01) is fine
    loose = rebin(fine, 0.0234)           # any width: the sums are kept
    assert np.sum(loose.weight * loose.y) == pytest.approx(np.sum(y / dy ** 2))


@pytest.mark.parametrize("t, y, dy, width, message", [
    ([0, 1, np.nan], [1, 1, 1], 1.0, 0.1, "t has 1 non-finite"),
    ([0, 1, 2], [1, 1], 1.0, 0.1, "same length"),
    ([0, 1, 2], [1, 1, 1], [1, 0, 1], 0.1, "dy must be positive"),
    ([0, 1, 2], [1, 1, 1], 1.0, 0.0, "bin width"),
    ([0, 1, 2], [1, 1, 1], None, 0.1, "no scatter"),
])
def test_prebin_errors(t, y, dy, width, message):
    with pytest.raises(ValueError, match=message):
        prebin(t, y, dy, width)


@pytest.mark.parametrize("impact", [0.0, 0.9])
def test_prebinning_keeps_the_snr(impact):
    """Binning 25 s samples to a third of the shortest duration keeps the peak's S/N within
    8 % on every seed and 4 % on average (central transit 2.9 h; b = 0.9: 1.2 h, near the
    shortest duration searched, 0.9 h at that period)."""
    ratios = []
    for seed in range(4):
        lc = transit_lc(30, 25, 3.7, radius=0.25, noise=2e-3, impact=impact, t0=1.1,
                        seed=seed)
        window = {"period_min": 3.7 * 0.98, "period_max": 3.7 * 1.02}
        fine = search_lightcurve(lc.time, lc.flux, lc.flux_err, prebin_fraction=None,
                                 oversample=10, **window)
        binned = search_lightcurve(lc.time, lc.flux, lc.flux_err, **window)
        assert binned.n_points < lc.time.size / 5
        assert binned.period == pytest.approx(3.7, rel=2e-3)
        ratios.append(binned.snr / fine.snr)
    assert min(ratios) > 0.92 and max(ratios) < 1.03 and np.mean(ratios) > 0.96


# ------------------------------------------------------------------ the FFA
@pytest.mark.parametrize("m, p", [(2, 7), (3, 11), (8, 17), (13, 29), (64, 100), (333, 400)])
def test_ffa_transform_shifts_each_row_by_its_drift(m, p):
    """Output row s adds input row i rolled left by i s / (m - 1) bins, to within half a bin
    per halving (rows are split log2(m) times), and keeps every row's sum."""
    shifts = np.empty((m, m))
    for i in range(m):
        xw, xy = np.zeros((m, p)), np.zeros((m, p))
        xw[i, 0] = 1.0
        xy[i, 3] = 2.0
        ffa.ffa_transform(xw, xy)
        for s in range(m):
            (col,) = np.flatnonzero(xw[s])
            assert xw[s].sum() == 1.0 and xy[s, (col + 3) % p] == 2.0
            shifts[s, i] = (-col) % p
    exact = np.outer(np.arange(m), np.arange(m)) / (m - 1)
    error = np.abs(shifts - exact)
    assert error.max() <= 0.5 * math.ceil(math.log2(m)) + 1e-9
    assert np.sqrt(np.mean(error ** 2)) < 0.65
    assert np.all(shifts[0] == 0) and np.allclose(shifts[-1], np.arange(m))  # ends exact


def test_ffa_rows_are_within_a_bin_of_drift_of_the_ofir_periods():
    baseline, width = 730.0, 0.004
    n_bins = int(baseline / width)
    periods = grid.ofir_periods(baseline, period_max=200.0)
    base, row = ffa.nearest_rows(periods, width, n_bins)
    trial = ffa.trial_period(base, row, width, n_bins)
    m = -(-n_bins // base)
    # the period error is half a row step, width / (m - 1) / 2: over the baseline (at most m
    # cycles) a drift of half a bin times m / (m - 1), one bin at most (m = 2)
    drift_bins = np.abs(1 / trial - 1 / periods) * baseline * periods / width
    assert np.all(drift_bins <= 0.5 * m / (m - 1) + 1e-6) and drift_bins.max() <= 1.0
    assert np.median(drift_bins) < 0.3
    # and finer than Ofir's step: the FFA has a row between any two Ofir periods
    assert np.all(width / (m - 1) < np.diff(periods, append=np.inf))


@pytest.mark.parametrize("period, impact, seed", [(1.9, 0.0, 1), (6.3, 0.5, 2), (17.0, 0.0, 3)])
def test_ffa_agrees_with_the_bls_kernel(period, impact, seed):
    lc = transit_lc(90, 300, period, radius=0.15, noise=2e-3, impact=impact, seed=seed)
    durations = grid.duration_grid(0.04, 0.3)
    binned = prebin(lc.time, lc.flux, lc.flux_err, 0.0125)
    periods = grid.ofir_periods(90.0, period_min=period * 0.8, period_max=period * 1.25)
    kernel = bls(binned.t, binned.y, binned.dy, periods, durations, oversample=5)
    fast = ffa.search_block(binned.t, binned.y, binned.dy, periods, durations,
                            width=binned.width, origin=binned.origin)
    k, f = int(np.argmax(kernel.power)), int(np.argmax(fast["power"]))
    assert periods[k] == pytest.approx(period, rel=2e-3)
    assert fast["period"][f] == pytest.approx(period, rel=2e-3)
    assert fast["depth_snr"][f] == pytest.approx(kernel.depth_snr[k], rel=0.1)
    assert fast["depth"][f] == pytest.approx(kernel.depth[k], rel=0.15)
    assert fast["duration"][f] == pytest.approx(kernel.duration[k], rel=0.35)
    phase = (fast["transit_time"][f] - kernel.transit_time[k] + period / 2) % period - period / 2
    assert abs(phase) < kernel.duration[k] / 2
    # the whole periodogram follows the kernel's (same statistic, same grid)
    good = np.isfinite(kernel.power) & np.isfinite(fast["power"])
    assert good.mean() > 0.99
    assert np.corrcoef(kernel.power[good], fast["power"][good])[0, 1] > 0.9


# ------------------------------------------------------------------ the full search
@pytest.mark.parametrize("method", ["bls", "ffa"])
def test_injected_transit_is_recovered(method):
    lc = transit_lc(120, 600, 11.3, radius=0.12, noise=1.2e-3, t0=4.2, seed=7)
    mes = lc.meta["mes"]
    result = search_lightcurve(lc.time, lc.flux, lc.flux_err, method=method, threads=2)
    assert result.period == pytest.approx(11.3, rel=1e-3)
    assert result.snr == pytest.approx(mes, rel=0.2) and result.snr > DETECTION_SNR
    phase = (result.epoch - 4.2 + 11.3 / 2) % 11.3 - 11.3 / 2
    assert abs(phase) < result.duration / 2
    central = grid.transit_duration(11.3, 1.0, 0.0, 0.12 / 9.73)
    assert result.duration == pytest.approx(central, rel=0.3)
    assert result.sde > 10 and result.method == method
    assert result.periods.size == result.powers.size == result.n_periods
    record = result.to_dict()
    assert record["n_periods"] == result.n_periods and "periodogram" not in record


@pytest.mark.parametrize("seed", [11, 12, 13])
def test_noise_alone_is_no_detection(seed):
    t, y, dy = noise_lc(120, 600, 1e-3, seed)
    for method in ("bls", "ffa"):
        result = search_lightcurve(t, y, dy, method=method)
        assert result.snr < DETECTION_SNR, (method, result.to_dict())


def test_a_denser_star_searches_shorter_periods_and_durations():
    t, y, dy = noise_lc(60, 1800, 1e-3, 5)
    sun = search_lightcurve(t, y, dy)
    dwarf = search_lightcurve(t, y, dy, mass=0.5, radius=0.5)
    # the dwarf's transits are shorter: a finer grid (step ~ density^(-1/3)), from 0.30 d
    assert dwarf.periods[0] == pytest.approx(grid.roche_period(4.0), rel=1e-3)
    assert dwarf.periods[0] < sun.periods[0] and dwarf.n_periods > 2 * sun.n_periods
    assert np.nanmax(dwarf.periodogram["duration"]) < np.nanmax(sun.periodogram["duration"])


@pytest.mark.parametrize("kwargs, message", [
    ({"method": "tls"}, "method must be one of"),
    ({"threads": 0}, "threads"),
    ({"oversample": 2.5}, "oversample"),
    ({"prebin_fraction": -1}, "prebin_fraction"),
    ({"period_min": 10.0, "period_max": 5.0}, "empty period range"),
    ({"period_max": math.inf}, "period_max"),
    ({"density": 1.0, "radius": 1.0}, "not both"),
])
def test_search_errors(kwargs, message):
    t, y, dy = noise_lc(30, 1800, 1e-3, 1)
    with pytest.raises(ValueError, match=message):
        search_lightcurve(t, y, dy, **kwargs)


def test_search_rejects_bad_samples():
    t, y, dy = noise_lc(30, 1800, 1e-3, 1)
    y[7] = np.nan
    with pytest.raises(ValueError, match="y has 1 non-finite"):
        search_lightcurve(t, y, dy)
    with pytest.raises(ValueError, match="same length"):
        search_lightcurve(t[:-1], y, dy)


# ------------------------------------------------------------------ sensitivity
def _astropy_default(time, flux, dy):
    """astropy BLS on its default autoperiod grid (frequency factor 1), periods 0.6 d to half
    the baseline, the project's reference durations 0.05-0.2 d."""
    from astropy.timeseries import BoxLeastSquares
    durations = np.linspace(0.05, 0.2, 10)
    model = BoxLeastSquares(time, flux, dy)
    periods = model.autoperiod(durations, minimum_period=grid.roche_period(),
                               maximum_period=(time[-1] - time[0]) / 2)
    power = model.power(periods, durations, objective="likelihood", oversample=10)
    best = int(np.argmax(power.power))
    return float(power.period[best]), float(power.depth_snr[best]), periods.size


def _near_threshold_cases():
    """(period, impact, target S/N, seed): S/N 7-12, periods 2-8 d, b 0-0.6."""
    rng = np.random.default_rng(2024)
    return [(float(rng.uniform(2, 8)), float(rng.uniform(0, 0.6)), snr, seed)
            for seed, snr in enumerate([7, 8, 9, 10, 11, 12] * 2)]


@pytest.mark.slow
def test_sensitivity_equals_astropy_on_its_default_grid():
    """Rule: a signal is recovered when the best period is within 1 % of the true one and its
    S/N reaches the detection threshold 7.1. Twelve signals of S/N 7-12 (batman transits
    around the Sun, 40 d at 10 min, the MES set by the planet radius): the fast search
    (Ofir grid, pre-binned, BLS kernel and FFA) recovers at least as many as astropy on its
    default grid, less one, and every signal of S/N >= 10 that astropy recovers."""
    found = {"astropy": [], "bls": [], "ffa": []}
    for period, impact, target, seed in _near_threshold_cases():
        probe = transit_lc(40, 600, period, radius=0.1, noise=1e-3, impact=impact, seed=seed)
        radius = 0.1 * math.sqrt(target / probe.meta["mes"])
        lc = transit_lc(40, 600, period, radius=radius, noise=1e-3, impact=impact, seed=seed)
        dy = lc.flux_err
        results = {"astropy": _astropy_default(lc.time, lc.flux, dy)[:2]}
        for method in ("bls", "ffa"):
            r = search_lightcurve(lc.time, lc.flux, dy, method=method)
            results[method] = (r.period, r.snr)
        for name, (p, snr) in results.items():
            found[name].append(abs(p / period - 1) < 0.01 and snr >= DETECTION_SNR)
    rates = {name: int(sum(v)) for name, v in found.items()}
    strong = [i for i, case in enumerate(_near_threshold_cases()) if case[2] >= 10]
    for method in ("bls", "ffa"):
        assert rates[method] >= rates["astropy"] - 1, rates
        assert all(found[method][i] for i in strong if found["astropy"][i]), found
    assert rates["astropy"] >= 6, rates          # the cases are near, not below, threshold


_PLATO_PROBE = """
import json, resource, sys
import numpy as np
from functions.synthesis_batman.science import synthesize
from eas_runtime.bls.search import search_lightcurve
from eas_runtime.memory import peak_rss
lc = synthesize({"duration": 730, "sampling_cadence": 25, "orbital_period": 45.3,
                 "semi_major_axis": (45.3 / 365.25) ** (2 / 3), "planet_radius": 6371 / 71492,
                 "noise": 600e-6, "t0": 7.1}, seed=3)
t, y, dy, mes = lc.time, lc.flux, lc.flux_err, lc.meta["mes"]
del lc
search_lightcurve(t[:20000], y[:20000], dy[:20000], method=sys.argv[1], period_max=2.0)
before = peak_rss()
r = search_lightcurve(t, y, dy, method=sys.argv[1], threads=2)
peak = peak_rss()
print(json.dumps({"added": peak - before, "peak": peak, "mes": mes, "n": int(t.size),
                  **r.to_dict()}))
"""


@pytest.mark.slow
@pytest.mark.parametrize("method", ["bls", "ffa"])
def test_plato_length_light_curve_in_under_a_gib(method):
    """Two years at 25 s (2,522,880 samples, 600 ppm per sample = 50 ppm in an hour) with an
    Earth around the Sun at 45.3 d (MES 17.6): the default search (0.60-365 d, 90,722 Ofir
    periods) finds it, in a process whose peak resident memory (Python, numba, the light curve
    and the search; numba's arrays are not seen by tracemalloc) stays under 1 GiB."""
    import json
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    out = subprocess.run([sys.executable, "-c", _PLATO_PROBE, method], capture_output=True,
                         text=True, cwd=root, check=False)
    assert out.returncode == 0, out.stderr[-3000:]
    r = json.loads(out.stdout.strip().splitlines()[-1])
    assert r["n"] == 2_522_880 and r["n_periods"] == 90_722
    assert r["period"] == pytest.approx(45.3, rel=1e-3)
    assert r["snr"] == pytest.approx(r["mes"], rel=0.15) and r["snr"] > DETECTION_SNR
    assert 0 <= r["added"] <= r["peak"] < 2 ** 30
