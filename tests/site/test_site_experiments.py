"""/jobs/<id>/report, its JSON twin, PNG and CSV routes, on rows inserted into the database."""
from __future__ import annotations

import csv
import io
import itertools

import pytest

from eas_runtime.site import create_app
from eas_runtime.site._headers import CONTENT_SECURITY_POLICY
from tests.diagnostics.builders import Rows

PNG = b"\x89PNG\r\n\x1a\n"


def _search(rows, job, tda, state, meta, results=None, cpu=None):
    task = rows.task(job, f"transit_search_{tda}", state=state, params={"metadata": meta})
    if state != "waiting":
        rows.attempt(task, error_kind="science" if state == "failed" else "", wall_s=cpu,
                     cpu_s=cpu, cpu_children_s=cpu, metadata=results or {})


@pytest.fixture
def site(resources):
    rows = Rows(resources.db)
    grid = rows.job("detection <grid>")
    for (t, tda), (i, size), (k, period) in itertools.product(
            enumerate(("tls", "bls_reference")), enumerate((0.25, 1.0, 4.0)),
            enumerate((3.0, 30.0, 300.0))):
        meta = {"tda": tda, "tda_index": t, "size": size, "size_index": i, "period": period,
                "period_index": k, "tool": "psls" if k else "batman", "tool_index": int(k > 0)}
        state = "failed" if (t, i, k) == (0, 0, 2) else "done"
        _search(rows, grid, tda, state, meta, {"outcome": "PASS" if size > 0.5 else "FAIL",
                                               "detected": size > 0.5 or (t, k) == (1, 0),
                                               "pixels_in_transit": 30}, cpu=2.0 + i)
    timing = rows.job("timing")
    for (i, length), (k, cadence) in itertools.product(enumerate((7.0, 14.0, 28.0)), enumerate((25, 600))):
        meta = {"lc_length": length, "lc_length_index": i, "cadence": cadence, "cadence_index": k}
        _search(rows, timing, "bls_reference", "done", meta,
                {"outcome": "FAIL", "detected": False, "pixels_in_transit": 0}, cpu=0.1 * length ** 2 / cadence)
    plain = rows.job("no searches")
    rows.task(plain, "verify", state="done")
    return {"client": create_app(resources).test_client(), "grid": grid, "timing": timing, "plain": plain}


def _csv(response) -> list[dict]:
    assert response.status_code == 200, response.get_data(as_text=True)
    assert response.mimetype == "text/csv" and "attachment" in response.headers["Content-Disposition"]
    return list(csv.DictReader(io.StringIO(response.get_data(as_text=True))))


def test_report_json_and_page(site):
    client, job = site["client"], site["grid"]
    data = client.get(f"/api/jobs/{job}/report").get_json()
    assert data["tdas"] == ["bls_reference", "tls"] and data["name"] == "detection <grid>"
    assert data["plots"] == {"fraction": True, "completeness": True, "timing": False}
    table = {r["tda"]: r for r in data["tda_table"]}
    assert (table["tls"]["ended"], table["tls"]["missing"], table["tls"]["detections"]) == (8, 1, 6)
    assert table["bls_reference"]["false_alarms"] == 1      # size 0.25 at period 3: detected, FAIL
    assert data["fraction"]["x"] in ("size", "period") and data["timing"] is None
    page = client.get(f"/jobs/{job}/report")
    html = page.get_data(as_text=True)
    assert page.status_code == 200 and page.headers["Content-Security-Policy"] == CONTENT_SECURITY_POLICY
    assert "detection &lt;grid&gt;" in html and "<grid>" not in html
    assert f'src="/jobs/{job}/report/fraction.png"' in html and "completeness.png" in html
    assert "timing.png" not in html and 'id="tda-table"' in html
    assert "<script>" not in html and "style=" not in html
    assert f'href="/jobs/{job}/report"' in client.get(f"/jobs/{job}").get_data(as_text=True)


