"""detrend's "auto" window: long enough for the longest transit searched, by injection and
recovery on a PLATO-like synthetic light curve and on a real Kepler quarter.

The measure is the depth a detrended light curve keeps: the same light curve is detrended with
and without the injected box transits, and the mean difference over the in-transit samples,
divided by the injected depth, is the fraction kept (the noise and the star's own variability
cancel in the difference, so the figure is the filter's alone). Measured on a 13-h, 300-ppm
transit: a quiet star 0.71 ("auto", 1.62 d) against 0.44 (1 d); a Sun-like rotation in the
window (0.1 % at 25 d) 0.64 against 0.43; Kepler-10's real quarter 0.70-0.77 against 0.41-0.48
(three epochs). A robust location filter follows a transit more as the star's trend across its
window grows, so every figure falls with activity; the tolerances below are a few hundredths
under the measured values, and "auto" must keep at least 1.4 times what a day keeps.
"""
from __future__ import annotations

import numpy as np
import pytest

from eas_runtime.bls.grid import transit_duration
from eas_runtime.lightcurve import LightCurve
from eas_runtime.lightcurve.search import robust_sigma
from eas_runtime.task_api import ParameterError
from functions.detrend.science import AUTO_FACTOR, AUTO_FLOOR, auto_window, detrend
from functions.ingest_external_lcs.science import ingest

EARTH_T14 = 13.0 / 24.0          # a central transit of the Earth across the Sun [d]


def _box(time: np.ndarray, period: float, epoch: float, duration: float) -> np.ndarray:
    phase = (time - epoch + 0.5 * period) % period - 0.5 * period
    return np.abs(phase) < duration / 2


def _kept(lc: LightCurve, inside: np.ndarray, depth: float, **options) -> tuple[float, LightCurve]:
    """Fraction of ``depth`` that detrending ``lc`` with box transits at ``inside`` keeps."""
    injected = LightCurve(lc.time, lc.flux * np.where(inside, 1 - depth, 1.0), lc.flux_err,
                          lc.flags, dict(lc.meta))
    plain, _ = detrend(lc, **options)
    flat, summary = detrend(injected, **options)
    use = inside & np.isfinite(plain.flux) & np.isfinite(flat.flux) & ~flat.flags.astype(bool)
    assert use.sum() >= 40, f"only {use.sum()} in-transit samples"
    return float(np.mean(plain.flux[use] - flat.flux[use]) / depth), flat


def test_auto_is_three_transit_durations_at_the_longest_period_and_at_least_a_day():
    # Two years (PLATO's field): the longest period searched is a year, T14 = 12.97 h.
    window, rule = auto_window(730.0)
    assert window == pytest.approx(AUTO_FACTOR * float(transit_duration(365.0)), rel=1e-12)
    assert window == pytest.approx(1.62, abs=0.01) and "P = 365 d" in rule
    assert auto_window(27.4)[0] == AUTO_FLOOR == 1.0            # a TESS sector keeps 1 d
    assert auto_window(90.0)[0] == 1.0                          # a Kepler quarter too
    # a subgiant (0.1 solar density) has transits 10^(1/3) times longer
    assert auto_window(730.0, stellar_density=0.1)[0] == pytest.approx(window * 10 ** (1 / 3), rel=1e-4)
    assert auto_window(27.4, period_max=365.0)[0] == pytest.approx(window, rel=1e-12)


