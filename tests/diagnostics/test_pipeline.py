"""Diagnostics of a real pipeline run on the embedded runtime: uploads under a watch rule,
one good light curve searched by BLS and one corrupt file failing at ingest."""
from __future__ import annotations

import csv
import io
import os

import pytest
from sqlalchemy import select

from eas_runtime import diagnostics as diag
from eas_runtime.db.models import Task
from eas_runtime.demo import make_lightcurves
from eas_runtime.embedded import EmbeddedRuntime
from eas_runtime.resources import Resources
from eas_runtime.settings import PROJECT_ROOT
from tests.e2e.helpers import CHAIN, embedded_settings, settled, wait_for, watch

SAMPLES = PROJECT_ROOT / "functions" / "ingest_external_lcs" / "sample"
SEARCH = "transit_search_bls_reference"


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """One small run, shared by the tests of this module (read-only after it settles)."""
    tmp = tmp_path_factory.mktemp("pipeline")
    with pytest.MonkeyPatch.context() as mp:           # no EAS_* of the caller's (see conftest)
        for name in [n for n in os.environ if n.startswith("EAS_") and n != "EAS_SHARED_DIR" or n == "K_SINK"]:
            mp.delenv(name)
        settings = embedded_settings(tmp)
    runtime = EmbeddedRuntime(settings).start()
    try:
        watch(runtime)
        store = Resources(runtime.settings, db=runtime.db).store
        (good, period), = make_lightcurves(tmp / "lcs", 1)
        bad = tmp / "truncated.gz"
        bad.write_bytes((SAMPLES / "demo_superearth_first_5d.gz").read_bytes()[:700])
        store.put_file(f"inbox/{good.name}", good)
        store.put_file("inbox/truncated.gz", bad)
        wait_for(settled(runtime.db, expected_tasks=2 * len(CHAIN)), what="both jobs to settle")
        with runtime.db.read() as s:
            good_job = s.scalar(select(Task.job_id).where(Task.task_type == SEARCH, Task.state == "done"))
            bad_job = s.scalar(select(Task.job_id).where(Task.state == "failed"))
        yield runtime, {"good": good_job, "bad": bad_job, "period": period}
    finally:
        runtime.stop()


def test_tree_and_progress_of_a_real_run(run):
    runtime, ids = run
    db, stall_s = runtime.db, runtime.settings.stall_s
    tree = diag.tree(db, stall_s=stall_s)
    assert tree["total"] == 6
    by_job = {}
    for item in tree["items"]:
        by_job.setdefault(item["job_id"], []).append((item["task_type"], item["state"], item["depth"]))
    assert by_job[ids["good"]] == [(t, "done", 0) for t in CHAIN]
    assert by_job[ids["bad"]] == [(CHAIN[0], "failed", 0), (CHAIN[1], "waiting", 0), (CHAIN[2], "waiting", 0)]
    counts = diag.progress(db, stall_s=stall_s)["all"]["counts"]
    assert (counts["done"], counts["failed"], counts["waiting"]) == (3, 1, 2)
    assert diag.tree(db, running_only=True, stall_s=stall_s)["total"] == 0


def test_errors_show_the_ingest_failure_with_its_traceback(run):
    runtime, ids = run
    errors = diag.errors(runtime.db)
    assert errors["total"] == 1
    e = errors["items"][0]
    assert (e["job_id"], e["task_type"], e["kind"]) == (ids["bad"], CHAIN[0], "input")
    assert "inbox/truncated.gz: truncated gzip stream" in e["error"]
    assert e["host"] and e["started"] and e["ended"]


def test_timings_and_passfail_of_the_search(run):
    runtime, ids = run
    table = diag.timings(runtime.db, ids["good"], SEARCH)
    assert {"period", "target_period", "outcome", "wall_s", "cpu_s"} <= set(table["columns"])
    row = table["items"][0]
    assert row["state"] == "done" and row["outcome"] == "PASS"
    assert abs(row["period"] / ids["period"] - 1) < 0.03
    assert row["wall_s"] > 0 and row["cpu_s"] > 0
    buf = io.StringIO(newline="")
    diag.export_csv(runtime.db, ids["good"], SEARCH, buf)
    read = list(csv.DictReader(io.StringIO(buf.getvalue(), newline="")))
    assert len(read) == 1 and read[0]["outcome"] == "PASS" and float(read[0]["period"]) == row["period"]
    assert diag.passfail(runtime.db, ids["good"], SEARCH)["summary"] == {"PASS": 1}


def test_nothing_left_in_flight_and_every_attempt_on_the_task_page(run):
    runtime, ids = run

    def drained():
        # The runtime still runs: its reconcile tick (every second here) makes a delivery that
        # lives for a moment, so "nothing in flight" means nothing stays there.
        inflight = diag.inflight(runtime.db)
        return inflight["attempts"]["total"] == 0 and inflight["deliveries"]["total"] == 0
    wait_for(drained, timeout_s=60, interval_s=0.05, what="nothing in flight")
    with runtime.db.read() as s:
        search = s.scalar(select(Task.id).where(Task.job_id == ids["good"], Task.task_type == SEARCH))
    page = diag.task_detail(runtime.db, search)
    assert len(page["attempts"]) == 1 and page["attempts"][0]["metadata"]["outcome"] == "PASS"
    assert page["inputs"][0]["versions"][0]["passed_qc"] is True
    assert diag.logs(runtime.db, job_id=ids["good"])["total"] >= 0


def test_the_eas_command_reads_the_running_pipeline(run, capsys):
    from eas_runtime import cli
    runtime, ids = run
    url = runtime.settings.db_url
    assert cli.main(["--database-url", url, "errors"]) == 0
    assert "truncated gzip stream" in capsys.readouterr().out
    assert cli.main(["--database-url", url, "timings", "--job", str(ids["good"]), "--type", SEARCH]) == 0
    assert "PASS" in capsys.readouterr().out
