"""Timings and pass/fail tables keyed by loop parameters, and their CSV export."""
from __future__ import annotations

import csv
import io

import pytest

from eas_runtime import diagnostics as diag
from eas_runtime.db.models import A_RUNNING

SEARCH = "transit_search_tls"
AWKWARD = 'tls, "fast" mode'          # a comma and quotes: must survive the CSV round trip


@pytest.fixture
def grid(rows):
    """A for-loop job: tda x size, synthesis -> search per point; one search failed, one running."""
    job = rows.job("earth_vs_size")
    loop = rows.task(job, "execution_for_loop", path="task_list[0]", state="done")
    searches = []
    for tda_index, tda in enumerate(("tls", AWKWARD)):
        for size_index, size in enumerate((0.25, 1.0, 4.0)):
            meta = {"tda": tda, "tda_index": tda_index, "size": size, "size_index": size_index}
            synth = rows.task(job, "synthesis_batman", parent=loop, path="task_list[0].task_list[0]",
                              state="done", metadata=meta, params={"specs": {"duration": 730, "noise": 1e-4}})
            rows.attempt(synth, wall_s=1.0, cpu_s=0.9, cpu_children_s=0.0)
            n = len(searches)
            state = "failed" if n == 4 else "running" if n == 5 else "done"
            search = rows.task(job, SEARCH, parent=loop, name="transit_detection",
                               path="task_list[0].task_list[2]", state=state, metadata=meta,
                               params={"lc_duration": 730})
            if state == "done":
                found = 50.0 if size > 0.3 else 12.5
                rows.attempt(search, wall_s=10.0 + n, cpu_s=9.5 + n, cpu_children_s=0.25,
                             metadata={"period": found, "target_period": 50.0, "sde": 7.5 + n,
                                       "outcome": "PASS" if found == 50.0 else "FAIL", "peaks": [1, 2]})
            elif state == "failed":
                rows.attempt(search, error_kind="science", error_text="Traceback ...", wall_s=0.5, cpu_s=0.4)
            else:
                rows.attempt(search, state=A_RUNNING, heartbeat_age_s=1)
            searches.append(search)
    return job, searches


def test_timings_columns_are_fixed_then_loop_parameters_then_results(db, grid):
    job, searches = grid
    data = diag.timings(db, job, SEARCH)
    assert data["columns"] == ["task_id", "name", "path", "state", "attempts",
                               "size", "size_index", "tda", "tda_index", "lc_duration",
                               "wall_s", "cpu_s", "cpu_children_s",
                               "period", "target_period", "outcome", "peaks", "sde"]
    assert data["parameters"] == ["size", "size_index", "tda", "tda_index", "lc_duration"]
    assert data["results"] == ["wall_s", "cpu_s", "cpu_children_s", "period", "target_period", "outcome",
                               "peaks", "sde"]
    assert [r["task_id"] for r in data["items"]] == searches and data["total"] == 6
    first = data["items"][0]
    assert first == {"task_id": searches[0], "name": "transit_detection", "path": "task_list[0].task_list[2]",
                     "state": "done", "attempts": 1, "size": 0.25, "size_index": 0, "tda": "tls",
                     "tda_index": 0, "lc_duration": 730, "wall_s": 10.0, "cpu_s": 9.5,
                     "cpu_children_s": 0.25, "period": 12.5, "target_period": 50, "outcome": "FAIL",
                     "peaks": [1, 2], "sde": 7.5}
    failed, running = data["items"][4], data["items"][5]
    assert failed["state"] == "failed" and failed["wall_s"] == 0.5 and failed["outcome"] is None
    assert running["state"] == "running" and running["wall_s"] is None


def test_nested_params_become_dotted_columns(db, grid):
    job, _ = grid
    data = diag.timings(db, job, "synthesis_batman")
    assert "specs.duration" in data["parameters"] and "specs.noise" in data["parameters"]
    assert data["items"][0]["specs.noise"] == 1e-4


def test_loop_variables_come_from_the_params_the_job_compiler_hands_each_task(db, rows):
    """A job's tasks carry their loop variables as params["metadata"] (eas_runtime.jobs): they
    are the tables' parameters under their own names, in timings and in pass/fail alike, and
    shown once where metadata items repeat them."""
    job = rows.job()
    for index, size in enumerate((0.5, 2.0)):
        meta = {"size": size, "size_index": index}
        task = rows.task(job, "t", params={"metadata": meta, "specs": {"noise": 1e-4}})
        rows.attempt(task, metadata={"period": 3.0, "outcome": "PASS"})
    both = rows.task(job, "t", metadata={"size": 4.0, "size_index": 2},
                     params={"metadata": {"size": 4.0, "size_index": 2}, "specs": {"noise": 1e-4}})
    rows.attempt(both, metadata={"period": 3.0, "outcome": "FAIL"})
    data = diag.timings(db, job, "t")
    assert data["parameters"] == ["size", "size_index", "specs.noise"]
    assert not [c for c in data["columns"] if c.startswith("metadata.")]
    assert [r["size"] for r in data["items"]] == [0.5, 2.0, 4.0]
    assert data["shown_columns"][:3] == ["size", "size_index", "specs.noise"]
    table = diag.passfail(db, job, "t")
    assert table["parameters"] == ["size", "size_index"]
    assert [(r["size"], r["outcome"]) for r in table["items"]] == [(0.5, "PASS"), (2.0, "PASS"), (4.0, "FAIL")]


def test_every_page_has_the_same_columns(db, grid):
    job, searches = grid
    pages = [diag.timings(db, job, SEARCH, page=p, page_size=4) for p in range(2)]
    assert pages[0]["columns"] == pages[1]["columns"]
    assert [r["task_id"] for p in pages for r in p["items"]] == searches
    assert pages[1]["pages"] == 2


