"""/errors and /dead-letters: full tracebacks newest first, filters, paging, escaping, 400s."""
from __future__ import annotations

import html

import pytest

from eas_runtime.db.models import DeadLetter
from eas_runtime.site import create_app
from tests.site.pages_helpers import Rows, ago

TRACEBACK = 'Traceback (most recent call last):\n  File "science.py", line 3\nValueError: <script>alert(1)</script>'


@pytest.fixture
def site(resources):
    rows = Rows(resources.db)
    j1, j2 = rows.job("first"), rows.job("second")
    old = rows.task(j1, "verify", state="failed")
    rows.attempt(old, started=ago(7300), ended=ago(7200), error_kind="science",
                 error_text="Traceback: the old one")
    new = rows.task(j1, "<script>type</script>", state="failed")
    rows.attempt(new, started=ago(70), ended=ago(60), error_kind="input", error_text=TRACEBACK)
    other = rows.task(j2, "verify", state="failed")
    rows.attempt(other, started=ago(40), ended=ago(30), error_kind="science", error_text="second job")
    gone = rows.task(j2, "verify", state="cancelled")
    rows.attempt(gone, ended=ago(10), error_kind="cancelled", error_text="job cancelled")
    with resources.db.session() as s:
        s.add(DeadLetter(component="broker", reason="delivery failed (HTTP 502) after 3 tries",
                         event_id="e1", event_type="org.plato.eas.task.ready", payload='{"a": 1}',
                         time=ago(500)))
        s.add(DeadLetter(component="adapter", reason="<b>not an S3 record</b>", event_id="e2",
                         time=ago(5)))
    return {"client": create_app(resources).test_client(), "jobs": (j1, j2),
            "tasks": {"old": old, "new": new, "other": other}}


def test_newest_first_with_full_traceback(site):
    data = site["client"].get("/api/errors").get_json()
    assert [e["task_id"] for e in data["items"]] == [site["tasks"][k] for k in ("other", "new", "old")]
    assert data["items"][1]["error"] == TRACEBACK and data["items"][1]["kind"] == "input"
    assert data["total"] == 3 and data["pages"] == 1          # the cancellation is no failure
    page = site["client"].get("/errors").get_data(as_text=True)
    assert 'table id="errors"' in page and '<pre class="traceback">Traceback (most recent call last):' in page
    assert f'href="/tasks/{site["tasks"]["new"]}"' in page


def test_filters(site):
    client, (j1, j2) = site["client"], site["jobs"]
    ids = lambda q: [e["task_id"] for e in client.get("/api/errors" + q).get_json()["items"]]
    assert ids(f"?job={j2}") == [site["tasks"]["other"]]
    assert ids("?task_type=verify") == [site["tasks"]["other"], site["tasks"]["old"]]
    assert ids("?since=1h") == [site["tasks"]["other"], site["tasks"]["new"]]
    assert ids(f"?since={ago(45).replace(tzinfo=None).isoformat()}") == [site["tasks"]["other"]]
    assert ids("?kind=input") == [site["tasks"]["new"]]
    assert len(ids("?kind=cancelled")) == 1
    page = client.get(f"/errors?job={j1}&task_type=verify").get_data(as_text=True)
    assert "the old one" in page and "second job" not in page


def test_paging(site):
    client = site["client"]
    first = client.get("/api/errors?page_size=2").get_json()
    second = client.get("/api/errors?page_size=2&page=1").get_json()
    assert (first["pages"], first["total"], len(first["items"]), len(second["items"])) == (2, 3, 2, 1)
    assert second["items"][0]["task_id"] == site["tasks"]["old"]
    page = client.get("/errors?page_size=2").get_data(as_text=True)
    assert 'href="/errors?page_size=2&amp;page=1"' in page and "page 1 of 2" in page


@pytest.mark.parametrize("query, message", [
    ("job=abc", "job must be a job id"), ("job=0", "job must be a job id"),
    ("since=yesterday", "since='yesterday' is neither"), ("kind=oops", "kind 'oops' is not one of"),
    ("page=-1", "page must be a whole number from 0 to"), ("page=x", "page must be a whole number"),
    ("page_size=5000", "page_size must be a whole number from 1 to 1000"),
])
def test_bad_filters_are_400_with_the_message(site, query, message):
    api = site["client"].get(f"/api/errors?{query}")
    assert api.status_code == 400 and message in api.get_json()["error"]
    page = site["client"].get(f"/errors?{query}")
    assert page.status_code == 400 and message in html.unescape(page.get_data(as_text=True))
    assert "Traceback" not in page.get_data(as_text=True)


def test_error_text_and_task_type_are_escaped(site):
    page = site["client"].get("/errors").get_data(as_text=True)
    assert "<script>" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page and "&lt;script&gt;type&lt;/script&gt;" in page


def test_dead_letters(site):
    client = site["client"]
    data = client.get("/api/dead-letters").get_json()
    assert [d["component"] for d in data["items"]] == ["adapter", "broker"]
    assert data["items"][1]["reason"].startswith("delivery failed") and data["items"][1]["payload"] == '{"a": 1}'
    assert [d["event_id"] for d in client.get("/api/dead-letters?component=broker").get_json()["items"]] == ["e1"]
    assert [d["event_id"] for d in client.get("/api/dead-letters?since=1m").get_json()["items"]] == ["e2"]
    page = client.get("/dead-letters").get_data(as_text=True)
    assert "&lt;b&gt;not an S3 record&lt;/b&gt;" in page and "<b>not" not in page
    assert "org.plato.eas.task.ready" in page
    response = client.get("/api/dead-letters?since=soon")
    assert response.status_code == 400 and "since='soon'" in response.get_json()["error"]
