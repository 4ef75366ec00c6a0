"""/logs: severity filter (that level and above), job/task/attempt filters, order, paging."""
from __future__ import annotations

import html

import pytest

from eas_runtime.site import create_app
from tests.site.pages_helpers import Rows, ago

LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")


@pytest.fixture
def logs(resources):
    rows = Rows(resources.db)
    j1, j2 = rows.job("one"), rows.job("two")
    t1, t2 = rows.task(j1, "verify"), rows.task(j2, "transit_search_tls")
    a1 = rows.attempt(t1, started=ago(1000), ended=ago(900))
    a2 = rows.attempt(t2, started=ago(800), ended=ago(100))
    rows.log(a1, [(LEVELS[i % 5], f"one {i}") for i in range(150)], start=ago(950))
    rows.log(a2, [(LEVELS[i % 5], f"two {i}") for i in range(100)] + [("ERROR", "<script>x()</script>")],
             start=ago(700))
    return {"client": create_app(resources).test_client(), "jobs": (j1, j2), "tasks": (t1, t2),
            "attempts": (a1, a2)}


def texts(client, query):
    response = client.get("/api/logs" + query)
    assert response.status_code == 200, response.get_data(as_text=True)
    return response.get_json()


def test_newest_first_by_default_and_paging(logs):
    client = logs["client"]
    first = texts(client, "")
    assert first["total"] == 251 and first["pages"] == 3
    assert first["items"][0]["text"] == "<script>x()</script>"
    last = texts(client, "?page=2")
    assert [m["text"] for m in last["items"]][-1] == "one 0" and len(last["items"]) == 51
    oldest = texts(client, "?order=oldest&page_size=2")
    assert [m["text"] for m in oldest["items"]] == ["one 0", "one 1"]
    page = client.get("/logs?page=1").get_data(as_text=True)
    assert "page 2 of 3" in page and 'href="/logs?page=2"' in page and 'href="/logs"' in page


@pytest.mark.parametrize("severity, count", [("DEBUG", 251), ("info", 201), ("WARNING", 151),
                                             ("WARN", 151), ("ERROR", 101), ("CRITICAL", 50)])
def test_severity_keeps_that_level_and_above(logs, severity, count):
    data = texts(logs["client"], f"?severity={severity}&page_size=1000")
    assert data["total"] == count == len(data["items"])
    floor = LEVELS.index({"WARN": "WARNING"}.get(severity.upper(), severity.upper()))
    assert {m["severity"] for m in data["items"]} == set(LEVELS[floor:])


def test_job_task_attempt_filters(logs):
    client, (j1, _), (_, t2), (_, a2) = logs["client"], logs["jobs"], logs["tasks"], logs["attempts"]
    assert texts(client, f"?job={j1}")["total"] == 150
    assert texts(client, f"?task={t2}")["total"] == 101
    data = texts(client, f"?attempt={a2}&severity=ERROR")
    assert data["total"] == 41 and {m["task_id"] for m in data["items"]} == {t2}
    assert data["items"][0]["task_type"] == "transit_search_tls" and data["items"][0]["attempt"] == 1
    assert texts(client, f"?job={j1}&task={t2}")["total"] == 0
    page = client.get(f"/logs?task={t2}").get_data(as_text=True)
    assert f'href="/tasks/{t2}"' in page and "one 3" not in page


def test_log_text_is_escaped(logs):
    page = logs["client"].get("/logs").get_data(as_text=True)
    assert "<script>x()" not in page and "&lt;script&gt;x()&lt;/script&gt;" in page


@pytest.mark.parametrize("query, message", [
    ("severity=LOUD", "severity 'LOUD' is not one of DEBUG, INFO"),
    ("order=random", "order must be one of newest, oldest"),
    ("task=first", "task must be a task id"), ("attempt=0", "attempt must be an attempt id"),
    ("job=-3", "job must be a job id"), ("page=1.5", "page must be a whole number"),
])
def test_bad_filters(logs, query, message):
    for path in ("/api/logs", "/logs"):
        response = logs["client"].get(f"{path}?{query}")
        assert response.status_code == 400 and message in html.unescape(response.get_data(as_text=True))
