"""eas_runtime.bls: the compiled kernel against the reference kernel and against astropy's
BoxLeastSquares on the same grids, a hand-derived case, injection-recovery, thread-count
independence, input errors and the kernel's memory.

Tolerances: on times that are not commensurate with the phase bins (random times) every column
of every period is astropy's to the last bit, for both kernels. On a regular time grid the
reference kernel is still exact; the fast one bins by reciprocal products and may put a sample
lying on a bin edge in the neighbouring bin, so there a few periods in a thousand differ and
only the best period, duration, depth, power and transit time are compared (to 1e-12).
"""
from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import numpy as np
import pytest
from astropy.timeseries import BoxLeastSquares

from eas_runtime.bls import BLSPower, _kernel, bls, methods
from eas_runtime.bls.methods import COLUMNS
from tests.science.conftest import REPO_ROOT

OBJECTIVES = ("likelihood", "snr")


def _case(seed, n=1200, span=30.0, period=3.1, duration=0.12, depth=3e-3, sort=True):
    """Random times, a periodic box dip, heteroscedastic noise."""
    rng = np.random.default_rng(seed)
    t = rng.uniform(0, span, n) + 2457000.0
    if sort:
        t = np.sort(t)
    dy = rng.uniform(8e-4, 1.2e-3, n)
    y = 1 + dy * rng.standard_normal(n)
    y[((t - t.min() - 1.3) % period) < duration] -= depth
    return t, y, dy


def _astropy(t, y, dy, periods, durations, objective="likelihood", oversample=10):
    result = BoxLeastSquares(t, y, dy).power(periods, durations, objective=objective,
                                             oversample=oversample)
    return {c: np.asarray(result[c]) for c in COLUMNS}


def _assert_identical(ours: BLSPower, theirs: dict):
    for column in COLUMNS:
        np.testing.assert_array_equal(getattr(ours, column), theirs[column], err_msg=column)


# ---------------------------------------------------------------- equal to astropy
GRIDS = {
    "dense around the period": (np.linspace(2.9, 3.3, 400), [0.08, 0.12, 0.16]),
    "log-spaced, one duration": (np.geomspace(0.5, 12.0, 300), [0.1]),
    "unsorted periods, odd durations": (np.random.default_rng(9).uniform(0.4, 9.0, 200),
                                        [0.137, 0.05, 0.29]),
    "fifteen durations": (np.geomspace(1.0, 8.0, 150), 0.05 * 1.1 ** np.arange(15)),
}


@pytest.mark.parametrize("grid", sorted(GRIDS))
@pytest.mark.parametrize("objective", OBJECTIVES)
@pytest.mark.parametrize("with_dy", [True, False])
def test_fast_and_reference_are_astropy_to_the_last_bit(grid, objective, with_dy):
    t, y, dy = _case(1)
    periods, durations = GRIDS[grid]
    dy = dy if with_dy else None
    theirs = _astropy(t, y, dy, periods, durations, objective)
    for method in ("fast", "reference"):
        _assert_identical(bls(t, y, dy, periods, durations, objective=objective,
                              method=method), theirs)


def test_sparse_light_curve_with_gaps_many_durations():
    """Few samples and a long gap: most boxes are empty or hold one sample (the box search's
    bounds meet zero weights and ties)."""
    t, y, dy = _case(11, n=300)
    keep = (t - t.min() < 8) | (t - t.min() > 19)
    t, y, dy = t[keep], y[keep], dy[keep]
    periods, durations = np.geomspace(0.7, 12.0, 400), 0.03 * 1.15 ** np.arange(12)
    for objective in OBJECTIVES:
        theirs = _astropy(t, y, dy, periods, durations, objective)
        _assert_identical(bls(t, y, dy, periods, durations, objective=objective), theirs)


@pytest.mark.parametrize("oversample", [1, 3, 25])
def test_other_oversampling(oversample):
    t, y, dy = _case(2)
    periods, durations = np.linspace(1.0, 6.0, 250), [0.07, 0.15]
    theirs = _astropy(t, y, dy, periods, durations, oversample=oversample)
    _assert_identical(bls(t, y, dy, periods, durations, oversample=oversample), theirs)


