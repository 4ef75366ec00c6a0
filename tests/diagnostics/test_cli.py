"""The eas diagnostics subcommands: text output, --json shapes, CSV files, exit statuses."""
from __future__ import annotations

import csv
import json

import pytest

from eas_runtime.db.models import A_QUEUED, A_RUNNING

PAGED = {"items", "page", "page_size", "total", "pages"}


@pytest.fixture
def pipeline(rows):
    """A small job: a loop with two searches (one PASS, one failed), a running verify."""
    job = rows.job("earth_vs_size")
    loop = rows.task(job, "execution_for_loop", path="task_list[0]", state="done")
    good = rows.task(job, "transit_search_tls", parent=loop, name="search", path="task_list[0].task_list[0]",
                     state="done", metadata={"size": 1.0, "size_index": 0, "tda": 'tls, "v2"'})
    rows.attempt(good, wall_s=12.5, cpu_s=12.0, metadata={"period": 50.0, "target_period": 50.0, "outcome": "PASS"},
                 logs=[("INFO", "searching"), ("WARNING", "few transits")])
    bad = rows.task(job, "transit_search_tls", parent=loop, name="search", path="task_list[0].task_list[0]",
                    state="failed", metadata={"size": 4.0, "size_index": 1, "tda": "tls"})
    rows.attempt(bad, error_kind="science", error_text="Traceback (most recent call last):\nValueError: boom")
    running = rows.task(job, "verify", state="running")
    rows.attempt(running, state=A_RUNNING, heartbeat_age_s=5, host="worker-3", pid=77)
    rows.attempt(rows.task(job, "verify", state="queued"), state=A_QUEUED)
    rows.delivery("eas-verify", tries=1, last_error="[503] busy")
    rows.dead_letter("tasktype 'nope' is not served")
    return {"job": job, "loop": loop, "good": good, "bad": bad, "running": running}


def test_tree(eas, pipeline):
    rc, out, _ = eas("tree")
    assert rc == 0
    lines = out.splitlines()
    assert lines[0] == f"job {pipeline['job']}  earth_vs_size"
    assert lines[1].startswith(f"    {pipeline['loop']}  execution_for_loop  [done]")
    assert lines[2].startswith(f"        {pipeline['good']}  transit_search_tls  search  [done]  attempts 1")
    assert lines[-1] == "5 tasks"
    data = eas.json("tree", "--depth", "0")
    assert PAGED <= set(data) and [i["depth"] for i in data["items"]] == [0, 0, 0]
    assert set(data["items"][0]) == {"task_id", "job_id", "parent_id", "depth", "task_type", "name", "state",
                                     "attempts", "path"}
    assert [i["task_id"] for i in eas.json("tree", "--running")["items"]] == [pipeline["running"]]
    assert [i["task_id"] for i in eas.json("tree", "--subtree", pipeline["loop"])["items"]] == \
        [pipeline["loop"], pipeline["good"], pipeline["bad"]]
    assert eas.json("tree", "--job", pipeline["job"], "--page-size", "2", "--page", "1")["items"][0]["task_id"] \
        == pipeline["bad"]
    rc, out, _ = eas("tree", "--page-size", "2")
    assert "tasks 1-2 of 5 (page 0 of 0-2" in out


def test_progress(eas, pipeline):
    rc, out, _ = eas("progress")
    assert rc == 0
    header, *body = out.splitlines()
    assert header.split() == ["task", "type", "total", "waiting", "queued", "running", "stalled", "done",
                              "failed", "cancelled"]
    assert body[-1].split()[:2] == ["all", "5"]
    assert "1 (50.0%)" in next(line for line in body if line.startswith("transit_search_tls"))
    data = eas.json("progress", "--job", pipeline["job"])
    assert set(data) == {"job_id", "states", "task_types", "all"}
    assert set(data["task_types"][0]) == {"task_type", "total", "counts", "percent"}


def test_errors_and_dead_letters(eas, pipeline):
    rc, out, _ = eas("errors")
    assert rc == 0
    assert "--- attempt" in out and "science error" in out
    assert "Traceback (most recent call last):\nValueError: boom" in out      # the whole traceback
    data = eas.json("errors", "--type", "transit_search_tls", "--since", "1h")
    assert PAGED <= set(data) and data["items"][0]["error"].endswith("ValueError: boom")
    assert eas.json("errors", "--job", pipeline["job"] + 1)["items"] == []
    rc, out, _ = eas("errors", "--dead-letters")
    assert "tasktype 'nope' is not served" in out
    assert eas.json("errors", "--dead-letters")["items"][0]["reason"] == "tasktype 'nope' is not served"
    rc, _, err = eas("errors", "--since", "last tuesday")
    assert rc == 2 and "since='last tuesday'" in err


