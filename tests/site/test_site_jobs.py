"""/jobs and /jobs/<id>: progress bars, the submission form and the cancel/retry buttons, whose
requests need the token (401 without, 403 wrong or none configured)."""
from __future__ import annotations

import re

import pytest

from eas_runtime.resources import Resources
from eas_runtime.site import create_app
from tests.site.pages_helpers import Rows

TOKEN = "t0ken"


@pytest.fixture
def jobs(settings, resources, event_log):
    rows = Rows(resources.db)
    old = rows.job("<script>alert('job')</script>", working_directory="processed/old")
    for state in ("done", "done", "done", "failed"):
        rows.task(old, "verify", state=state)
    new = rows.job("new", spec={"job_name": "new", "task_list": [{"task": "null"}]})
    rows.task(new, "null", state="waiting")
    empty = rows.job("empty", cancelled=True)
    res = Resources(settings.replace(api_token=TOKEN), send=event_log, store=resources.store, db=resources.db)
    return {"client": create_app(res).test_client(), "ids": (old, new, empty)}


def test_list_newest_first_with_counts(jobs):
    old, new, empty = jobs["ids"]
    data = jobs["client"].get("/api/jobs").get_json()
    assert [j["job_id"] for j in data["items"]] == [empty, new, old]
    first = data["items"][2]
    assert first["counts"]["done"] == 3 and first["percent"]["done"] == 75.0 and first["total"] == 4
    assert data["items"][0]["cancelled"] is True and data["items"][0]["total"] == 0
    page = jobs["client"].get("/jobs").get_data(as_text=True)
    assert 'table id="jobs"' in page and f'href="/jobs/{old}"' in page
    assert '<rect class="done" x="0" width="75.0" height="1"/>' in page
    assert '<rect class="failed" x="75.0" width="25.0" height="1"/>' in page
    assert "&lt;script&gt;alert(&#39;job&#39;)&lt;/script&gt;" in page and "<script>alert" not in page


def test_list_paging(jobs):
    page = jobs["client"].get("/api/jobs?page_size=2&page=1").get_json()
    assert [j["job_id"] for j in page["items"]] == [jobs["ids"][0]] and page["pages"] == 2
    assert jobs["client"].get("/jobs?page=z").status_code == 400


def test_submission_form_and_script(jobs):
    page = jobs["client"].get("/jobs").get_data(as_text=True)
    form = page[page.index('<form id="submit-job"'):page.index("</form>", page.index('<form id="submit-job"'))]
    assert 'type="file"' in form and 'name="token"' in form and 'type="password"' in form
    assert "<fieldset disabled>" in form and "<noscript>" in form      # without a script: disabled, says so
    assert '<p id="job-result"' in page
    src = re.search(r'<script src="([^"]+)"', page).group(1)
    assert src == "/static/eas.js"
    script = jobs["client"].get(src)
    assert script.status_code == 200 and "javascript" in script.mimetype
    js = script.get_data(as_text=True)
    assert "sessionStorage" in js and "localStorage" not in js and "document.cookie" not in js
    assert "innerHTML" not in js and '"Authorization": "Bearer "' in js and "/api/jobs" in js


def test_job_page(jobs):
    old, new, _ = jobs["ids"]
    data = jobs["client"].get(f"/api/jobs/{new}").get_json()
    assert data["name"] == "new" and data["spec"]["task_list"] == [{"task": "null"}]
    assert data["progress"]["all"]["counts"]["waiting"] == 1
    page = jobs["client"].get(f"/jobs/{old}").get_data(as_text=True)
    assert f'data-url="/api/jobs/{old}/cancel"' in page and f'data-url="/api/jobs/{old}/retry"' in page
    assert 'id="job-result"' in page and f'href="/tasks?job={old}"' in page
    assert f'href="/timings?job={old}&amp;task_type=verify"' in page
    assert "<script>alert" not in page and "read-only" not in page


def test_unknown_job_is_404(jobs):
    assert jobs["client"].get("/jobs/4040").status_code == 404
    assert jobs["client"].get("/api/jobs/4040").get_json() == {"error": "no job 4040"}


def test_reading_needs_no_token_but_changing_does(jobs):
    client, (old, _, _) = jobs["client"], jobs["ids"]
    assert client.get("/api/jobs").status_code == 200
    for path in (f"/api/jobs/{old}/cancel", f"/api/jobs/{old}/retry", "/api/jobs"):
        assert client.post(path).status_code == 401, path
        assert client.post(path, headers={"Authorization": "Bearer nope"}).status_code == 403, path
    out = client.post(f"/api/jobs/{old}/retry", headers={"Authorization": f"Bearer {TOKEN}"})
    assert out.status_code == 200, out.get_json()


def test_read_only_site_says_so(resources):
    client = create_app(resources).test_client()         # no EAS_API_TOKEN
    assert "read-only" in client.get("/jobs").get_data(as_text=True)
    assert client.post("/api/jobs/1/cancel", headers={"Authorization": "Bearer x"}).status_code == 403