def test_unsorted_times_give_astropys_result_on_the_same_order():
    t, y, dy = _case(3, sort=False)
    periods, durations = np.linspace(2.0, 4.0, 300), [0.1, 0.2]
    theirs = _astropy(t, y, dy, periods, durations)
    _assert_identical(bls(t, y, dy, periods, durations), theirs)
    order = np.argsort(t)
    resorted = bls(t[order], y[order], dy[order], periods, durations)
    np.testing.assert_allclose(resorted.power, theirs["power"], rtol=1e-9)


def test_single_period_and_a_scalar_uncertainty():
    t, y, _ = _case(4)
    theirs = _astropy(t, y, 1e-3, [3.1], [0.12])
    for method in ("fast", "reference"):
        ours = bls(t, y, 1e-3, [3.1], [0.12], method=method)
        assert ours.power.shape == (1,)
        _assert_identical(ours, theirs)


def test_regular_time_grid_best_box_is_astropys():
    """Times on a 10-minute grid: bin edges fall on samples; the reference kernel stays exact,
    the fast one agrees at the peak."""
    t = np.arange(0.0, 120.0, 600 / 86400)
    rng = np.random.default_rng(5)
    y = 1 + rng.normal(0, 3e-4, t.size)
    y[((t - 2.0) % 7.3) < 0.12] -= 1e-3
    dy = np.full(t.size, 3e-4)
    periods, durations = 1 / np.linspace(1 / 20, 1, 1500), [0.05, 0.1, 0.2]
    theirs = _astropy(t, y, dy, periods, durations)
    _assert_identical(bls(t, y, dy, periods, durations, method="reference"), theirs)
    fast = bls(t, y, dy, periods, durations)
    best = int(np.argmax(theirs["power"]))
    assert int(np.argmax(fast.power)) == best and abs(periods[best] - 7.3) < 0.01
    for column in ("power", "depth", "duration", "transit_time"):
        assert getattr(fast, column)[best] == pytest.approx(theirs[column][best], rel=1e-12)
    differing = np.sum(fast.power != theirs["power"])
    assert differing <= periods.size // 100, differing


# ---------------------------------------------------------------- conventions
def test_a_hand_made_box_has_the_textbook_statistics():
    """Independent derivation: equal weights, samples at -d inside a box and 0 elsewhere: the
    median is 0, depth = d exactly, log-likelihood = 0.5 * n_in * d**2, snr =
    d / sqrt(1 / n_in + 1 / n_out)."""
    # 20 d every 0.01 d, half a step off the 0.02 d phase bins (a first sample sets phase 0)
    t = np.concatenate([[0.0], 0.005 + np.arange(1999) * 0.01])
    period, duration, d = 2.5, 0.2, 0.004
    inside = ((t - 0.3) % period) < duration         # 20 samples per transit, 8 transits
    y = np.where(inside, -d, 0.0)
    n_in = int(inside.sum())
    for objective in OBJECTIVES:
        for method in ("fast", "reference"):
            r = bls(t, y, None, [period], [duration], objective=objective, method=method)
            assert r.depth[0] == pytest.approx(d, rel=1e-12)
            assert r.log_likelihood[0] == pytest.approx(0.5 * n_in * d * d, rel=1e-12)
            snr = d / np.sqrt(1 / n_in + 1 / (t.size - n_in))
            assert r.depth_snr[0] == pytest.approx(snr, rel=1e-12)
            assert r.power[0] == (r.log_likelihood[0] if objective == "likelihood"
                                  else r.depth_snr[0])
            assert r.duration[0] == pytest.approx(duration, rel=1e-12)
            assert r.transit_time[0] == pytest.approx(0.3 + duration / 2, abs=1e-9)


def test_durations_not_shorter_than_a_period_are_skipped_there():
    t, y, dy = _case(6)
    durations = [0.2, 0.3]
    periods = np.array([0.15, 0.25, 0.5, 2.0])
    for method in ("fast", "reference"):
        r = bls(t, y, dy, periods, durations, method=method)
        # 0.15 d: no duration fits: astropy's -inf power, NaN elsewhere
        assert r.power[0] == -np.inf and np.all(np.isnan([r.depth[0], r.duration[0],
                                                          r.transit_time[0]]))
        # 0.25 d: only the 0.2 d boxes, on the bins of the full grid (same shortest duration)
        only_short = _astropy(t, y, dy, [0.25], [0.2])
        assert r.power[1] == only_short["power"][0] and r.depth[1] == only_short["depth"][0]
        both = _astropy(t, y, dy, periods[2:], durations)
        np.testing.assert_array_equal(r.power[2:], both["power"])
        np.testing.assert_array_equal(r.transit_time[2:], both["transit_time"])


