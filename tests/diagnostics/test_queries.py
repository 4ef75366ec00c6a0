"""Errors, dead letters, logs, work in flight, progress, jobs and the task page."""
from __future__ import annotations

import datetime as dt
import json

import pytest

from eas_runtime import diagnostics as diag
from eas_runtime.db.models import (A_QUEUED, A_RUNNING, LogMessage, Product, ProductVersion, TaskInput,
                                   TaskMetadataInput, TaskOutput, utcnow)

TRACEBACK = ('Traceback (most recent call last):\n  File "science.py", line 3, in run\n'
             '    raise RuntimeError("boom")\nRuntimeError: boom')


# ---------------------------------------------------------------------- errors
def test_errors_newest_first_with_the_full_traceback_and_filters(db, rows):
    a, b = rows.job("a"), rows.job("b")
    old = rows.task(a, "verify", state="failed")
    old_attempt = rows.attempt(old, error_kind="input", error_text="inbox/x.gz: truncated", ended_age_s=7200)
    new = rows.task(b, "error", name="e", path="task_list[0]", state="failed")
    new_attempt = rows.attempt(new, error_kind="science", error_text=TRACEBACK, ended_age_s=60)
    ok = rows.task(a, "verify", state="done")
    rows.attempt(ok)
    cancelled = rows.task(a, "verify", state="cancelled")
    rows.attempt(cancelled, error_kind="cancelled", error_text="job cancelled before the attempt started")

    data = diag.errors(db)
    assert [e["attempt_id"] for e in data["items"]] == [new_attempt, old_attempt]
    first = data["items"][0]
    assert first["error"] == TRACEBACK                       # all of it, not a summary
    assert {k: first[k] for k in ("task_id", "job_id", "task_type", "name", "path", "number", "kind",
                                  "host")} == {"task_id": new, "job_id": b, "task_type": "error", "name": "e",
                                               "path": "task_list[0]", "number": 1, "kind": "science",
                                               "host": "node-1"}
    assert data["total"] == 2
    assert [e["attempt_id"] for e in diag.errors(db, job_id=a)["items"]] == [old_attempt]
    assert [e["attempt_id"] for e in diag.errors(db, task_type="error")["items"]] == [new_attempt]
    assert [e["attempt_id"] for e in diag.errors(db, since="1h")["items"]] == [new_attempt]
    assert [e["attempt_id"] for e in diag.errors(db, since="3h")["items"]] == [new_attempt, old_attempt]
    iso = (utcnow() - dt.timedelta(minutes=30)).replace(tzinfo=None).isoformat()   # no zone: UTC
    assert [e["attempt_id"] for e in diag.errors(db, since=iso)["items"]] == [new_attempt]
    assert [e["kind"] for e in diag.errors(db, kind="cancelled")["items"]] == ["cancelled"]
    page = diag.errors(db, page=1, page_size=1)
    assert [e["attempt_id"] for e in page["items"]] == [old_attempt] and page["pages"] == 2


@pytest.mark.parametrize("text,seconds", [("90s", 90), ("30m", 1800), ("2h", 7200), ("1d", 86400),
                                          ("1w", 604800), ("1.5h", 5400)])
def test_since_as_an_age(text, seconds):
    now = utcnow()
    assert diag.parse_since(text, now) == now - dt.timedelta(seconds=seconds)


def test_since_as_iso_time():
    assert diag.parse_since("2024-05-01T12:00:00Z") == dt.datetime(2024, 5, 1, 12, tzinfo=dt.timezone.utc)
    assert diag.parse_since("2024-05-01T14:00:00+02:00") == dt.datetime(2024, 5, 1, 12, tzinfo=dt.timezone.utc)
    assert diag.parse_since("2024-05-01") == dt.datetime(2024, 5, 1, tzinfo=dt.timezone.utc)
    with pytest.raises(diag.DiagnosticsError, match="'yesterday'.*ISO time.*2h"):
        diag.parse_since("yesterday")


def test_dead_letters_newest_first_with_reason_and_event(db, rows):
    old = rows.dead_letter("no sink", age_s=3600)
    new = rows.dead_letter("tasktype 'x' is not served", component="function:verify", age_s=10,
                           payload='{"specversion": "1.0"}')
    data = diag.dead_letters(db)
    assert [d["id"] for d in data["items"]] == [new, old]
    assert data["items"][0]["payload"] == '{"specversion": "1.0"}'
    assert data["items"][0]["reason"] == "tasktype 'x' is not served"
    assert [d["id"] for d in diag.dead_letters(db, since="30m")["items"]] == [new]
    assert [d["id"] for d in diag.dead_letters(db, component="broker")["items"]] == [old]
    assert "payload" not in diag.dead_letters(db, payload=False)["items"][0]


