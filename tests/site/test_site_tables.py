"""/progress, /timings, /passfail and their CSV: tables keyed by loop parameters."""
from __future__ import annotations

import csv
import html
import io

import pytest

from eas_runtime.db.models import MetadataItem, Task
from eas_runtime.site import create_app
from tests.site.pages_helpers import Rows, ago

SIZES = (0.25, 0.5, 1.0, 2.0, 4.0)


@pytest.fixture
def grid(resources):
    """A job looping over size x cadence: a search task per pair with period and outcome;
    one failed, one still waiting; and a verify task per pair."""
    rows = Rows(resources.db)
    job = rows.job("grid")
    searches = []
    for i, size in enumerate(SIZES):
        for k, cadence in enumerate((25, 900)):
            meta = {"size": size, "size_index": i, "cadence": cadence, "cadence_index": k}
            rows.task(job, "verify", metadata=meta)
            state = "failed" if (i, k) == (4, 1) else "waiting" if (i, k) == (0, 0) else "done"
            task = rows.task(job, "<script>search</script>", state=state, metadata=meta,
                             params={"specs": {"duration": 730}, "note": "a,b \"quoted\""})
            searches.append(task)
            if state == "waiting":
                continue
            results = {} if state == "failed" else {
                "period": 4.0 * (1 + 0.001 * i), "target_period": 4.0,
                "outcome": "PASS" if size >= 1.0 else "FAIL"}
            rows.attempt(task, started=ago(100), ended=ago(90), wall_s=10.0 + i, cpu_s=9.0,
                         cpu_children_s=0.5, error_kind="science" if state == "failed" else "",
                         results=results)
    return {"client": create_app(resources).test_client(), "job": job, "searches": searches,
            "type": "<script>search</script>"}


def q(grid, **extra):
    from urllib.parse import urlencode
    return urlencode({"job": grid["job"], "task_type": grid["type"], **extra})


def test_progress(grid):
    data = grid["client"].get(f"/api/progress?job={grid['job']}").get_json()
    by_type = {r["task_type"]: r for r in data["task_types"]}
    search = by_type[grid["type"]]
    assert search["total"] == 10 and search["counts"]["done"] == 8
    assert search["counts"]["failed"] == 1 and search["counts"]["waiting"] == 1
    assert search["percent"]["done"] == 80.0 and data["all"]["total"] == 20
    page = grid["client"].get("/progress").get_data(as_text=True)
    assert 'class="bar"' in page and "80.0 %" in page and "&lt;script&gt;search" in page
    assert "<script>search" not in page
    assert grid["client"].get("/api/progress?job=77").status_code == 404
    assert grid["client"].get("/progress?job=one").status_code == 400


def test_groups_without_a_pair(grid):
    data = grid["client"].get("/api/timings").get_json()
    assert data["view"] == "groups"
    pairs = {(g["job_id"], g["task_type"]): g for g in data["items"]}
    search = pairs[(grid["job"], grid["type"])]
    assert (search["tasks"], search["done"], search["failed"], search["timed"]) == (10, 8, 1, 9)
    assert search["wall_s_total"] == pytest.approx(sum(10.0 + i for i in range(5) for _ in (0, 1)) - 10.0)
    page = grid["client"].get(f"/passfail?job={grid['job']}").get_data(as_text=True)
    assert "/passfail?job=" in page and "task_type=%3Cscript%3Esearch%3C/script%3E" in page


def test_timings_table_keyed_by_loop_parameters(grid):
    data = grid["client"].get(f"/api/timings?{q(grid)}").get_json()
    assert data["view"] == "table" and data["total"] == 10
    assert {"size", "size_index", "cadence", "cadence_index", "specs.duration", "note"} <= set(data["parameters"])
    assert data["results"][:4] == ["wall_s", "cpu_s", "cpu_children_s", "period"]
    row = next(r for r in data["items"] if r["size_index"] == 2 and r["cadence"] == 900)
    assert row["wall_s"] == 12.0 and row["outcome"] == "PASS" and row["specs.duration"] == 730
    page = grid["client"].get(f"/timings?{q(grid)}").get_data(as_text=True)
    assert 'id="timings-table"' in page and 'class="csv"' in page
    assert "<th class=\"param\">size</th>" in page and "&lt;script&gt;search&lt;/script&gt;" in page
    assert "<script>search" not in page


