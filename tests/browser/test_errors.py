"""From the list of failed attempts to the failed task and its traceback, by clicking: each
failure shows its cause first, its traceback folded below it until asked for."""
from __future__ import annotations

from selenium.webdriver.common.by import By

from eas_runtime.diagnostics.errors import error_cause
from tests.browser.browsing import click, link_to_path, one, open_page, path_of
from tests.browser.conftest import BAD_UPLOAD


def _last_line(text: str) -> str:
    return [line for line in text.strip().splitlines() if line.strip()][-1].strip()


def test_failed_ingest_leads_to_its_task_and_traceback(site, driver, shoot):
    task_path = f"/tasks/{site.failed_task_id}"
    open_page(driver, site.at("/errors"))
    one(driver, "table#errors", "table of failed attempts")
    rows = [tr for tr in driver.find_elements(By.CSS_SELECTOR, "table#errors tr")
            if "ingest_external_lcs" in tr.text and tr.find_elements(By.CSS_SELECTOR, "a[href]")]
    row = next((tr for tr in rows if any(path_of(a.get_attribute("href")) == task_path
                                         for a in tr.find_elements(By.CSS_SELECTOR, "a[href]"))), None)
    assert row is not None, f"no row of the failed ingest linking to {task_path} in table#errors"
    cause = one(row, "p.cause", "cause of the failed ingest")
    assert cause.is_displayed() and cause.text.strip() == error_cause(site.failed_error_text)
    details = one(row, "details.traceback", "folded traceback")
    pre = one(details, "pre.traceback", "traceback")
    assert not pre.is_displayed(), "the traceback is not folded"
    assert cause.location["y"] < details.location["y"], "the cause is not above the traceback"
    one(details, "summary", "traceback's summary").click()
    assert pre.is_displayed() and BAD_UPLOAD in pre.text, f"the unfolded traceback does not name {BAD_UPLOAD}"
    shoot("errors-unfolded")

    click(driver, link_to_path(driver, task_path, within="table#errors"))
    assert path_of(driver.current_url) == task_path
    shoot("task")
    attempts = one(driver, "table#attempts", "table of attempts")
    numbers = {td.text.strip().lstrip("#") for td in attempts.find_elements(By.TAG_NAME, "td")}
    assert str(site.failed_attempt_number) in numbers, \
        f"attempt {site.failed_attempt_number} is not listed in table#attempts"
    assert one(attempts, "p.cause", "cause").text.strip() == error_cause(site.failed_error_text)
    one(attempts, "details.traceback summary", "traceback's summary").click()
    traceback = one(attempts, "pre.traceback", "traceback").text
    assert BAD_UPLOAD in traceback, "the traceback does not name the bad upload"
    assert _last_line(site.failed_error_text) in traceback, "the traceback is not the recorded one"