# ---------------------------------------------------------------------- logs
def test_logs_by_attempt_task_and_job_with_severity_and_paging(db, rows):
    job, other = rows.job(), rows.job()
    task = rows.task(job, "verify")
    first = rows.attempt(task, error_kind="infrastructure",
                         logs=[("INFO", "start"), ("WARNING", "3 NaN fluxes dropped"), ("DEBUG", "detail")])
    second = rows.attempt(task, logs=[("INFO", "start again"), ("ERROR", "Traceback (most recent call last):\n  x")])
    rows.attempt(rows.task(other, "verify"), logs=[("CRITICAL", "elsewhere")])
    with db.session() as s:
        s.add(LogMessage(attempt_id=None, severity="WARNING", text="from the control", time=utcnow()))

    texts = lambda d: [m["text"] for m in d["items"]]  # noqa: E731
    assert texts(diag.logs(db, attempt_id=first)) == ["start", "3 NaN fluxes dropped", "detail"]
    # both attempts' lines, in time order (the builder dates each attempt's lines alike)
    assert texts(diag.logs(db, task_id=task)) == ["start", "start again", "3 NaN fluxes dropped",
                                                  "Traceback (most recent call last):\n  x", "detail"]
    assert diag.logs(db, job_id=other)["total"] == 1
    warn = diag.logs(db, task_id=task, severity="warning")
    assert texts(warn) == ["3 NaN fluxes dropped", "Traceback (most recent call last):\n  x"]
    assert warn["filters"]["severity"] == "WARNING"
    item = diag.logs(db, attempt_id=second, severity="ERROR")["items"][0]
    assert {k: item[k] for k in ("attempt_id", "attempt", "task_id", "job_id", "task_type", "severity")} == \
        {"attempt_id": second, "attempt": 2, "task_id": task, "job_id": job, "task_type": "verify",
         "severity": "ERROR"}
    everything = diag.logs(db, page_size=2)
    assert everything["total"] == 7 and everything["pages"] == 4
    assert "from the control" in texts(diag.logs(db, severity="WARNING", newest_first=True))
    newest = diag.logs(db, newest_first=True, page_size=1)["items"][0]
    assert newest["text"] == "from the control" and newest["attempt_id"] is None
    paged = [m["id"] for p in range(4) for m in diag.logs(db, page=p, page_size=2)["items"]]
    assert paged == [m["id"] for m in diag.logs(db, page_size=100)["items"]]
    with pytest.raises(diag.DiagnosticsError, match="severity 'LOUD'"):
        diag.logs(db, severity="LOUD")


def test_log_order_is_time_order(db, rows):
    task = rows.task(rows.job(), "verify")
    attempt = rows.attempt(task)
    now = utcnow()
    with db.session() as s:            # inserted out of time order
        for seconds, text in ((30, "third"), (10, "first"), (20, "second")):
            s.add(LogMessage(attempt_id=attempt, time=now + dt.timedelta(seconds=seconds), text=text))
    assert [m["text"] for m in diag.logs(db, attempt_id=attempt)["items"]] == ["first", "second", "third"]
    assert [m["text"] for m in diag.logs(db, attempt_id=attempt, newest_first=True)["items"]] == \
        ["third", "second", "first"]


# ---------------------------------------------------------------------- in flight
def test_inflight_claimed_attempts_deliveries_and_dead_letters(db, rows):
    job = rows.job()
    queued = rows.task(job, "verify", state="queued")
    q_attempt = rows.attempt(queued, state=A_QUEUED)
    running = rows.task(job, "transit_search_tls", state="running")
    r_attempt = rows.attempt(running, state=A_RUNNING, heartbeat_age_s=12, host="worker-7", pid=31337)
    rows.attempt(rows.task(job, "verify", state="done"))
    due = rows.delivery("eas-verify", tries=3, due_in_s=30, last_error="[503] Service Unavailable")
    rows.delivery("eas-control", state="delivered")
    rows.delivery("eas-control", state="dead", tries=5)
    for i in range(7):
        rows.dead_letter(f"reason {i}", age_s=100 - i)

    data = diag.inflight(db, stall_s=300)
    att = {a["attempt_id"]: a for a in data["attempts"]["items"]}
    assert set(att) == {q_attempt, r_attempt}
    assert att[q_attempt]["attempt_state"] == "queued" and att[q_attempt]["host"] == ""
    assert att[q_attempt]["queued_for_s"] > 0
    r = att[r_attempt]
    assert (r["host"], r["pid"], r["attempt_state"], r["task_state"]) == ("worker-7", 31337, "running", "running")
    assert 11 <= r["heartbeat_age_s"] < 60
    assert [d["id"] for d in data["deliveries"]["items"]] == [due]
    d = data["deliveries"]["items"][0]
    assert (d["trigger"], d["tries"], d["last_error"]) == ("eas-verify", 3, "[503] Service Unavailable")
    assert 0 < d["due_in_s"] <= 30 and d["due"]
    assert data["dead_letters"]["count"] == 7
    assert [x["reason"] for x in data["dead_letters"]["newest"]] == [f"reason {i}" for i in (6, 5, 4, 3, 2)]
    assert diag.inflight(db, newest_dead_letters=2)["dead_letters"]["newest"][1]["reason"] == "reason 5"
    json.dumps(data)