def test_plots_are_png_and_their_csv_the_numbers(site):
    client, job = site["client"], site["grid"]
    for plot in ("fraction", "completeness"):
        response = client.get(f"/jobs/{job}/report/{plot}.png?map_x=size&map_y=period")
        assert response.status_code == 200 and response.mimetype == "image/png"
        assert response.data.startswith(PNG)
        assert response.headers["Content-Security-Policy"] == CONTENT_SECURITY_POLICY
    rows = _csv(site["client"].get(f"/jobs/{job}/report/fraction.csv?x=size"))
    assert list(rows[0])[:3] == ["tda", "size", "tasks"]
    tls = {r["size"]: r for r in rows if r["tda"] == "tls"}
    assert tls["0.25"]["missing"] == "1" and tls["0.25"]["pass_fraction"] == "0.0"
    assert tls["4.0"]["pass_fraction"] == "1.0" and float(tls["4.0"]["wilson_low"]) < 1.0
    cells = _csv(client.get(f"/jobs/{job}/report/completeness.csv?map_x=size&map_y=tool"))
    assert {r["tool"] for r in cells} == {"batman", "psls"} and len(cells) == 2 * 3 * 2
    tdas = _csv(client.get(f"/jobs/{job}/report/tdas.csv"))
    assert [r["tda"] for r in tdas] == ["bls_reference", "tls"] and tdas[1]["missing"] == "1"
    split = _csv(client.get(f"/jobs/{job}/report/fraction.csv?x=period&by=tool"))
    assert {r["tool"] for r in split} == {"batman", "psls"}


def test_timing_plot_with_the_fitted_exponent(site):
    client, job = site["client"], site["timing"]
    data = client.get(f"/api/jobs/{job}/report").get_json()
    assert data["length_parameter"] == "lc_length" and data["plots"]["timing"]
    (series,) = data["timing"]["series"]
    assert series["fit"]["exponent"] == pytest.approx(2.0)
    assert client.get(f"/jobs/{job}/report/timing.png?by=cadence&time=wall").data.startswith(PNG)
    rows = _csv(client.get(f"/jobs/{job}/report/timing.csv?by=cadence"))
    assert len(rows) == 6 and {"cadence", "lc_length", "mean_cpu_s", "fit_exponent"} <= set(rows[0])
    assert float(rows[0]["fit_exponent"]) == pytest.approx(2.0)
    html = client.get(f"/jobs/{job}/report").get_data(as_text=True)
    assert "timing.png" in html and "2.000" in html
    # by splits the timing plot although this job has no PASS fraction; time is a setting
    split = client.get(f"/api/jobs/{job}/report?by=cadence&time=wall").get_json()
    assert len(split["timing"]["series"]) == 2 and split["fraction"] is None
    assert client.get(f"/jobs/{job}/report?by=cadence").status_code == 200
    assert client.get(f"/api/jobs/{site['grid']}/report?time=wall").status_code == 200
    refused = client.get(f"/api/jobs/{job}/report?x=lc_length")
    assert refused.status_code == 400 and "no fraction plot" in refused.get_json()["error"]
    table = {r["tda"]: r for r in data["tda_table"]}
    assert table["bls_reference"]["transit_free"] == 6


@pytest.mark.parametrize("query, name", [
    ("x=nope", "x"), ("map_x=size&map_y=size", "map_x"), ("by=size&x=size", "by"),
    ("time=gpu", "time"), ("length=tool", "length"), ("by=period&length=period", "by"), ("x=" + "a" * 1001, "x"),
    ("map_y=%00", "map_y"),
])
def test_bad_parameters_are_400_naming_them(site, query, name):
    client, job = site["client"], site["grid"]
    for path in (f"/api/jobs/{job}/report", f"/jobs/{job}/report/fraction.csv",
                 f"/jobs/{job}/report"):
        response = client.get(f"{path}?{query}")
        assert response.status_code == 400, (path, query)
        assert name in response.get_data(as_text=True)
    assert client.get(f"/api/jobs/{job}/report?{query}").get_json()["error"].startswith(name)


def test_unknown_jobs_and_plots_are_404(site):
    client = site["client"]
    for path in ("/jobs/99999/report", "/api/jobs/99999/report", "/jobs/99999/report/fraction.png",
                 "/jobs/99999/report/tdas.csv", f"/jobs/{site['grid']}/report/pie.png",
                 f"/jobs/{site['grid']}/report/pie.csv", f"/jobs/{site['grid']}/report/timing.png",
                 "/jobs/99999999999999999999/report"):
        assert client.get(path).status_code == 404, path
    assert "no job 99999" in client.get("/api/jobs/99999/report").get_json()["error"]


def test_a_job_without_searches(site):
    client, job = site["client"], site["plain"]
    data = client.get(f"/api/jobs/{job}/report").get_json()
    assert data["task_types"] == [] and data["tda_table"] == [] and data["fraction"] is None
    assert 'id="no-searches"' in client.get(f"/jobs/{job}/report").get_data(as_text=True)
    assert client.get(f"/jobs/{job}/report/fraction.png").status_code == 404
    assert client.get(f"/api/jobs/{job}/report?x=size").status_code == 400
