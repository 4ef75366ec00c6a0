"""detrend: variability removed, transits kept, flags, parameters."""
from __future__ import annotations

import numpy as np
import pytest

from eas_runtime.lightcurve import LightCurve
from eas_runtime.lightcurve.search import in_transit, robust_sigma
from eas_runtime.task_api import InputError, ParameterError
from functions.detrend.science import METHODS, detrend


def _spotted_star(seed=5):
    """30 d at 10 min: 1 % rotational modulation (P_rot 6 d) and 0.2 % at 2.5 d, 200 ppm
    noise, and 2,000 ppm box transits of 0.12 d every 3.1 d."""
    rng = np.random.default_rng(seed)
    time = np.arange(0, 30, 600 / 86400)
    variability = 1 + 0.01 * np.sin(2 * np.pi * time / 6) + 0.002 * np.sin(2 * np.pi * time / 2.5)
    transit = np.where(in_transit(time, 3.1, 1.0, 0.12), 1 - 2e-3, 1.0)
    flux = variability * transit + rng.normal(0, 2e-4, time.size)
    return LightCurve(time, flux, np.full(time.size, 2e-4), meta={"orbital_period": 3.1}), transit


def test_biweight_removes_variability_and_keeps_transits():
    lc, transit = _spotted_star()
    flat, summary = detrend(lc, window_length=0.5)
    out = ~in_transit(lc.time, 3.1, 1.0, 0.2)
    # out of transit: the noise is about all that is left (200 ppm, within 15 %; a half-day
    # window leaves ~60 ppm of the 1 % modulation's curvature)
    assert robust_sigma(flat.flux[out]) == pytest.approx(2e-4, rel=0.15)
    inside = in_transit(lc.time, 3.1, 1.0, 0.1)
    depth = np.median(flat.flux[out]) - np.mean(flat.flux[inside])
    assert depth == pytest.approx(2e-3, rel=0.15)            # the 2,000 ppm dip survives (15 %)
    assert summary.method == "biweight" and summary.window_length == 0.5
    assert summary.scatter_before_ppm > 5000 and summary.scatter_after_ppm < 250
    assert flat.meta["detrend_method"] == "biweight" and flat.meta["orbital_period"] == 3.1
    assert "detrend(biweight, 0.5 d)" in flat.meta["provenance"]
    assert detrend(lc)[1].window_length == 1.0                # the default window
    assert np.allclose(flat.flux_err, lc.flux_err / (lc.flux / flat.flux), rtol=1e-9)


def test_bad_samples_keep_their_flag_and_edges_are_flagged():
    lc, _ = _spotted_star()
    flags = np.zeros(len(lc), bool)
    flags[100:120] = True
    flux = lc.flux.copy()
    flux[100:120] = 5.0                                      # a flagged glitch
    dirty = LightCurve(lc.time, flux, lc.flux_err, flags, lc.meta)
    flat, summary = detrend(dirty, edge_cutoff=0.5)
    assert flat.flags[100:120].all() and np.isfinite(flat.flux[100:120]).all()
    assert flat.flags[lc.time < 0.45].all() and summary.n_flagged > 0
    assert robust_sigma(flat.flux[flat.good_mask()]) < 1e-3  # the glitch did not enter the trend


@pytest.mark.parametrize("method", ["median", "savgol", "cosine"])
def test_other_methods_run(method):
    lc, _ = _spotted_star()
    flat, summary = detrend(lc, method=method, window_length=0.8)
    assert summary.method == method and np.nanstd(flat.flux) < 2e-3


def test_parameters_are_checked():
    lc, _ = _spotted_star()
    with pytest.raises(ParameterError, match=r"'method' must be one of \['biweight'.*got 'gp'"):
        detrend(lc, method="gp")
    with pytest.raises(ParameterError, match="'window_length' must be a number of days > 0, got -1"):
        detrend(lc, window_length=-1)
    with pytest.raises(ParameterError, match="'edge_cutoff'"):
        detrend(lc, edge_cutoff="wide")
    with pytest.raises(InputError, match="at least 10 good samples"):
        detrend(LightCurve(np.arange(5.0), np.ones(5)))
    assert "biweight" in METHODS and "hodges" not in METHODS