# ---------------------------------------------------------------------- progress, jobs, task page
def test_progress_counts_and_percentages_per_type_and_per_job(db, rows):
    a, b = rows.job("a"), rows.job("b")
    for state in ("done", "done", "done", "failed"):
        rows.task(a, "verify", state=state)
    rows.task(a, "transit_search_tls", state="waiting")
    rows.task(b, "verify", state="cancelled")
    data = diag.progress(db)
    verify = next(t for t in data["task_types"] if t["task_type"] == "verify")
    assert verify["total"] == 5 and verify["counts"]["done"] == 3 and verify["counts"]["cancelled"] == 1
    assert verify["percent"]["done"] == 60.0 and verify["percent"]["failed"] == 20.0
    assert data["all"]["total"] == 6 and data["states"] == list(diag.DISPLAY_STATES)
    only_a = diag.progress(db, job_id=a)
    assert [t["task_type"] for t in only_a["task_types"]] == ["transit_search_tls", "verify"]
    assert only_a["all"]["total"] == 5
    with pytest.raises(diag.NotFound):
        diag.progress(db, job_id=999)


def test_jobs_newest_first_with_counts(db, rows):
    a, b = rows.job("a"), rows.job("b", cancelled=True)
    rows.task(a, "verify", state="done")
    rows.task(b, "verify", state="cancelled")
    rows.task(b, "verify", state="done")
    data = diag.jobs(db)
    assert [j["job_id"] for j in data["items"]] == [b, a]
    assert data["items"][0]["cancelled"] is True and data["items"][0]["counts"]["cancelled"] == 1
    assert data["items"][0]["total"] == 2 and data["items"][1]["percent"]["done"] == 100.0


def test_task_page_has_every_attempt_inputs_outputs_and_metadata(db, rows):
    job = rows.job()
    source = rows.task(job, "ingest_external_lcs", name="ingest", state="done")
    task = rows.task(job, "verify", name="check", path="task_list[1]", state="done",
                     params={"specs": {"cadence_s": 25}}, metadata={"size": 1.5})
    lost = rows.attempt(task, error_kind="infrastructure", error_text="stalled: no heartbeat")
    won = rows.attempt(task, wall_s=2.5, cpu_s=2.0, metadata={"n_points": 1000},
                       logs=[("INFO", "a"), ("INFO", "b")])
    with db.session() as s:
        s.add(TaskInput(task_id=task, semantic_name="lightcurve", key="p/lc.fits"))
        s.add(TaskOutput(task_id=task, semantic_name="report", key="p/report.json"))
        s.add(TaskMetadataInput(task_id=task, source_task_id=source))
        product = Product(key="p/lc.fits", directory="p", filename="lc.fits")
        s.add(product)
        s.flush()
        s.add(ProductVersion(product_id=product.id, attempt_id=None, size=10, etag="abc", passed_qc=True))
    data = diag.task_detail(db, task)
    assert [a["attempt_id"] for a in data["attempts"]] == [lost, won]      # all of them
    assert data["attempts"][0]["error_text"] == "stalled: no heartbeat"
    assert data["attempts"][1]["metadata"] == {"n_points": 1000} and data["attempts"][1]["log_lines"] == 2
    assert data["inputs"][0]["key"] == "p/lc.fits" and data["inputs"][0]["versions"][0]["passed_qc"] is True
    assert data["outputs"] == [{"name": "report", "key": "p/report.json", "versions": []}]
    assert data["metadata"]["size"] == 1.5 and data["params"] == {"specs": {"cadence_s": 25}}
    assert data["metadata_from"] == [{"task_id": source, "name": "ingest", "task_type": "ingest_external_lcs"}]
    assert data["attempts_count"] == 2 and data["state"] == "done"
    json.dumps(data)
    with pytest.raises(diag.NotFound, match="no task 12345"):
        diag.task_detail(db, 12345)
