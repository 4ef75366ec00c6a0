"""The catalogue and star pages in headless Chromium, on a pipeline that ran the standard path
(ingest -> detrend -> planet_search -> vetting) on a star with two planets and a lone transit:
``/candidates`` sorts and filters, a candidate's page shows its report, ``/stars`` leads to the
star's page with its light curve; no script errors, nothing asked of another host, a
screenshot of each page kept."""
from __future__ import annotations

import json

import pytest
from selenium.webdriver.common.by import By

from eas_runtime.db.models import WatchRule
from eas_runtime.embedded import EmbeddedRuntime
from eas_runtime.resources import Resources
from eas_runtime.settings import PROJECT_ROOT
from tests.browser.browsing import (click, console_errors, foreign, images, network_log,
                                    open_page, requested_urls, settle)
from tests.browser.conftest import _settings, require_chromium
from tests.e2e.helpers import settled, wait_for
from tests.e2e.test_standard_path import _star


@pytest.fixture(scope="module")
def planets_site(tmp_path_factory):
    require_chromium()
    work = tmp_path_factory.mktemp("planets-site")
    runtime = EmbeddedRuntime(_settings(work / "eas-home")).start()
    try:
        template = json.loads((PROJECT_ROOT / "examples/jobs/standard_search.json").read_text())
        with runtime.db.session() as s:
            s.add(WatchRule(prefix="inbox/", task_types=[], job_template=template))
        _star(work / "star.fits")
        Resources(runtime.settings, db=runtime.db).store.put_file("inbox/star.fits",
                                                                  work / "star.fits")
        wait_for(settled(runtime.db, 4), timeout_s=600, what="the standard path")
        yield runtime.index_url.rstrip("/")
    finally:
        runtime.stop()


def _clean(driver, base):
    log = network_log(driver)
    assert console_errors(driver) == []
    assert foreign(requested_urls(driver, log, base), base) == []


def _periods(driver) -> list[str]:
    return [row.find_elements(By.TAG_NAME, "td")[4].text
            for row in driver.find_elements(By.CSS_SELECTOR, "#candidates tbody tr.candidate")]


def test_the_catalogue_sorts_filters_and_shows_each_report(planets_site, driver, shoot):
    console_errors(driver), network_log(driver)
    open_page(driver, f"{planets_site}/candidates")
    settle(driver)
    shoot("candidates")
    assert len(_periods(driver)) == 3
    assert "3 planet candidate" in driver.find_element(By.ID, "verdict-counts").text
    header = driver.find_element(By.CSS_SELECTOR, "#candidates thead a[href*='sort=period']")
    click(driver, header)
    settle(driver)
    periods = _periods(driver)
    assert [p for p in periods if p != "–"] == sorted((p for p in periods if p != "–"), key=float)
    assert periods[-1] == "–"                                   # the single event, last
    shoot("candidates-by-period")
    open_page(driver, f"{planets_site}/candidates?kind=single")
    assert len(_periods(driver)) == 1
    link = driver.find_element(By.CSS_SELECTOR, "#candidates tbody tr.candidate td a")
    click(driver, link)
    settle(driver)
    report = images(driver, "img#report")
    assert report and report[0]["width"] > 1000, report      # the report PNG was drawn
    shoot("candidate")
    _clean(driver, planets_site)


def test_the_star_page_groups_the_star(planets_site, driver, shoot):
    console_errors(driver), network_log(driver)
    open_page(driver, f"{planets_site}/stars")
    settle(driver)
    shoot("stars")
    link = driver.find_element(By.CSS_SELECTOR, "#stars tbody a")
    assert link.text == "TIC 123456789"
    click(driver, link)
    settle(driver)
    assert len(driver.find_elements(By.CSS_SELECTOR, "#star-candidates tbody tr")) == 3
    previews = images(driver, "img.preview")
    assert previews and all(p["width"] > 0 for p in previews), previews
    shoot("star")
    _clean(driver, planets_site)
