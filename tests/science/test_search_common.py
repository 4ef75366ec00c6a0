"""What every transit search shares: settings, input preparation, statistics, the result
record and the periodogram product."""
from __future__ import annotations

import json
import math

import numpy as np
import pytest

from eas_runtime.lightcurve import LightCurve
from eas_runtime.lightcurve.search import (DETECTION_SNR, UNITS, SearchResult, box_depth_snr, in_transit,
                                           number, period_range, positive_days, prepare,
                                           read_periodogram, robust_sigma, sde, settings_from,
                                           transit_count, write_periodogram)
from eas_runtime.task_api import InputError, ParameterError


def test_settings_name_unknown_keys_and_list_the_allowed_ones():
    with pytest.raises(ParameterError, match=r"unknown search setting\(s\) \['periodmin'\].*"
                                             r"allowed: \['period_max', 'period_min'\]"):
        settings_from({"periodmin": 1}, {"period_min": 0.5, "period_max": None}, task="t")
    with pytest.raises(ParameterError, match="must be an object"):
        settings_from([1, 2], {"period_min": 0.5}, task="t")
    assert settings_from({"period_min": None}, {"period_min": 0.5}, task="t") == {"period_min": 0.5}


@pytest.mark.parametrize("value", ["x", -1, 0, math.nan, True, None])
def test_number_names_the_setting_and_the_bad_value(value):
    with pytest.raises(ParameterError, match=rf"'nb' must be an integer > 0, got {value!r}"):
        number({"nb": value}, "nb", positive=True, integer=True)


def test_number_accepts_integral_floats_and_optional_none():
    assert number({"nb": 10.0}, "nb", integer=True) == 10
    assert number({}, "x", optional=True) is None
    assert positive_days(None, "lc_duration") is None
    with pytest.raises(ParameterError, match="'lc_duration' must be a positive number of days, got 'a'"):
        positive_days("a", "lc_duration")


def test_period_range_defaults_and_errors():
    assert period_range({"period_min": 0.5}, 40.0) == (0.5, 20.0)
    assert period_range({"period_min": 1, "period_max": 5}, 40.0, min_transits=3) == (1.0, 5.0)
    with pytest.raises(ParameterError, match="empty period range"):
        period_range({"period_min": 30}, 40.0)
    with pytest.raises(ParameterError, match="longest transit duration"):
        period_range({"period_min": 0.1}, 40.0, shortest_duration=0.2)


def test_prepare_normalises_the_good_samples_and_finds_the_target(lc_factory):
    flags = np.zeros(100, int)
    flags[3] = 1
    lc = lc_factory(n=100, step=0.1, flux=np.full(100, 2.0), flags=flags,
                    meta={"orbital_period": 3.5, "mes": 12.0, "other": 1})
    data = prepare(lc, lc_duration=5.0)
    assert data.time.size == 49 and np.allclose(data.flux, 1.0)      # 50 samples, one flagged
    assert data.target_period == 3.5 and data.signal == {"mes": 12.0}
    assert prepare(lc, target_period=2.0).target_period == 2.0
    with pytest.raises(InputError, match="at least 10 good samples"):
        prepare(lc_factory(n=5))
    with pytest.raises(InputError, match="median flux is"):
        prepare(lc_factory(n=20, flux=np.zeros(20)))


def test_statistics_of_a_hand_made_box():
    time = np.arange(0.0, 20.0, 0.01)
    flux = np.ones(time.size)
    dip = in_transit(time, 4.0, 1.0, 0.2)
    flux[dip] -= 1e-3
    rng = np.random.default_rng(1)
    noisy = flux + rng.normal(0, 1e-4, time.size)
    assert transit_count(time, 4.0, 1.0, 0.2) == 5
    assert transit_count(time, 4.0, 1.0 + 4.0 * 3, 0.2) == 5      # any epoch of the series
    lc = LightCurve(time, noisy)
    depth, snr = box_depth_snr(prepare(lc), 4.0, 1.0, 0.2)
    # 100 samples in transit, 1e-4 scatter: depth 1000 +- 10 ppm, S/N 1000 / 10 = 100 (+- 15 %)
    assert depth == pytest.approx(1000, abs=40) and snr == pytest.approx(100, rel=0.15)
    assert robust_sigma(rng.normal(0, 2.0, 100_000)) == pytest.approx(2.0, rel=0.02)
    power = np.zeros(1000)
    power[10] = 1.0
    assert sde(power) == pytest.approx((1 - 1e-3) / np.std(power))
    assert math.isnan(sde(np.ones(10)))


def _result(snr=8.0, **extra):
    data = prepare(LightCurve(np.arange(20.0), np.ones(20), meta={"orbital_period": 5.0,
                                                                  "mes": 7.5}))
    return SearchResult.build(data, period=5.1, epoch=1.0, duration=0.1, depth=math.inf,
                              power=np.float64(3.0), snr=snr, sde_value=9.0, count=np.int64(4),
                              periodogram={"period": np.array([4.0, 5.1]),
                                           "power": np.array([0.5, 3.0]),
                                           "transit_count": np.array([5, 4])},
                              extra=extra)


def test_result_record_is_json_with_units_and_qc():
    result = _result(period_span=3)
    record = result.to_dict()
    json.dumps(record)
    assert record["outcome"] == "PASS" and record["target_period"] == 5.0
    assert record["depth"] is None and record["detected"] is True  # non-finite -> None
    assert record["mes"] == 7.5 and record["period_span"] == 3
    assert type(record["transit_count"]) is int and type(record["power"]) is float
    assert result.units["period"] == "d" and result.units["depth"] == "ppm"
    assert set(result.units) <= set(UNITS) and "outcome" not in result.units


def test_a_peak_near_the_target_below_the_detection_threshold_fails():
    """Regression of the prototype's rule (period within 3 % of the target, nothing else): a
    noise peak near the target passed. PASS now also needs snr >= 7.1."""
    assert DETECTION_SNR == 7.1
    for snr in (7.0, math.nan, None):
        record = _result(snr=snr).to_dict()
        assert record["outcome"] == "FAIL" and record["detected"] is False
    assert _result(snr=7.1).outcome == "PASS"


def test_periodogram_product_round_trip(tmp_path):
    result = _result()
    path = write_periodogram(result, tmp_path / "p.fits", task_type="transit_search_x")
    columns = read_periodogram(path)
    assert set(columns) == {"period", "power", "transit_count"}
    assert np.array_equal(columns["period"], [4.0, 5.1])
    assert columns["transit_count"].dtype.kind == "i"
    from astropy.io import fits
    with fits.open(path) as hdul:
        assert hdul["PERIODOGRAM"].header["TASKTYPE"] == "transit_search_x"
        assert hdul["PERIODOGRAM"].header["BESTPER"] == 5.1
        assert hdul["PERIODOGRAM"].columns["PERIOD"].unit == "d"


def test_search_qc_accepts_a_stated_no_signal_and_nothing_else_without_a_period():
    from eas_runtime.qc import check_result
    assert check_result("transit_search_tls", {"period": None, "power": 0.0,
                                               "no_signal": "TLS fitted no transit"}) == []
    assert check_result("transit_search_tls", {"period": None, "power": 0.0}) == ["search result lacks 'period'"]
    assert check_result("transit_search_tls", {"period": None, "power": None, "no_signal": "x"}) == \
        ["search result lacks 'power'"]
    assert check_result("transit_search_tls", {"period": None, "power": 0.0, "no_signal": ""}) == \
        ["search result lacks 'period'"]
