"""Every page of the site (products aside) and its JSON twin, on one small pipeline's rows with
hostile names: each answers, escapes, and links with the fixed URL scheme."""
from __future__ import annotations

import pytest

from eas_runtime.db.models import DeadLetter, ProductVersion, TaskOutput
from eas_runtime.db.products import ensure_product
from eas_runtime.site import create_app, pages
from tests.site.pages_helpers import Rows, ago

EVIL = "<script>alert(1)</script>"


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    from eas_runtime.db.session import Database
    from eas_runtime.resources import Resources
    from eas_runtime.settings import Settings
    home = tmp_path_factory.mktemp("pages")
    settings = Settings.load(environ={}, home=str(home), stall_s=2.0, heartbeat_s=0.2)
    db = Database(settings.db_url)
    db.create_schema()
    rows = Rows(db)
    job = rows.job(EVIL, spec={"job_name": EVIL})
    loop = rows.task(job, "execution_for_loop", name=EVIL)
    task = rows.task(job, EVIL, parent=loop, state="failed", metadata={"size": 1.0, EVIL: EVIL},
                     params={EVIL: 1})
    attempt = rows.attempt(task, started=ago(100), ended=ago(90), host=EVIL, error_kind="science",
                           error_text=f"Traceback (most recent call last):\nValueError: {EVIL}",
                           results={"outcome": EVIL})
    running = rows.task(job, "verify", parent=loop, state="running")
    rows.attempt(running, state="running", started=ago(10), ended=None, heartbeat_at=ago(0.1))
    rows.log(attempt, [("ERROR", EVIL)])
    with db.session() as s:
        product = ensure_product(s, f"processed/{EVIL}.fits", generator_task_id=task)
        s.add(ProductVersion(product_id=product.id, etag="e", size=1, attempt_id=attempt))
        s.add(TaskOutput(task_id=task, semantic_name="lc", key=f"processed/{EVIL}.fits"))
        s.add(DeadLetter(component=EVIL, reason=EVIL, event_id=EVIL, event_type=EVIL, payload=EVIL))
    client = create_app(Resources(settings, db=db)).test_client()
    yield {"client": client, "job": job, "task": task, "type": EVIL}
    db.dispose()


def page_paths(site) -> list[str]:
    from urllib.parse import quote
    j, t, tt = site["job"], site["task"], quote(site["type"])
    return ["/errors", f"/errors?job={j}&task_type={tt}&since=1d", "/dead-letters",
            "/dead-letters?component=x&since=1h", "/tasks", f"/tasks?job={j}&depth=1&subtree={t}",
            "/tasks/running", f"/tasks/{t}", "/jobs", f"/jobs/{j}", "/progress", f"/progress?job={j}",
            "/timings", f"/timings?job={j}&task_type={tt}", "/passfail", f"/passfail?job={j}&task_type={tt}",
            "/logs", f"/logs?severity=ERROR&job={j}&task={t}", "/activity", "/activity?since=1d",
            "/functions", "/candidates", "/candidates?verdict=pc&sort=period&order=asc&min_snr=7",
            "/stars", "/stars?search=TIC", f"/jobs/{j}/report"]


def test_every_page_answers_and_escapes(site):
    for path in page_paths(site):
        response = site["client"].get(path)
        assert response.status_code == 200, path
        text = response.get_data(as_text=True)
        assert EVIL not in text, path
        assert "<nav class=\"top\">" in text, path


def test_every_page_has_a_json_twin(site):
    for path in page_paths(site):
        response = site["client"].get("/api" + path)
        assert response.status_code == 200 and response.is_json, path
        page = site["client"].get(path).get_data(as_text=True)
        assert 'href="/api' in page, path                    # each page links its twin


def test_escaped_names_are_shown(site):
    client = site["client"]
    escaped = "&lt;script&gt;alert(1)&lt;/script&gt;"
    for path in ("/errors", "/dead-letters", "/tasks", f"/tasks/{site['task']}", "/jobs",
                 f"/jobs/{site['job']}", "/progress", "/logs", "/activity?since=1d", "/timings"):
        assert escaped in client.get(path).get_data(as_text=True), path
    task = client.get(f"/tasks/{site['task']}").get_data(as_text=True)
    assert 'href="/products/file/processed/%3Cscript%3Ealert%281%29%3C/script%3E.fits"' in task


@pytest.mark.parametrize("kind", ["timings", "passfail"])
def test_csv_cells_are_data_not_markup(site, kind):
    from urllib.parse import quote
    response = site["client"].get(f"/{kind}.csv?job={site['job']}&task_type={quote(site['type'])}")
    assert response.status_code == 200 and EVIL in response.get_data(as_text=True)   # text/csv, verbatim
    assert response.mimetype == "text/csv"


def test_every_route_of_these_blueprints_is_covered(site):
    """A new route must be added to page_paths (or here) to be tested."""
    app = site["client"].application
    ours = {bp.name for bp in pages.BLUEPRINTS}
    rules = {r.rule for r in app.url_map.iter_rules() if r.endpoint.split(".")[0] in ours}
    covered = {p.split("?")[0] for p in page_paths(site)}
    covered |= {"/api" + p for p in covered} | {"/timings.csv", "/passfail.csv"}
    # A candidate, its report and exports, and a star need a pipeline that found planets:
    # tests/e2e/test_standard_path.py and tests/browser/test_candidates.py ask every one.
    covered |= {"/candidates/<int:candidate_id>", "/api/candidates/<int:candidate_id>",
                "/candidates/<int:candidate_id>/report.<fmt>", "/candidates.<fmt>",
                "/stars/<path:star_id>", "/api/stars/<path:star_id>"}
    # A report's plots need a job with searches: tests/site/test_site_experiments.py
    covered |= {f"/jobs/{site['job']}/report/<plot>.png", f"/jobs/{site['job']}/report/<plot>.csv"}
    generic = {r.replace("<int:task_id>", str(site["task"])).replace("<int:job_id>", str(site["job"]))
               for r in rules}
    assert generic <= covered, generic - covered


def test_unknown_api_paths_are_not_500(site):
    assert site["client"].get("/tasks/x").status_code == 404
    assert site["client"].get("/api/jobs/abc").status_code == 404
    assert site["client"].get("/api/tasks/99999").status_code == 404
