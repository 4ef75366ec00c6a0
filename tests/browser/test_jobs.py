"""Submitting a job from /jobs with the API token, watching it finish, and a wrong token."""
from __future__ import annotations

import json
import re

from selenium.webdriver.common.by import By
from sqlalchemy import func, select

from eas_runtime.db.models import Job
from eas_runtime.jobs import compile_job
from eas_runtime.settings import PROJECT_ROOT
from tests.browser.browsing import loaded, one, open_page, path_of, wait

JOB_FILE = PROJECT_ROOT / "examples" / "jobs" / "control_flow_demo.json"   # null tasks only


def _submit(driver, token: str) -> str:
    """Fill form#submit-job with ``token`` and JOB_FILE, submit, return #job-result's text."""
    form = one(driver, "form#submit-job", "job submission form")
    token_input = one(driver, "form#submit-job input[name=token], form#submit-job input[type=password]",
                      "token field")
    wait(driver, lambda d: token_input.is_enabled(), "the form to be enabled")
    token_input.clear()
    token_input.send_keys(token)
    one(driver, "form#submit-job input[type=file]", "job file field").send_keys(str(JOB_FILE))
    before = driver.execute_script("var b = document.getElementById('job-result'); return b ? b.textContent : null;")
    form.find_element(By.CSS_SELECTOR, "button[type=submit], input[type=submit]").click()

    def answered(d):
        box = d.find_elements(By.CSS_SELECTOR, "#job-result")
        text = box[0].text.strip() if box and box[0].is_displayed() else ""
        return text if text and text != before and not text.startswith("Sending") else False
    return wait(driver, answered, "the answer in #job-result")


def _job_ids(site, name: str) -> list[int]:
    with site.runtime.db.read() as s:
        return s.scalars(select(Job.id).where(Job.name == name).order_by(Job.id)).all()


def _job_row(driver, job_id: int):
    for tr in driver.find_elements(By.CSS_SELECTOR, "table#jobs tr, table tr"):
        if any(path_of(a.get_attribute("href")) == f"/jobs/{job_id}"
               for a in tr.find_elements(By.CSS_SELECTOR, "a[href]")):
            return tr
    return None


def test_submit_a_job_watch_it_finish_and_a_wrong_token_is_refused(site, driver, shoot):
    compiled = compile_job(json.loads(JOB_FILE.read_text()))
    total = sum(compiled.task_counts().values())
    open_page(driver, site.at("/jobs"))

    result = _submit(driver, site.token)
    shoot("jobs-submitted")
    assert compiled.job_name in result, f"#job-result does not name the job: {result!r}"
    assert re.search(rf"\b{total}\b", result), f"#job-result does not give the {total} tasks: {result!r}"
    for task_type in compiled.task_counts():
        assert task_type in result, f"#job-result does not count the {task_type} tasks: {result!r}"

    job_ids = wait(driver, lambda d: _job_ids(site, compiled.job_name), "the job to be recorded", 60)
    assert len(job_ids) == 1
    job_id = job_ids[0]

    def finished_in_list(d):
        d.refresh()
        if not loaded(d):
            return False
        row = _job_row(d, job_id)
        percents = [float(p) for p in re.findall(r"(\d+(?:\.\d+)?)\s*%", row.text)] if row else []
        return 100.0 in percents
    wait(driver, finished_in_list, f"job {job_id} to show 100 % done in /jobs", 180)
    shoot("jobs-done")

    refused = _submit(driver, "not-the-token")
    assert "403" in refused and "wrong token" in refused, \
        f"#job-result does not show the 403 of a wrong token: {refused!r}"
    with site.runtime.db.read() as s:
        assert s.scalar(select(func.count()).select_from(Job).where(Job.name == compiled.job_name)) == 1