def test_kernels_take_weighted_fluxes_as_separate_arrays_too():
    """The public kernels' signature: (x, yw, w, ...); the fast one uses the (n, 2) array of
    weighted_fluxes without a copy, and makes one from separate arrays."""
    t, y, dy = _case(12)
    pairs = methods.weighted_fluxes(y, dy)
    x = t - t.min()
    args = (np.linspace(2, 4, 100), np.array([0.1, 0.15]), 10, True)
    assert _kernel._pairs(pairs[:, 0], pairs[:, 1]) is pairs
    views = methods.fast(x, pairs[:, 0], pairs[:, 1], *args)
    separate = methods.fast(x, pairs[:, 0].copy(), pairs[:, 1].copy(), *args)
    slow = methods.reference(x, pairs[:, 0].copy(), pairs[:, 1].copy(), *args)
    for a, b, c in zip(views, separate, slow):
        np.testing.assert_array_equal(a, b)
        np.testing.assert_array_equal(a, c)
    np.testing.assert_array_equal(pairs[:, 1], 1.0 / dy ** 2)
    np.testing.assert_array_equal(pairs[:, 0], (y - np.median(y)) * (1.0 / dy ** 2))


def test_result_record():
    t, y, dy = _case(7)
    r = bls(t, y, dy, np.linspace(2, 4, 50), [0.1])
    record = r.to_dict()
    assert list(record) == list(COLUMNS)
    assert all(isinstance(v, np.ndarray) and v.shape == (50,) for v in record.values())
    json.dumps({k: v.tolist() for k, v in record.items()})
    with pytest.raises(AttributeError):
        r.power = None


# ---------------------------------------------------------------- threads
def test_result_does_not_depend_on_the_thread_count():
    t, y, dy = _case(8, n=5000, span=60.0)
    periods, durations = np.geomspace(0.5, 20.0, 997), [0.05, 0.1, 0.15]
    one = bls(t, y, dy, periods, durations, threads=1)
    two = bls(t, y, dy, periods, durations, threads=2)
    for column in COLUMNS:
        np.testing.assert_array_equal(getattr(one, column), getattr(two, column))
    assert _kernel.thread_count(2, periods.size) == min(2, _kernel.numba.config.NUMBA_NUM_THREADS)
    assert _kernel.thread_count(None, 3) == 1          # one group of periods: one thread


# ---------------------------------------------------------------- injection-recovery
@pytest.mark.parametrize("period_d, duration_d, depth", [(1.7, 0.08, 800e-6),
                                                         (6.3, 0.21, 500e-6)])
def test_injected_box_is_recovered(period_d, duration_d, depth):
    """90 days at 10 minutes, 300 ppm white noise, a box transit: the peak is at the true
    period (within two grid steps), the duration within one phase bin, the depth within 3 sigma, the epoch within a quarter of the duration."""
    t = np.arange(0.0, 90.0, 600 / 86400)
    rng = np.random.default_rng(int(period_d * 10))
    y = 1 + rng.normal(0, 3e-4, t.size)
    t0 = 0.77
    y[np.abs((t - t0 + period_d / 2) % period_d - period_d / 2) < duration_d / 2] -= depth
    dy = np.full(t.size, 3e-4)
    periods = 1 / np.linspace(1 / 15, 1 / 0.8, 20000)
    durations = np.array([0.04, 0.08, 0.12, 0.16, 0.21, 0.25])
    r = bls(t, y, dy, periods, durations)
    best = int(np.argmax(r.power))
    step = abs(periods[best] - periods[best - 1])
    bin_d = durations.min() / 10
    assert abs(periods[best] - period_d) <= 2 * step
    assert abs(r.duration[best] - duration_d) <= bin_d + 1e-12
    phase = (r.transit_time[best] - t0 + period_d / 2) % period_d - period_d / 2
    assert abs(phase) < duration_d / 4
    assert abs(r.depth[best] - depth) < 3 * r.depth_err[best]