@pytest.mark.parametrize("activity,least", [(0.0, 0.66), (1e-3, 0.60)], ids=["quiet", "sun-like"])
def test_auto_keeps_more_of_a_plato_earth_analogue_than_a_one_day_window(activity, least):
    """Two years at 10 min (a PLATO light curve binned), 100 ppm noise, two 13-h, 300-ppm
    transits a year apart; the star quiet, or rotating as the Sun does (0.1 % at 25 d and
    0.02 % at 8 d)."""
    rng = np.random.default_rng(11)
    time = np.arange(0.0, 730.0, 600 / 86400)
    star = 1 + activity * (np.sin(2 * np.pi * time / 25) + 0.2 * np.sin(2 * np.pi * time / 8 + 1))
    lc = LightCurve(time, star + rng.normal(0, 1e-4, time.size), np.full(time.size, 1e-4))
    inside = _box(time, 365.0, 200.0, EARTH_T14)
    kept_auto, flat = _kept(lc, inside, 3e-4, window_length="auto")
    kept_day, _ = _kept(lc, inside, 3e-4, window_length=1.0)
    assert kept_auto >= least, kept_auto
    assert kept_day <= 0.50, kept_day
    assert kept_auto >= 1.4 * kept_day, (kept_auto, kept_day)
    assert flat.meta["detrend_window_length"] == pytest.approx(1.62, abs=0.01)
    # the longer window still follows the star: out of transit, the noise is what is left
    out = ~_box(time, 365.0, 200.0, 3 * EARTH_T14) & np.isfinite(flat.flux)
    assert robust_sigma(flat.flux[out]) == pytest.approx(1e-4, rel=0.1)


def test_auto_keeps_long_transits_injected_into_a_real_kepler_quarter(real_dir):
    """Kepler-10, quarter 13 (29.4 min): 13-h, 300-ppm boxes every 30 d from three epochs,
    detrended as the standard path would a two-year light curve of this star (period_max
    365 d). Kepler-10 b's own 1.8-h transits stay in: they are in both light curves."""
    lc = ingest(real_dir / "kplr011904151-2012179063303_llc.fits")
    good = lc.good_mask()
    start = float(lc.time[good][0])
    for offset in (5.0, 12.0, 20.0):
        inside = _box(lc.time, 30.0, start + offset, EARTH_T14) & good
        kept_auto, flat = _kept(lc, inside, 3e-4, window_length="auto", period_max=365.0)
        kept_day, _ = _kept(lc, inside, 3e-4, window_length=1.0)
        assert kept_auto >= 0.66, (offset, kept_auto)
        assert kept_day <= 0.55, (offset, kept_day)
        assert kept_auto >= 1.4 * kept_day, (offset, kept_auto, kept_day)
    assert flat.meta["detrend_window_length"] == pytest.approx(1.62, abs=0.01)
    # with the quarter's own baseline the window stays a day (the standard path on this file)
    assert detrend(lc, window_length="auto")[1].window_length == 1.0


def test_auto_records_its_rule_and_checks_its_inputs():
    time = np.arange(0.0, 60.0, 0.02)
    lc = LightCurve(time, 1 + 1e-4 * np.sin(time), None)
    _, summary = detrend(lc, window_length="auto", period_max=200.0, stellar_density=1.4)
    assert summary.window_length == pytest.approx(3 * float(transit_duration(200.0, 1.4)), rel=1e-9)
    assert summary.window_rule.startswith("auto: ") and "P = 200 d" in summary.window_rule
    assert detrend(lc, window_length=0.8)[1].window_rule == "given"
    with pytest.raises(ParameterError, match="'period_max' and 'stellar_density' choose the window of "
                                             "window_length='auto'"):
        detrend(lc, window_length=0.8, period_max=100.0)
    with pytest.raises(ParameterError, match="'stellar_density' must be a number of solar densities > 0, "
                                             "got 'dense'"):
        detrend(lc, window_length="auto", stellar_density="dense")
    with pytest.raises(ParameterError, match="'stellar_density' must be between"):
        detrend(lc, window_length="auto", stellar_density=1e9)
    with pytest.raises(ParameterError, match="'period_max' must be a number of days > 0"):
        detrend(lc, window_length="auto", period_max=-3)
    with pytest.raises(ParameterError, match="'window_length' must be a number of days > 0 or 'auto' "
                                             r"\(lower case\), got 'Auto'"):
        detrend(lc, window_length="Auto")
    with pytest.raises(ParameterError, match="'window_length' must be a number of days > 0, got 'wide'"):
        detrend(lc, window_length="wide")