def test_colliding_names_get_a_prefix(db, rows):
    job = rows.job()
    task = rows.task(job, "t", metadata={"duration": 5, "state": "odd"},
                     params={"duration": 5, "depth": "x"})
    rows.attempt(task, metadata={"depth": 0.01, "wall_s": 99})
    data = diag.timings(db, job, "t")
    cols = data["columns"]
    assert cols.count("duration") == 1 and "params.duration" not in cols   # a param repeating a loop variable
    assert "metadata.state" in cols and data["items"][0]["metadata.state"] == "odd"
    assert "depth" in cols and "result.depth" in cols and "result.wall_s" in cols
    assert data["items"][0]["depth"] == "x" and data["items"][0]["result.depth"] == 0.01


def test_passfail_by_loop_parameters_with_a_summary(db, grid):
    job, searches = grid
    data = diag.passfail(db, job, SEARCH)
    assert data["columns"] == ["task_id", "name", "path", "state", "attempts", "size", "size_index", "tda",
                               "tda_index", "outcome"]
    assert data["parameters"] == ["size", "size_index", "tda", "tda_index"]
    assert [(r["tda"], r["size"], r["outcome"]) for r in data["items"]] == [
        ("tls", 0.25, "FAIL"), ("tls", 1.0, "PASS"), ("tls", 4.0, "PASS"),
        (AWKWARD, 0.25, "FAIL"), (AWKWARD, 1.0, None), (AWKWARD, 4.0, None)]
    assert data["summary"] == {"FAIL": 2, "PASS": 2, "null": 2}
    assert diag.passfail(db, job, SEARCH, page=1, page_size=2)["summary"] == data["summary"]


def test_timing_groups(db, grid, rows):
    job, _ = grid
    other = rows.job("other")
    rows.attempt(rows.task(other, "verify", state="done"), wall_s=3.0, cpu_s=1.0)
    data = diag.timing_groups(db)
    assert [(g["job_id"], g["task_type"]) for g in data["items"]] == [
        (job, "execution_for_loop"), (job, "synthesis_batman"), (job, SEARCH), (other, "verify")]
    search = data["items"][2]
    assert (search["tasks"], search["done"], search["failed"], search["timed"]) == (6, 4, 1, 5)
    assert search["wall_s_total"] == pytest.approx(10 + 11 + 12 + 13 + 0.5)
    assert search["wall_s_max"] == 13.0 and search["job_name"] == "earth_vs_size"
    assert [g["task_type"] for g in diag.timing_groups(db, job_id=other)["items"]] == ["verify"]
    assert [g["job_id"] for g in diag.timing_groups(db, task_type="verify")["items"]] == [other]
    second = diag.timing_groups(db, page=1, page_size=3)
    assert [(g["job_id"], g["task_type"]) for g in second["items"]] == [(other, "verify")]
    assert second["total"] == 4


def _read_back(text: str) -> list[list[str]]:
    return list(csv.reader(io.StringIO(text, newline="")))


def test_csv_is_real_csv(db, grid):
    job, searches = grid
    buf = io.StringIO(newline="")
    assert diag.export_csv(db, job, SEARCH, buf) == 6
    table = _read_back(buf.getvalue())
    header, body = table[0], table[1:]
    assert header == diag.timings(db, job, SEARCH)["columns"]
    assert len(body) == 6 and all(len(r) == len(header) for r in body)
    rows_by_id = {int(r[0]): dict(zip(header, r)) for r in body}
    awkward = rows_by_id[searches[3]]
    assert awkward["tda"] == AWKWARD                          # comma and quotes intact, one cell
    assert awkward["size"] == "0.25" and awkward["wall_s"] == "13.0" and awkward["outcome"] == "FAIL"
    assert awkward["peaks"] == "[1, 2]"                       # lists as JSON
    assert rows_by_id[searches[5]]["wall_s"] == ""            # null as an empty cell
    assert '"tls, ""fast"" mode"' in buf.getvalue()           # quoted the csv way


def test_passfail_csv(db, grid):
    job, _ = grid
    buf = io.StringIO(newline="")
    diag.export_csv(db, job, SEARCH, buf, kind="passfail")
    table = _read_back(buf.getvalue())
    assert table[0][-1] == "outcome" and [r[-1] for r in table[1:]] == ["FAIL", "PASS", "PASS", "FAIL", "", ""]


def test_csv_cells_with_newlines_booleans_and_floats():
    buf = io.StringIO(newline="")
    diag.write_csv(buf, ["a", "b", "c", "d"], [{"a": "two\nlines", "b": True, "c": 0.1 + 0.2, "d": {"k": 1}}])
    assert _read_back(buf.getvalue()) == [["a", "b", "c", "d"], ["two\nlines", "true", "0.30000000000000004",
                                                                 '{"k": 1}']]


def test_export_reads_past_the_batch_size(db, rows, monkeypatch):
    from eas_runtime.diagnostics import tables
    monkeypatch.setattr(tables, "_CHUNK", 4)
    job = rows.job()
    ids = [rows.task(job, "t", metadata={"i": i}) for i in range(10)]
    buf = io.StringIO(newline="")
    assert diag.export_csv(db, job, "t", buf) == 10
    assert [int(r[0]) for r in _read_back(buf.getvalue())[1:]] == ids


def test_unknown_job(db):
    with pytest.raises(diag.NotFound, match="no job 7"):
        diag.timings(db, 7, "t")
    with pytest.raises(diag.NotFound):
        diag.export_csv(db, 7, "t", io.StringIO())
