"""Experiment reports of small versions of the prototype's experiments, run to the end on the
embedded runtime (``tests/e2e/experiment_jobs.py``), read over real HTTP from its index site."""
from __future__ import annotations

import csv
import io
import math

import pytest
import requests

from eas_runtime.embedded import EmbeddedRuntime
from tests.e2e.experiment_jobs import run_to_the_end
from tests.e2e.helpers import embedded_settings

PNG = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def experiments(tmp_path_factory):
    runtime = EmbeddedRuntime(embedded_settings(tmp_path_factory.mktemp("experiments"))).start()
    try:
        jobs = run_to_the_end(runtime)
        yield runtime.index_url.rstrip("/"), jobs
    finally:
        runtime.stop()


def _get(url: str, **kw) -> requests.Response:
    response = requests.get(url, timeout=60, **kw)
    assert response.status_code == 200, f"{url}: {response.status_code} {response.text[:300]}"
    return response


def _csv(url: str) -> list[dict]:
    response = _get(url)
    assert response.headers["Content-Type"].startswith("text/csv")
    return list(csv.DictReader(io.StringIO(response.text)))


def test_detection_against_size(experiments):
    site, jobs = experiments
    job = jobs["earth_vs_size_batman"]
    report = _get(f"{site}/api/jobs/{job}/report").json()
    assert report["tdas"] == ["bls_reference", "tls"]
    assert [p["name"] for p in report["parameters"]] == ["cadence", "size"]     # tda is the type
    assert report["plots"] == {"fraction": True, "completeness": True, "timing": False}
    table = {r["tda"]: r for r in report["tda_table"]}
    for tda in ("tls", "bls_reference"):
        assert (table[tda]["tasks"], table[tda]["ended"], table[tda]["missing"]) == (6, 6, 0)
        assert table[tda]["cpu_s_mean"] > 0 and table[tda]["cpu_s_median"] > 0
    assert report["fraction"]["x"] == "size"                 # the most values
    series = {s["tda"]: s["points"] for s in report["fraction"]["series"]}
    for tda, points in series.items():
        assert len(points) == 3 and [p["ended"] for p in points] == [2, 2, 2]
        smallest, largest = points[0], points[-1]
        # Rearth/4 (5 ppm) is far below the noise; 4 Rearth (1,300 ppm, 6 transits) is not
        assert smallest["pass_fraction"] == 0.0, (tda, smallest)
        assert largest["pass_fraction"] == 1.0, (tda, largest)
        assert 0 < largest["low"] < 1 and largest["high"] == 1.0
    rows = _csv(f"{site}/jobs/{job}/report/fraction.csv")
    assert len(rows) == 6 and set(rows[0]) >= {"tda", "size", "pass_fraction", "wilson_low"}
    assert _get(f"{site}/jobs/{job}/report/fraction.png").content.startswith(PNG)
    cells = _csv(f"{site}/jobs/{job}/report/completeness.csv")
    assert report["completeness"]["x"] == "size" and report["completeness"]["y"] == "cadence"
    assert len(cells) == 2 * 3 * 2 and {r["cadence"] for r in cells} == {"300", "900"}
    assert _get(f"{site}/jobs/{job}/report/completeness.png").content.startswith(PNG)
    assert _get(f"{site}/jobs/{job}/report/timing.png", params={"length": "size"}).content.startswith(PNG)
    bad = requests.get(f"{site}/api/jobs/{job}/report", params={"x": "tda"}, timeout=60)
    assert bad.status_code == 400 and "x='tda'" in bad.json()["error"]


def test_search_time_against_length(experiments):
    site, jobs = experiments
    job = jobs["bls_timing_full_span"]
    report = _get(f"{site}/api/jobs/{job}/report").json()
    assert report["length_parameter"] == "lc_length"
    # transit-free light curves only: search time, no PASS fraction
    assert report["plots"] == {"fraction": False, "completeness": False, "timing": True}
    assert report["transits_injected"] is False
    assert requests.get(f"{site}/jobs/{job}/report/fraction.png", timeout=60).status_code == 404
    (series,) = report["timing"]["series"]
    assert [p["lc_length"] for p in series["points"]] == [7, 14, 28]
    assert all(p["mean_s"] > 0 for p in series["points"])
    assert series["fit"]["points"] == 3 and math.isfinite(series["fit"]["exponent"])
    (row,) = report["tda_table"]
    assert row["transit_free"] == 3 and row["detections"] == 0 and row["missing"] == 0
    assert row["significant"] == row["false_alarms"]          # every detection here is false
    rows = _csv(f"{site}/jobs/{job}/report/timing.csv")
    assert [float(r["lc_length"]) for r in rows] == [7, 14, 28]
    assert float(rows[0]["fit_exponent"]) == pytest.approx(series["fit"]["exponent"])
    assert _get(f"{site}/jobs/{job}/report/timing.png").content.startswith(PNG)


def test_a_refused_search_is_missing_not_fail(experiments):
    site, jobs = experiments
    job = jobs["bls_timing_long_periods"]
    report = _get(f"{site}/api/jobs/{job}/report").json()
    (row,) = report["tda_table"]
    assert (row["tasks"], row["ended"], row["missing"]) == (2, 1, 1)
    assert report["timing"]["missing"] == 1
    points = report["timing"]["series"][0]["points"]
    assert [(p["lc_length"], p["ended"], p["missing"]) for p in points] == [(84, 0, 1), (252, 1, 0)]
    assert report["timing"]["series"][0]["fit"] is None       # one length timed: no slope
    assert _csv(f"{site}/jobs/{job}/report/tdas.csv")[0]["missing"] == "1"
