"""null, error and verify."""
from __future__ import annotations

import json

import numpy as np
import pytest

from eas_runtime.lightcurve import LightCurve, read_lightcurve
from functions.error.science import error
from functions.null.science import NullResult, null
from functions.verify.science import VerifyResult, verify


def test_null_sleeps_and_reports():
    result = null(0.05)
    assert isinstance(result, NullResult) and result.slept_s >= 0.05
    assert null().slept_s < 0.05 and set(null().to_dict()) == {"slept_s"}
    with pytest.raises(ValueError, match="duration_s"):
        null(-1)


def test_error_always_raises_a_clear_runtime_error():
    with pytest.raises(RuntimeError, match="always fails"):
        error()
    with pytest.raises(RuntimeError, match="custom"):
        error("custom")


def test_verify_fixed_step_sample(functions_dir):
    lc = read_lightcurve(functions_dir / "verify/sample/batman_fixed_step.fits")
    result = verify(lc)
    assert isinstance(result, VerifyResult) and result.verification is True
    assert result.n_samples == 1440 and result.n_bad_samples == 0
    assert result.verification_time_min == 0.0
    assert result.verification_time_max == pytest.approx(1439 * 600 / 86400, abs=1e-9)
    # tolerance: the step is 600 s to 1e-6 s (float rounding of days)
    assert result.sampling_interval_s == pytest.approx(600.0, abs=1e-6)
    assert result.verification_flux_min == pytest.approx(lc.flux.min())
    assert result.verification_flux_max == pytest.approx(lc.flux.max())
    json.dumps(result.to_dict())


def test_verify_gapped_curve_fails_the_fixed_step_check(functions_dir):
    lc = read_lightcurve(functions_dir / "verify/sample/batman_fixed_step.fits")
    gapped = lc.select(np.arange(len(lc)) % 97 != 50)  # drop 15 samples, one every 97
    result = verify(gapped)
    assert result.verification is False and result.n_samples == 1425
    assert result.sampling_interval_s == pytest.approx(600.0, abs=1e-6)
    assert result.n_gaps == 15 and result.n_irregular_steps == 0
    assert result.longest_gap_d == pytest.approx(1200 / 86400, abs=1e-9)
    assert result.verification_reason.startswith("not a fixed step: 15 gap(s) in the 600 s raster")
    assert verify(gapped.to_fixed_step()).verification is True
    assert verify(gapped.to_fixed_step()).verification_reason == ""


def test_verify_says_where_the_steps_are_irregular():
    t = np.arange(0.0, 1.0, 0.01)
    t[40:] += 0.003                              # one step 4.3 min long in a 14.4 min raster
    result = verify(LightCurve(t, np.ones(t.size)))
    assert result.verification is False and result.n_gaps == 0 and result.n_irregular_steps == 1
    assert "1 irregular step(s)" in result.verification_reason
    assert "after t = 0.390000 d" in result.verification_reason


def test_verify_explains_a_real_tess_sector(real_dir):
    from functions.ingest_external_lcs.science import ingest
    result = verify(ingest(real_dir / "tess2018206045859-s0001-0000000038846515-0120-s_lc.fits"))
    assert result.verification is False and result.n_gaps >= 1
    assert result.longest_gap_d > 1.0                         # the sector's mid-orbit downlink
    assert "1 gap(s) in the 120.001 s raster" in result.verification_reason


def test_verify_ranges_use_good_samples_only():
    lc = LightCurve(np.arange(4.0), [1.0, 50.0, np.nan, 0.5], flags=[0, 1, 0, 0])
    result = verify(lc)
    assert result.verification_flux_max == 1.0 and result.verification_flux_min == 0.5
    assert result.n_bad_samples == 2 and result.verification is True
