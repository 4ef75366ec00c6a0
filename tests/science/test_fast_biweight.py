"""The fast biweight (functions/detrend/fast_biweight.py) against wotan's biweight, its
reference: every sample to round-off, the interpolated grid within 10 ppm rms (edges and gaps
included) on synthetic and real light curves; the other methods still go through wotan."""
from __future__ import annotations

import numpy as np
import pytest
from wotan import flatten

from eas_runtime.lightcurve import LightCurve
from eas_runtime.task_api import ParameterError
from functions.detrend.fast_biweight import biweight_trend, default_step, grid_step
from functions.detrend.science import detrend
from functions.ingest_external_lcs.science import ingest
from tests.science.test_real_data import PLANETS

LIMIT_PPM = 10.0


def _star(days=12.0, cadence_s=25.0, noise=6e-4, seed=3):
    """Spot modulation (1 % at 4.3 d, 0.3 % at 1.7 d), white noise, 1,500 ppm transits of
    0.1 d every 2.3 d, a flare, and gaps: 0.3 d (inside a segment at break_tolerance 0.5) and
    1 d (a new segment)."""
    rng = np.random.default_rng(seed)
    t = np.arange(0.0, days, cadence_s / 86400)
    t = t[~(((t > 3.0) & (t < 3.3)) | ((t > 7.0) & (t < 8.0)))]
    f = 1 + 0.01 * np.sin(2 * np.pi * t / 4.3) + 0.003 * np.cos(2 * np.pi * t / 1.7)
    f *= np.where(((t - 0.4) % 2.3) < 0.1, 1 - 1.5e-3, 1.0)
    f += np.where((t > 5.0) & (t < 5.02), 5e-3, 0.0)
    return t, f + rng.normal(0, noise, t.size)


def _rms_ppm(trend, reference, where=None):
    ratio = trend / reference - 1
    if where is not None:
        ratio = ratio[where]
    return float(np.sqrt(np.nanmean(ratio ** 2)) * 1e6)


def _edges(t, half, break_tolerance=0.5):
    """Samples within half a window of a segment's first or last sample."""
    cuts = np.concatenate(([0], np.flatnonzero(np.diff(t) > break_tolerance) + 1, [t.size]))
    near = np.zeros(t.size, bool)
    for a, b in zip(cuts[:-1], cuts[1:]):
        near[a:b] = (t[a:b] < t[a] + half) | (t[a:b] > t[b - 1] - half)
    return near


@pytest.mark.parametrize("edge_cutoff", [0.0, 0.3])
def test_every_sample_is_wotans_trend(edge_cutoff):
    t, f = _star(days=6.0, cadence_s=120.0)
    ref = biweight_trend(t, f, 0.8, edge_cutoff=edge_cutoff, kernel="wotan")
    ours = biweight_trend(t, f, 0.8, edge_cutoff=edge_cutoff, step=0)
    assert np.array_equal(np.isnan(ours), np.isnan(ref)) and np.isnan(ref).any() == (edge_cutoff > 0)
    assert np.nanmax(np.abs(ours / ref - 1)) < 1e-12


@pytest.mark.parametrize("edge_cutoff", [0.0, 0.4])
def test_grid_within_10_ppm_of_wotan_on_a_spotted_star(edge_cutoff):
    """12 days at 25 s (41,000 samples): the grid path (not every sample) is taken."""
    t, f = _star()
    step = default_step(t, f, 1.0)
    assert step > 10 * 25 / 86400                       # centres more than 10 samples apart
    ref = biweight_trend(t, f, 1.0, edge_cutoff=edge_cutoff, kernel="wotan")
    ours = biweight_trend(t, f, 1.0, edge_cutoff=edge_cutoff)
    assert np.array_equal(np.isnan(ours), np.isnan(ref))
    assert _rms_ppm(ours, ref) < LIMIT_PPM / 2
    near = _edges(t, 0.5)
    assert _rms_ppm(ours, ref, near) < LIMIT_PPM
    # the same on one thread: the chunks do not depend on the thread count
    assert np.array_equal(biweight_trend(t, f, 1.0, edge_cutoff=edge_cutoff, threads=1), ours,
                          equal_nan=True)


def test_a_coarse_grid_is_measurably_worse():
    """The test can fail: centres a quarter window apart miss the trend's curvature."""
    t, f = _star()
    ref = biweight_trend(t, f, 1.0, kernel="wotan")
    assert _rms_ppm(biweight_trend(t, f, 1.0, step=0.25), ref) > LIMIT_PPM


@pytest.mark.parametrize("name", sorted(PLANETS))
def test_real_light_curves_within_10_ppm(real_dir, name):
    """Every real curve, on the noise-set grid (forced: these are small enough that the default
    evaluates every sample) and by default."""
    lc = ingest(real_dir / name)
    good = lc.good_mask()
    t, f = lc.time[good], lc.flux[good]
    ref = biweight_trend(t, f, 1.0, kernel="wotan")
    step = grid_step(t, f, 1.0)
    grid = biweight_trend(t, f, 1.0, step=step)
    assert np.array_equal(np.isnan(grid), np.isnan(ref))
    assert _rms_ppm(grid, ref) < LIMIT_PPM
    assert _rms_ppm(grid, ref, _edges(t, 0.5)) < LIMIT_PPM
    assert _rms_ppm(biweight_trend(t, f, 1.0), ref) < 1e-3     # default: every sample


def test_detrend_uses_the_fast_kernel_and_wotan_on_request():
    t, f = _star(days=4.0, cadence_s=120.0)
    lc = LightCurve(t, f, np.full(t.size, 6e-4))
    flat, summary = detrend(lc)
    assert summary.kernel == "fast" and flat.meta["detrend_kernel"] == "fast"
    exact, summary = detrend(lc, kernel="wotan")
    _, trend = flatten(t, f, window_length=1.0, break_tolerance=0.5, return_trend=True)
    assert summary.kernel == "wotan" and np.allclose(exact.flux, f / trend, rtol=1e-12)
    assert _rms_ppm(f / flat.flux, trend) < LIMIT_PPM
    with pytest.raises(ParameterError, match=r"'kernel' must be one of \['fast', 'wotan'\], got 'gpu'"):
        detrend(lc, kernel="gpu")


@pytest.mark.parametrize("method", ["median", "welsch"])
def test_other_methods_still_go_through_wotan(method):
    t, f = _star(days=4.0, cadence_s=120.0)
    flat, summary = detrend(LightCurve(t, f), method=method, window_length=0.7)
    _, trend = flatten(t, f, method=method, window_length=0.7, break_tolerance=0.5,
                       return_trend=True)
    assert summary.kernel == "wotan" and np.allclose(flat.flux, f / trend, rtol=1e-12)
