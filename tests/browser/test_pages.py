"""Every main page of the index site renders in Chromium without a JavaScript error and without
a request to any other host (the site works offline); a screenshot of each is kept."""
from __future__ import annotations

from urllib.parse import quote

import pytest
from selenium.webdriver.common.by import By

from tests.browser.browsing import (
    console_errors,
    document_status,
    foreign,
    network_log,
    open_page,
    requested_urls,
    settle,
)

MAIN_PAGES = ["/", "/jobs", "/products", "/tasks", "/errors", "/dead-letters", "/progress",
              "/timings", "/logs", "/activity", "/functions"]


def _path(site, page: str) -> str:
    if page == "product-file":
        return "/products/file/" + quote(min(site.searched))
    if page == "task":
        return f"/tasks/{site.failed_task_id}"
    return page


@pytest.mark.parametrize("page", MAIN_PAGES + ["product-file", "task"])
def test_page_renders_offline_without_script_errors(site, driver, shoot, page):
    console_errors(driver), network_log(driver)            # forget the previous page
    url = site.at(_path(site, page))
    open_page(driver, url)
    settle(driver)
    shoot(page)
    log = network_log(driver)
    assert document_status(log, url) == 200, f"{url} answered {document_status(log, url)}"
    assert driver.find_elements(By.CSS_SELECTOR, "nav.top a[href='/products']"), \
        f"{url} does not show the site's navigation"
    assert console_errors(driver) == [], f"{url} logged errors in the browser console"
    assert foreign(requested_urls(driver, log, site.url), site.url) == [], \
        f"{url} asked another host for something: the site must work offline"
