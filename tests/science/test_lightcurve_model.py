"""LightCurve: validation, truncation, sampling, fixed step, resampling and arithmetic."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from eas_runtime.lightcurve import LightCurve

from .conftest import make_lc


# ---------------------------------------------------------------- construction
def test_construction_copies_and_freezes_arrays():
    time = np.arange(5.0)
    lc = LightCurve(time, np.ones(5), meta={"n": np.int64(3), "x": np.float32(0.5), "ok": True})
    time[0] = -1  # the caller's array is copied, not shared
    assert lc.time[0] == 0.0
    with pytest.raises(ValueError):
        lc.flux[0] = 2.0  # read-only
    assert lc.flags.dtype == np.uint8 and not lc.flags.any()
    assert lc.flux_err is None
    assert lc.meta == {"n": 3, "x": 0.5, "ok": True}
    assert type(lc.meta["n"]) is int and type(lc.meta["x"]) is float


@pytest.mark.parametrize("kwargs, message", [
    ({"time": np.arange(5.0), "flux": np.ones(4)}, "flux has 4 samples"),
    ({"time": np.arange(4.0), "flux": np.ones(4), "flux_err": np.ones(3)}, "flux_err has 3"),
    ({"time": np.ones((2, 2)), "flux": np.ones((2, 2))}, "must be 1-D"),
    ({"time": [0.0, 2.0, 1.0], "flux": np.ones(3)}, "strictly increasing"),
    ({"time": [0.0, 1.0, 1.0], "flux": np.ones(3)}, "strictly increasing"),
    ({"time": [0.0, np.nan], "flux": np.ones(2)}, "not finite"),
    ({"time": [0.0], "flux": [1.0], "meta": {"bad": [1, 2]}}, "meta['bad']"),
])
def test_construction_rejects_inconsistent_input(kwargs, message):
    with pytest.raises(ValueError, match=message.replace("[", r"\[").replace("]", r"\]")):
        LightCurve(**kwargs)


def test_flags_are_0_or_1_and_good_drops_bad_and_nan():
    lc = LightCurve(np.arange(5.0), [1.0, np.nan, 1.0, 1.0, 1.0], flags=[0, 0, 4, 0, 1])
    assert lc.flags.tolist() == [0, 0, 1, 0, 1]
    good = lc.good()
    assert good.time.tolist() == [0.0, 3.0]


def test_with_meta_returns_a_new_object():
    lc = make_lc(meta={"a": 1})
    other = lc.with_meta(b="x", a=2)
    assert lc.meta == {"a": 1} and other.meta == {"a": 2, "b": "x"}
    assert np.array_equal(other.flux, lc.flux)


# ---------------------------------------------------------------- truncate, duration
def test_duration_and_truncate_keep_first_days_from_first_sample():
    lc = make_lc(n=101, step=0.1, t0=100.0)
    assert lc.duration == pytest.approx(10.0, abs=1e-9)
    short = lc.truncate(2.5)
    # samples strictly before t0 + 2.5 d: 100.0 .. 102.4 (tolerance: exact count)
    assert len(short) == 25 and short.time[-1] == pytest.approx(102.4)
    assert "truncate(2.5 d)" in short.meta["provenance"]
    assert len(lc.truncate(1e9)) == len(lc)
    with pytest.raises(ValueError):
        lc.truncate(0)


# ---------------------------------------------------------------- sampling interval, fixed step
def test_sampling_interval_is_robust_to_gaps():
    step = 120.0 / 86400
    time = np.arange(2000) * step
    keep = np.ones(time.size, bool)
    keep[100:400] = keep[1000:1010] = keep[1500:1700] = False  # three gaps
    lc = LightCurve(time[keep], np.ones(keep.sum()))
    # tolerance: 1e-9 of a 120 s step
    assert lc.estimate_sampling_interval() == pytest.approx(step, rel=1e-9)


def test_fixed_step_check_tolerates_jitter_but_not_gaps():
    step = 600.0 / 86400
    time = np.arange(500) * step
    jitter = np.random.default_rng(1).uniform(-1, 1, time.size)
    assert LightCurve(time, np.ones(500)).is_fixed_step()
    assert LightCurve(time + 2e-5 * jitter, np.ones(500)).is_fixed_step()  # 2e-5 d << 1e-4 d
    assert not LightCurve(time + 3e-4 * jitter, np.ones(500)).is_fixed_step()
    gapped = np.delete(time, [200])
    assert not LightCurve(gapped, np.ones(gapped.size)).is_fixed_step()


def test_to_fixed_step_fills_gaps_with_flagged_samples():
    lc = make_lc(n=100, step=0.5, flux_err=np.full(100, 0.01))
    gapped = lc.select(~np.isin(np.arange(100), np.arange(10, 15)))
    fixed = gapped.to_fixed_step()
    assert len(fixed) == 100 and fixed.is_fixed_step()
    assert np.allclose(fixed.time, lc.time, atol=1e-12)
    assert fixed.flags[10:15].tolist() == [1] * 5 and fixed.flags.sum() == 5
    assert fixed.meta["n_filled_samples"] == 5
    # filled flux: linear interpolation between the neighbours (tolerance 1e-12)
    expected = np.interp(lc.time[10:15], gapped.time, gapped.flux)
    assert np.allclose(fixed.flux[10:15], expected, atol=1e-12)
    assert np.array_equal(fixed.flux[:10], lc.flux[:10])
    assert np.isnan(fixed.flux_err[10:15]).all() and np.allclose(fixed.flux_err[:10], 0.01)


# ---------------------------------------------------------------- resampling
def test_resample_aligned_bins_conserve_the_integral_exactly():
    rng = np.random.default_rng(2)
    src = make_lc(n=100, step=1.0, flux=1 + rng.normal(0, 0.01, 100))
    new_time = 0.75 + 2.5 * np.arange(40)  # bins [-0.5, 99.5], like the source
    out = src.resample(new_time)
    # integral of flux over time, tolerance 1e-12 relative
    assert np.sum(out.flux * 2.5) == pytest.approx(np.sum(src.flux * 1.0), rel=1e-12)
    assert not out.flags.any()


def test_resample_equals_an_independent_numerical_integral():
    rng = np.random.default_rng(3)
    src = make_lc(n=200, step=0.1, flux=1 + rng.normal(0, 0.01, 200))
    new_time = np.linspace(1.03, 18.7, 57)
    out = src.resample(new_time)
    half = 0.5 * np.median(np.diff(new_time))
    # independent derivation: midpoint-rule average of the source step function over each bin
    # (1e5 points per bin; error bounded by 2 steps * 0.04 flux jump / 1e5 -> tolerance 1e-6)
    for t, f in zip(new_time, out.flux):
        x = np.linspace(t - half, t + half, 100_001)
        x = 0.5 * (x[1:] + x[:-1])
        idx = np.clip(np.rint(x / 0.1).astype(int), 0, 199)
        assert f == pytest.approx(src.flux[idx].mean(), abs=1e-6)


def test_resample_averages_errors_and_keeps_gaps_empty():
    src = make_lc(n=400, step=1.0, flux_err=np.full(400, 0.02))
    src = src.select((src.time < 100) | (src.time >= 200))  # a 100-sample gap
    out = src.resample(1.5 + 4.0 * np.arange(100))  # bins of 4 samples
    covered = (out.time < 98) | (out.time > 202)
    # mean of 4 equal-error samples: error / 2 (tolerance 1e-12)
    assert np.allclose(out.flux_err[covered], 0.01, rtol=1e-12)
    inside = (out.time > 102) & (out.time < 198)
    assert out.flags[inside].all() and np.isnan(out.flux[inside]).all()
    assert not out.flags[covered].any()


def test_resample_ignores_bad_samples():
    flux = np.ones(100)
    flux[50] = 100.0
    src = make_lc(n=100, flux=flux, flags=(np.arange(100) == 50))
    out = src.resample(np.arange(100.0) + 0.3)
    assert np.allclose(out.flux[np.isfinite(out.flux)], 1.0)


@settings(max_examples=30, deadline=None)
@given(st.integers(2, 60), st.floats(0.3, 7.0), st.floats(-0.49, 0.49))
def test_resample_conserves_flux_over_the_covered_span(n_new, ratio, shift):
    """Property: with a fully covered span, sum(new flux * new width) equals the source
    integral over that span (tolerance 1e-9 relative)."""
    rng = np.random.default_rng(n_new)
    src = make_lc(n=600, step=1.0, flux=1 + rng.normal(0, 0.1, 600))
    width = ratio
    new_time = 50.0 + shift + width * np.arange(n_new)
    if new_time[-1] + width / 2 > 599:
        return
    out = src.resample(new_time)
    lo, hi = new_time[0] - width / 2, new_time[-1] + width / 2
    edges = np.arange(601) - 0.5
    overlap = np.clip(np.minimum(edges[1:], hi) - np.maximum(edges[:-1], lo), 0, None)
    assert np.sum(out.flux * width) == pytest.approx(np.sum(overlap * src.flux), rel=1e-9)


# ---------------------------------------------------------------- arithmetic
def test_multiply_resamples_the_second_curve_and_adds_relative_errors():
    a = make_lc(n=50, step=1.0, flux=np.ones(50), flux_err=np.full(50, 0.01),
                meta={"name": "a", "keep": 1})
    b = make_lc(n=200, step=0.25, t0=-0.375, flux=np.full(200, 2.0),
                flux_err=np.full(200, 0.04), meta={"name": "b"})
    product = a * b
    assert np.array_equal(product.time, a.time)
    assert np.allclose(product.flux, 2.0)
    # relative errors 1 % and 2 %/sqrt(4) = 1 % in quadrature -> 1.414 %; tolerance 1e-9
    assert np.allclose(product.flux_err, 2.0 * np.hypot(0.01, 0.01), rtol=1e-9)
    assert product.meta["name"] == "b" and product.meta["keep"] == 1  # second one wins


def test_add_and_subtract_add_errors_in_quadrature():
    a = make_lc(n=20, flux=np.full(20, 3.0), flux_err=np.full(20, 0.3))
    b = make_lc(n=20, flux=np.full(20, 1.0), flux_err=np.full(20, 0.4))
    assert np.allclose((a + b).flux, 4.0) and np.allclose((a - b).flux, 2.0)
    assert np.allclose((a + b).flux_err, 0.5) and np.allclose((a - b).flux_err, 0.5)
    assert (a + make_lc(n=20)).flux_err is not None
    assert (make_lc(n=20) + make_lc(n=20)).flux_err is None


def test_arithmetic_propagates_flags():
    a = make_lc(n=10, flags=np.arange(10) == 2)
    b = make_lc(n=10, flags=np.arange(10) == 7)
    assert (a * b).flags.nonzero()[0].tolist() == [2, 7]