# ---------------------------------------------------------------- bad input
@pytest.mark.parametrize("name", ["t", "y", "dy", "periods", "durations"])
def test_non_finite_values_are_refused_naming_the_array(name):
    t, y, dy = _case(9, n=100)
    args = {"t": t, "y": y, "dy": dy, "periods": np.array([1.0, 2.0]),
            "durations": np.array([0.1, 0.2])}
    args[name] = args[name].copy()
    args[name][1] = np.nan
    with pytest.raises(ValueError, match=rf"^{name} has 1 non-finite values.*index 1"):
        bls(**args)


@pytest.mark.parametrize("change, message", [
    ({"y": np.ones(5)}, "t and y must have the same length"),
    ({"dy": -np.ones(100)}, "dy must be positive"),
    ({"dy": np.full(100, 1e-200)}, r"dy must be large enough for 1 / dy\*\*2 to be finite"),
    ({"periods": [[1.0, 2.0]]}, "periods must be a 1-D array"),
    ({"periods": []}, "periods is empty"),
    ({"durations": [0.1, -0.2]}, "durations must be positive days"),
    ({"objective": "chi2"}, "objective must be one of"),
    ({"oversample": 0}, "oversample must be an integer >= 1"),
    ({"oversample": 2.5}, "oversample must be an integer >= 1"),
    ({"method": "slow"}, "method must be one of"),
    ({"threads": 0}, "threads must be None or an integer >= 1"),
    ({"t": "abc"}, "t must be numbers"),
])
def test_bad_arguments_are_refused_with_a_message(change, message):
    t, y, dy = _case(10, n=100)
    args = {"t": t, "y": y, "dy": dy, "periods": [1.0, 2.0], "durations": [0.1]}
    args.update(change)
    with pytest.raises(ValueError, match=message):
        bls(**args)


# ---------------------------------------------------------------- memory
MEMORY_PROBE = textwrap.dedent("""
    import json, resource, sys
    import numpy as np
    from eas_runtime.bls import bls, _kernel
    from eas_runtime.memory import peak_rss
    n, n_periods = int(sys.argv[1]), int(sys.argv[2])
    t = np.arange(n) * (25 / 86400)                   # 2 years at 25 s
    rng = np.random.default_rng(0)
    y = 1 + rng.normal(0, 1e-3, n)
    dy = np.full(n, 1e-3)
    periods = np.geomspace(1.0, 40.0, n_periods)
    durations = np.array([0.04, 0.08, 0.16])
    bls(t[:5000], y[:5000], dy[:5000], periods[:3], durations)   # load the compiled code
    before = peak_rss()
    r = bls(t, y, dy, periods, durations, threads=2)
    after = peak_rss()
    work = _kernel.work_bytes(n, 40.0, 0.04, 10, _kernel.thread_count(2, n_periods))
    print(json.dumps({"before": before, "after": after, "work": work,
                      "best": float(periods[np.argmax(r.power)])}))
""")


def test_a_plato_length_light_curve_needs_memory_of_the_samples_and_bins_only():
    """2.5 million samples, 300 periods: the peak resident memory grows by the kernel's work
    arrays (per thread GROUP + 1 slabs of bins, and the (n, 2) weighted fluxes) and the
    relative times, nothing of size samples x periods
    (which would be 6 GB) nor periods x bins; under 1 GiB in all."""
    n, n_periods = 2_500_000, 300
    probe = subprocess.run([sys.executable, "-c", MEMORY_PROBE, str(n), str(n_periods)],
                           capture_output=True, text=True, timeout=600, check=True,
                           cwd=REPO_ROOT)
    m = json.loads(probe.stdout.strip().splitlines()[-1])
    threads = _kernel.thread_count(2, n_periods)
    most_bins = 40.0 / 0.004 + 10 + 3                  # longest period / bin + oversample + 3
    per_thread = (_kernel.GROUP + 1) * most_bins * 16 + _kernel.GROUP * _kernel.CHUNK * 4
    assert m["work"] <= n * 16 + threads * per_thread
    # besides the weighted fluxes (in work): the relative times
    copies = n * 8
    assert m["after"] - m["before"] <= m["work"] + copies + 16 * 2 ** 20
    assert m["after"] < 2 ** 30
