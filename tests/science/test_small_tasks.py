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
    assert verify(gapped.to_fixed_step()).verification is True


def test_verify_ranges_use_good_samples_only():
    lc = LightCurve(np.arange(4.0), [1.0, 50.0, np.nan, 0.5], flags=[0, 1, 0, 0])
    result = verify(lc)
    assert result.verification_flux_max == 1.0 and result.verification_flux_min == 0.5
    assert result.n_bad_samples == 2 and result.verification is True