def test_table_paging(grid):
    first = grid["client"].get(f"/api/timings?{q(grid, page_size=4)}").get_json()
    last = grid["client"].get(f"/api/timings?{q(grid, page_size=4, page=2)}").get_json()
    assert (first["pages"], len(first["items"]), len(last["items"])) == (3, 4, 2)
    assert [r["task_id"] for r in first["items"] + last["items"]] == \
        grid["searches"][:4] + grid["searches"][8:]


def test_passfail_summary(grid):
    data = grid["client"].get(f"/api/passfail?{q(grid)}").get_json()
    assert data["summary"] == {"FAIL": 3, "PASS": 5, "null": 2}     # null: waiting and failed
    assert data["results"] == ["outcome"]
    page = grid["client"].get(f"/passfail?{q(grid)}").get_data(as_text=True)
    assert 'id="passfail-table"' in page and '<span class="pass">PASS: 5</span>' in page


@pytest.mark.parametrize("kind", ["timings", "passfail"])
def test_csv_download(grid, kind):
    response = grid["client"].get(f"/{kind}.csv?{q(grid)}")
    assert response.status_code == 200 and response.mimetype == "text/csv"
    assert "attachment" in response.headers["Content-Disposition"]
    assert "<" not in response.headers["Content-Disposition"]
    table = list(csv.reader(io.StringIO(response.get_data(as_text=True))))
    header, body = table[0], table[1:]
    api = grid["client"].get(f"/api/{kind}?{q(grid)}").get_json()
    assert header == api["columns"] and len(body) == 10
    rows = [dict(zip(header, line)) for line in body]
    assert [int(r["task_id"]) for r in rows] == grid["searches"]
    row = rows[2 * 2 + 1]                                   # size index 2, cadence 900
    assert row["size"] == "1.0" and row["cadence"] == "900" and row["outcome"] == "PASS"
    if kind == "timings":
        assert row["note"] == 'a,b "quoted"' and float(row["period"]) == pytest.approx(4.008)
        assert rows[0]["wall_s"] == ""                      # the waiting task has no attempt


def test_csv_streams_more_than_one_batch(resources):
    job = Rows(resources.db).job("big")
    with resources.db.session() as s:
        tasks = [Task(job_id=job, task_type="null", state="done", params={}) for _ in range(1203)]
        s.add_all(tasks)
        s.flush()
        s.add_all(MetadataItem(owner_kind="task", owner_id=t.id, key="i", value=n) for n, t in enumerate(tasks))
    client = create_app(resources).test_client()
    table = list(csv.reader(io.StringIO(client.get(f"/timings.csv?job={job}&task_type=null").get_data(as_text=True))))
    assert len(table) == 1 + 1203 and table[0][:5] == ["task_id", "name", "path", "state", "attempts"]
    assert len({line[0] for line in table[1:]}) == 1203


@pytest.mark.parametrize("path, status, message", [
    ("/timings.csv?task_type=verify", 400, "job missing"),
    ("/passfail.csv?job={job}", 400, "task_type missing"),
    ("/timings.csv", 400, "job and task_type missing"),
    ("/timings.csv?job=999&task_type=verify", 404, "no job 999"),
    ("/timings?job=999&task_type=verify", 404, "no job 999"),
    ("/api/passfail?job={job}&task_type=nothing", 404, "has no task of type 'nothing'"),
    ("/passfail.csv?job={job}&task_type=nothing", 404, "has no task of type 'nothing'"),
    ("/timings?job=x", 400, "job must be a job id"),
    ("/api/timings?job={job}&task_type=verify&page=many", 400, "page must be a whole number"),
])
def test_table_errors(grid, path, status, message):
    response = grid["client"].get(path.format(job=grid["job"]))
    assert response.status_code == status
    assert message in html.unescape(response.get_data(as_text=True))