def test_timings_list_table_and_csv(eas, pipeline, tmp_path):
    rc, out, _ = eas("timings")
    assert rc == 0 and "transit_search_tls" in out and "eas timings --job J --type T" in out
    groups = eas.json("timings")
    assert PAGED <= set(groups)
    assert {"job_id", "task_type", "tasks", "wall_s_mean"} <= set(groups["items"][0])
    table = eas.json("timings", "--job", pipeline["job"], "--type", "transit_search_tls")
    assert {"columns", "parameters", "results"} <= set(table)
    assert table["items"][0]["period"] == 50.0 and table["items"][0]["tda"] == 'tls, "v2"'
    rc, out, _ = eas("timings", "--job", pipeline["job"], "--type", "transit_search_tls")
    assert out.splitlines()[0].split()[:5] == ["task_id", "name", "path", "state", "attempts"]
    target = tmp_path / "timings.csv"
    rc, out, _ = eas("timings", "--job", pipeline["job"], "--type", "transit_search_tls", "--csv", target)
    assert rc == 0 and out.strip() == f"wrote 2 rows to {target}"
    with open(target, newline="", encoding="utf-8") as f:
        read = list(csv.DictReader(f))
    assert [r["tda"] for r in read] == ['tls, "v2"', "tls"]
    assert read[0]["wall_s"] == "12.5" and read[1]["outcome"] == ""
    assert list(read[0]) == table["columns"]
    rc, _, err = eas("timings", "--csv", target)
    assert rc == 2 and "--csv needs --job and --type" in err


def test_passfail_and_its_csv(eas, pipeline, tmp_path, capsys):
    rc, out, _ = eas("passfail", "--job", pipeline["job"], "--type", "transit_search_tls")
    assert rc == 0 and out.splitlines()[-1] == "outcomes: PASS 1, null 1"
    data = eas.json("passfail", "--job", pipeline["job"], "--type", "transit_search_tls")
    assert data["summary"] == {"PASS": 1, "null": 1} and data["columns"][-1] == "outcome"
    rc, out, _ = eas("passfail", "--job", pipeline["job"], "--type", "transit_search_tls", "--csv", "-")
    read = list(csv.reader(out.splitlines()))
    assert read[0] == data["columns"] and [r[-1] for r in read[1:]] == ["PASS", ""]


def test_inflight(eas, pipeline):
    rc, out, _ = eas("inflight")
    assert rc == 0
    assert "claimed attempts: 2" in out and "worker-3" in out
    assert "events awaiting delivery: 1" in out and "[503] busy" in out
    assert "dead letters: 1" in out
    data = eas.json("inflight")
    assert set(data) == {"attempts", "deliveries", "dead_letters"}
    assert PAGED <= set(data["attempts"]) and PAGED <= set(data["deliveries"])
    assert set(data["dead_letters"]) == {"count", "newest"}


def test_logs(eas, pipeline, capsys):
    rc, out, _ = eas("logs", "--task", pipeline["good"])
    assert rc == 0 and "INFO" in out and "searching" in out and "few transits" in out
    data = eas.json("logs", "--job", pipeline["job"], "--severity", "WARNING")
    assert [m["text"] for m in data["items"]] == ["few transits"] and PAGED <= set(data)
    with pytest.raises(SystemExit) as stop:          # one of --attempt, --task, --job
        eas("logs", "--task", "1", "--job", "1")
    assert stop.value.code == 2 and "not allowed with" in capsys.readouterr().err


def test_task_and_jobs(eas, pipeline):
    rc, out, _ = eas("task", pipeline["bad"])
    assert rc == 0 and "ValueError: boom" in out and "attempt 1" in out
    data = eas.json("task", pipeline["good"])
    assert data["attempts"][0]["metadata"]["outcome"] == "PASS"
    rc, _, err = eas("task", "424242")
    assert rc == 1 and "no task 424242" in err
    jobs = eas.json("jobs")
    assert jobs["items"][0]["name"] == "earth_vs_size" and jobs["items"][0]["total"] == 5


def test_db_backup_and_restore(eas, pipeline, tmp_path, rows):
    backup = tmp_path / "eas-backup.db"
    rc, out, _ = eas("db", "backup", backup)
    assert rc == 0 and f"backed up the task database to {backup}" in out
    rc, _, err = eas("db", "restore", backup)
    assert rc == 1 and "not empty" in err and "--force" in err
    rows.job("after the backup")
    rc, out, _ = eas("db", "restore", backup, "--force")
    assert rc == 0 and "restored" in out
    assert [j["name"] for j in eas.json("jobs")["items"]] == ["earth_vs_size"]
    rc, _, err = eas("db", "backup")
    assert rc == 2 and "needs a FILE" in err
    rc, out, _ = eas("db", "backup", tmp_path / "b2.db", "--json")
    assert json.loads(out)["format"] == "sqlite"


def test_without_a_database(capsys, tmp_path):
    from eas_runtime import cli
    rc = cli.main(["--home", str(tmp_path / "nowhere"), "progress"])
    assert rc == 1 and "no task database" in capsys.readouterr().err
    assert not (tmp_path / "nowhere").exists()          # looking does not create one
