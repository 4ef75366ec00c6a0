"""The science first, in Chromium on the pipeline that ran: a search's task page opens on its
periodogram and fold, the timings table on the parameters and results (issue 14, item 6)."""
from __future__ import annotations

from sqlalchemy import select
from selenium.webdriver.common.by import By

from eas_runtime.db.models import DONE, Attempt, Task
from eas_runtime.site import plots
from tests.browser.browsing import open_page, settle, wait
from tests.e2e.helpers import CHAIN

SEARCH = CHAIN[-1]


def _search_task(site) -> Task:
    with site.runtime.db.read() as s:
        return s.scalars(select(Task).where(Task.task_type == SEARCH, Task.state == DONE)
                         .order_by(Task.id)).first()


def test_a_search_task_page_opens_on_its_periodogram_and_fold(site, driver, shoot):
    task = _search_task(site)
    open_page(driver, site.at(f"/tasks/{task.id}"))
    images = driver.find_elements(By.CSS_SELECTOR, "#plots img.plot")
    assert [i.get_attribute("alt").split(":")[0] for i in images] == [
        "light curve folded at the period found", "periodogram"]
    wait(driver, lambda d: all(d.execute_script("return arguments[0].complete && arguments[0].naturalWidth", i)
                               for i in images), "the search's plots to load")
    for image in images:
        natural = driver.execute_script("return [arguments[0].naturalWidth, arguments[0].naturalHeight]", image)
        assert tuple(natural) == plots.PIXELS
        # drawn to the page's width at most, never wider than the window
        assert image.size["width"] <= driver.execute_script("return document.documentElement.clientWidth")
    period = driver.find_element(By.XPATH, "//div[@id='found']//tr[td[1]='period']")
    assert period.find_elements(By.TAG_NAME, "td")[2].text == "d"
    first_h2 = driver.find_elements(By.CSS_SELECTOR, "h2")[0]
    assert first_h2.text == "What the search found"
    settle(driver)
    shoot("task-search")


def test_the_timings_table_puts_results_before_bookkeeping(site, driver, shoot):
    task = _search_task(site)
    open_page(driver, site.at(f"/timings?job={task.job_id}&task_type={SEARCH}"))
    headers = [th.text.split(" [")[0] for th in driver.find_elements(By.CSS_SELECTOR, "table.results thead th")]
    assert headers.index("period") < headers.index("wall_s") < headers.index("task_id")
    assert headers[-5:] == ["task_id", "name", "path", "state", "attempts"]
    period = next(th.text for th in driver.find_elements(By.CSS_SELECTOR, "table.results thead th")
                  if th.text.startswith("period"))
    assert period == "period [d]"
    shoot("timings-search")


def test_activity_opens_on_the_newest_job_coloured_by_task_type(site, driver, shoot):
    with site.runtime.db.read() as s:      # the newest job: that of the newest attempt that started
        newest = s.scalar(select(Task.job_id).join(Attempt, Attempt.task_id == Task.id)
                          .where(Attempt.started_at.is_not(None)).order_by(Attempt.id.desc()).limit(1))
        types = set(s.scalars(select(Task.task_type).join(Attempt, Attempt.task_id == Task.id)
                              .where(Task.job_id == newest, Attempt.started_at.is_not(None))))
    open_page(driver, site.at("/activity"))
    assert driver.find_element(By.ID, "window").text == f"the attempts of job {newest}, the newest"
    fills = {}
    for bar in driver.find_elements(By.CSS_SELECTOR, "svg#activity rect.attempt"):
        kind = bar.find_element(By.TAG_NAME, "title").get_attribute("textContent").split(" ")[2].rstrip(",")
        fills.setdefault(kind, set()).add(driver.execute_script(
            "return getComputedStyle(arguments[0]).fill", bar))
    assert types <= set(fills), f"bars of {sorted(fills)}, the newest job ran {sorted(types)}"
    assert all(len(f) == 1 for f in fills.values()), "a task type drawn in two colours"
    assert len({next(iter(f)) for f in fills.values()}) == len(fills), "two task types share a colour"
    legend = [li.text.strip() for li in driver.find_elements(By.CSS_SELECTOR, "ul#legend li")]
    assert set(fills) <= set(legend)
    shoot("activity-default")
