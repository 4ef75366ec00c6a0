"""Plots large enough to read, with the light curve's time system on the time axis, and a
detrended light curve drawn with the raw one it came from (issue 14, item 6, part 5)."""
from __future__ import annotations

import numpy as np
import pytest
from sqlalchemy import select

from eas_runtime.db import metadata as md
from eas_runtime.db.models import Product
from eas_runtime.invoke import create_task, load_runner
from eas_runtime.lightcurve import LightCurve, write_lightcurve
from eas_runtime.settings import PROJECT_ROOT
from eas_runtime.site import plots
from tests.site.test_site_products import client, latest_version, put, tags  # noqa: F401
from tests.site.test_site_search_plots import png_size

TESS_SAMPLE = PROJECT_ROOT / "functions" / "ingest_external_lcs" / "sample" / "tess_wasp126_first_3.5d.fits"


@pytest.mark.parametrize("meta, axis", [
    ({"time_system": "BTJD", "time_reference_bjd": 2457000.0}, "BTJD (BJD − 2457000)"),
    ({"time_system": "BTJD"}, "BTJD (BJD − 2457000)"),
    ({"time_system": "bkjd", "time_reference_bjd": 2454833.0}, "BKJD (BJD − 2454833)"),
    ({"time_system": "BJD", "time_reference_bjd": 2450000.0}, "BJD − 2450000"),
    ({"time_system": "BJD", "time_reference_bjd": 0.0}, "BJD"),
    ({"time_system": "BTJD", "time_reference_bjd": 2457100.0}, "BJD − 2457100"),
    ({"time_system": "MJD", "time_reference_bjd": 2400000.5}, "MJD (JD − 2400000.5)"),
    ({"time_system": "HJD", "time_reference_bjd": 2450000.0}, "HJD − 2450000"),
    ({"time_reference_bjd": 2454833.0}, "BJD − 2454833"),
    ({}, "time"), ({"time_system": None, "time_reference_bjd": "n/a"}, "time"),
])
def test_time_axis_names_the_time_system(meta, axis):
    assert plots.time_axis(meta) == axis


def test_plots_are_1200_by_480_pixels():
    assert plots.PIXELS == (1200, 480) and plots.PIXELS_TALL == (1200, 720)
    assert plots.DPI >= 120, "text drawn at a low dpi is unreadable once the page scales it"


def test_a_tess_light_curve_is_drawn_against_btjd(resources, client):  # noqa: F811
    version = put(resources, "inbox/tess_wasp126.fits", TESS_SAMPLE.read_bytes())
    data = client.get(f"/api/plots/{version}/lc").get_json()
    assert data["x"]["name"] == "BTJD (BJD − 2457000)" and data["x"]["unit"] == "d"
    assert data["pixels"] == [1200, 480]
    assert min(data["x"]["values"]) > 1000            # BTJD of sector 1, not days from 0
    response = client.get(f"/plots/{version}/lc.png")
    assert response.status_code == 200 and png_size(response.data) == (1200, 480)
    page = client.get("/products/file/inbox/tess_wasp126.fits").get_data(as_text=True)
    assert [(i["width"], i["height"]) for i in tags(page, "img", class_="plot")] == [("1200", "480")]


def test_a_light_curve_without_a_time_system_says_time(resources, client, tmp_path):  # noqa: F811
    lc = LightCurve(time=np.linspace(0, 5, 500), flux=np.ones(500), meta={})
    version = put(resources, "inbox/plain.fits", write_lightcurve(lc, tmp_path / "p.fits").read_bytes())
    assert client.get(f"/api/plots/{version}/lc").get_json()["x"]["name"] == "time"


@pytest.fixture
def detrended(resources, tmp_path):
    """A light curve with a slow 2 % wave and 0.5 % transits, detrended through the
    function's wrapper as ``eas invoke`` does."""
    time = 1400.0 + np.arange(0, 12, 10 / 1440)
    wave = 1 + 0.02 * np.sin(2 * np.pi * time / 5.0)
    transit = np.where(((time - 1401.3) % 3.1) < 0.1, 0.995, 1.0)
    rng = np.random.default_rng(5)
    lc = LightCurve(time=time, flux=wave * transit * (1 + 3e-4 * rng.standard_normal(time.size)),
                    meta={"time_system": "BTJD", "time_reference_bjd": 2457000.0})
    path = write_lightcurve(lc, tmp_path / "raw.fits")
    runner = load_runner("detrend", resources)
    ready = create_task(resources, "detrend", {"lightcurve": path}, {}, {}, "job1")
    runner.run(ready.task_id, ready.attempt_id)
    with resources.db.read() as s:
        keys = s.scalars(select(Product.key).order_by(Product.id)).all()
        assert md.get_metadata(s, "attempt", ready.attempt_id), "detrend recorded no result"
    raw_key = "job1/inputs/lightcurve/raw.fits"
    flat_key = next(k for k in keys if k != raw_key)
    return {"raw": raw_key, "flat": flat_key, "task_id": ready.task_id, "attempt_id": ready.attempt_id}


def test_a_detrended_light_curve_is_drawn_over_its_raw_one(resources, client, detrended):  # noqa: F811
    flat, raw = latest_version(resources, detrended["flat"]), latest_version(resources, detrended["raw"])
    page = client.get(f"/products/file/{detrended['flat']}").get_data(as_text=True)
    images = tags(page, "img", class_="plot")
    assert [(i["src"], i["width"], i["height"]) for i in images] == [
        (f"/plots/{flat}/detrended.png", "1200", "720")]
    assert f'href="/products/file/{detrended["raw"]}"' in page
    data = client.get(f"/api/plots/{flat}/detrended").get_json()
    assert data["raw"]["key"] == detrended["raw"] and data["pixels"] == [1200, 720]
    assert data["x"]["name"] == data["trend"]["x"]["name"] == data["flat"]["x"]["name"] \
        == "BTJD (BJD − 2457000)"
    assert (data["y"]["name"], data["trend"]["y"]["name"], data["flat"]["y"]["name"]) == (
        "raw flux", "trend", "detrended flux")
    trend, flat_flux = np.array(data["trend"]["y"]["values"]), np.array(data["flat"]["y"]["values"])
    assert np.ptp(trend) > 0.03 > 0.02 > np.ptp(flat_flux)        # the wave is in the trend only
    assert data["detrend"]["detrend_method"] == "biweight"
    response = client.get(f"/plots/{flat}/detrended.png")
    assert response.status_code == 200 and png_size(response.data) == (1200, 720)
    # the raw light curve itself is not a detrended one
    missing = client.get(f"/api/plots/{raw}/detrended")
    assert missing.status_code == 404 and "no detrend task wrote" in missing.get_json()["error"]
