"""The experiment report in headless Chromium, for small versions of the prototype's
experiments run to the end (``tests/e2e/experiment_jobs.py``): a detection-against-size grid
with two TDAs, a timing experiment, and one with a search refused by design.

Each report page is opened from its job page; every plot must be drawn (``naturalWidth`` > 0),
each CSV link must download real CSV (fetched by the page itself, so with the browser's
headers and the site's CSP), the console must stay free of errors, and a screenshot of each
page is kept (``report-<job>.png`` in the artifacts folder).
"""
from __future__ import annotations

import csv
import io

import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import Select

from eas_runtime.embedded import EmbeddedRuntime
from tests.browser.browsing import click, console_errors, images, link_to_path, one, open_page
from tests.browser.conftest import _settings, require_chromium
from tests.e2e.experiment_jobs import run_to_the_end

FETCH = """
const done = arguments[arguments.length - 1];
fetch(arguments[0]).then(r => r.text().then(t => done({status: r.status,
    type: r.headers.get('content-type'), disposition: r.headers.get('content-disposition'), text: t})))
  .catch(e => done({status: 0, text: String(e)}));
"""


@pytest.fixture(scope="module")
def experiments(tmp_path_factory):
    require_chromium()
    runtime = EmbeddedRuntime(_settings(tmp_path_factory.mktemp("experiment-reports"))).start()
    try:
        yield runtime.index_url.rstrip("/"), run_to_the_end(runtime)
    finally:
        runtime.stop()


def _download(driver, href: str) -> list[dict]:
    answer = driver.execute_async_script(FETCH, href)
    assert answer["status"] == 200, f"{href}: {answer}"
    assert answer["type"].startswith("text/csv") and "attachment" in answer["disposition"], answer
    rows = list(csv.DictReader(io.StringIO(answer["text"])))
    assert rows and "tda" in rows[0], f"{href} is not the CSV of a report: {answer['text'][:200]!r}"
    return rows


def _open_report(driver, site: str, job: int) -> None:
    open_page(driver, f"{site}/jobs/{job}")
    console_errors(driver)                           # from here on, only the report's
    click(driver, link_to_path(driver, f"/jobs/{job}/report"))
    assert driver.current_url.startswith(f"{site}/jobs/{job}/report")


@pytest.mark.parametrize("name, plots", [
    ("earth_vs_size_batman", ["fraction", "completeness"]),
    ("bls_timing_full_span", ["timing"]),             # transit-free: no PASS fraction
    ("bls_timing_long_periods", ["timing"]),
])
def test_report_draws_its_plots_and_downloads_csv(experiments, driver, shoot, name, plots):
    site, jobs = experiments
    job = jobs[name]
    driver.set_script_timeout(60)
    _open_report(driver, site, job)
    drawn = images(driver)
    shoot(f"report-{name}")
    assert [i["src"].split("/report/")[1].split(".png")[0] for i in drawn] == plots
    for image in drawn:
        assert image["width"] > 0, f"{image['src']} was not drawn"
    links = [a.get_attribute("href") for a in driver.find_elements(By.CSS_SELECTOR, "a.csv")]
    assert len(links) == 1 + len(plots)              # the TDA table and each plot
    for href in links:
        _download(driver, href)
    table = one(driver, "table#tda-table", "TDA comparison table")
    assert "bls_reference" in table.text
    assert console_errors(driver) == []


def test_choosing_in_the_form_redraws_the_report(experiments, driver, shoot):
    site, jobs = experiments
    job = jobs["earth_vs_size_batman"]
    _open_report(driver, site, job)
    rows = _download(driver, one(driver, "#figure-fraction a.csv").get_attribute("href"))
    assert {r["tda"] for r in rows} == {"tls", "bls_reference"} and len(rows) == 6
    # the smallest planet is missed and the largest found, by both searches at both cadences
    by_size = sorted(rows, key=lambda r: float(r["size"]))
    assert {(r["pass_fraction"], r["ended"]) for r in by_size[:2]} == {("0.0", "2")}
    assert {(r["pass_fraction"], r["ended"]) for r in by_size[-2:]} == {("1.0", "2")}
    png = driver.execute_async_script(FETCH.replace("r.text()", "r.arrayBuffer()").replace(
        "text: t", "bytes: t.byteLength"), one(driver, "#figure-fraction a.png").get_attribute("href"))
    assert png["status"] == 200 and png["type"] == "image/png" and png["bytes"] > 1000, png
    # no length parameter in this job: name one in the form, with wall time
    assert not driver.find_elements(By.CSS_SELECTOR, "#figure-timing")
    form = one(driver, "form#report-choices", "the form of choices")
    Select(form.find_element(By.NAME, "length")).select_by_value("size")
    Select(form.find_element(By.NAME, "time")).select_by_value("wall")
    click(driver, form.find_element(By.CSS_SELECTOR, "button[type=submit]"))
    assert "time=wall" in driver.current_url and "length=size" in driver.current_url
    drawn = images(driver)
    shoot("report-earth_vs_size_batman-time-against-size")
    assert [i["src"].split("/report/")[1].split(".png")[0] for i in drawn] == ["fraction", "completeness",
                                                                               "timing"]
    assert all(i["width"] > 0 for i in drawn)
    assert "time=wall" in one(driver, "#figure-timing a.csv").get_attribute("href")
    assert console_errors(driver) == []
    # a bad choice: the error page names the parameter
    open_page(driver, f"{site}/jobs/{job}/report?x=nope")
    assert "x='nope'" in driver.find_element(By.TAG_NAME, "body").text
    shoot("report-bad-parameter")
    console_errors(driver)                           # the page's own 400 is logged: drained
