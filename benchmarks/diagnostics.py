"""Diagnostics queries on a large synthetic task database (SQLite, the embedded default).

``populate`` writes a database the size issue 5 names: 100,000 tasks (a grid job of nested
loops plus many small watch-rule jobs), an attempt per started task, loop parameters and
search results as metadata, and 1,000,000 log lines. ``run`` times the query behind each
diagnostics page on it (the median of a few calls, after a warm-up) against a reference of
0.5 s, the time a page may take before it feels slow.
"""
from __future__ import annotations

import datetime as dt
import random
import statistics
import tempfile
import time
from pathlib import Path

from sqlalchemy import insert

from eas_runtime.db.models import Attempt, Job, LogMessage, MetadataItem, Task, utcnow
from eas_runtime.db.session import Database

REFERENCE_S = 0.5
TRACEBACK = ('Traceback (most recent call last):\n  File "science.py", line 12, in search\n'
             '    raise RuntimeError(msg)\nRuntimeError: no finite flux values in the light curve')


def populate(db: Database, tasks: int = 100_000, log_lines: int = 1_000_000, grid_chains: int = 10_000,
             seed: int = 1) -> dict:
    """Fill an empty database; return the ids worth querying (grid job, its loop task, ...).

    The grid job is ``execution_for_loop`` (top level) -> ``grid_chains`` chains of
    synthesis -> verify -> search (children of the loop); the rest are flat 3-task jobs.
    States: about 1 % failed (with a traceback), 0.2 % running (a quarter of them stalled),
    0.5 % waiting for a retry after a lost attempt, the not-yet-run tail waiting; the rest done.
    """
    rng = random.Random(seed)
    now = utcnow()
    t0 = now - dt.timedelta(days=2)
    jobs, task_rows, attempt_rows, meta_rows, log_rows = [], [], [], [], []
    chain = ("synthesis_batman", "verify", "transit_search_tls")
    grid_tasks = 1 + 3 * grid_chains
    n_small = max(0, (tasks - grid_tasks) // 3)
    jobs.append({"id": 1, "name": "grid", "working_directory": "grid", "spec": {}, "cancelled": False,
                 "created_at": t0})
    task_id = attempt_id = meta_id = 0

    def add_task(job_id, task_type, parent, path, meta, params=None):
        nonlocal task_id, meta_id
        task_id += 1
        r = rng.random()
        state = ("failed" if r < 0.01 else "running" if r < 0.012 else "waiting" if r < 0.017
                 else "done")
        if task_id > tasks * 0.97:
            state = "waiting"                     # the tail has not run yet
        task_rows.append({"id": task_id, "job_id": job_id, "parent_id": parent, "path": path, "name": "",
                          "task_type": task_type, "working_directory": "", "params": params or {},
                          "fully_configured": True, "state": state, "attempt_count": 0,
                          "retry_science_failures": False, "retry_at": None, "created_at": t0})
        for key, value in {"path": path, **meta}.items():
            meta_id += 1
            meta_rows.append({"id": meta_id, "owner_kind": "task", "owner_id": task_id, "key": key,
                              "value": value, "unit": ""})
        return task_id, state

    def add_attempt(tid, state, task_type):
        nonlocal attempt_id, meta_id
        row = task_rows[tid - 1]
        if state == "waiting" and tid > tasks * 0.97:
            return
        attempt_id += 1
        row["attempt_count"] = 1
        started = t0 + dt.timedelta(seconds=tid)
        a = {"id": attempt_id, "task_id": tid, "number": 1, "queued_at": started, "sent_at": started,
             "started_at": started, "host": f"node-{tid % 7}", "pid": 1000 + tid % 5000,
             "error": False, "error_kind": "", "error_text": "", "all_products_passed_qc": True,
             "wall_s": None, "cpu_s": None, "cpu_children_s": None, "heartbeat_at": started,
             "ended_at": None, "state": "finished"}
        if state == "running":
            a.update(state="running", all_products_passed_qc=None,
                     heartbeat_at=now - dt.timedelta(seconds=600 if tid % 4 == 0 else 5))
        elif state == "waiting":                  # lost attempt, retry pending
            row["retry_at"] = now + dt.timedelta(seconds=60)
            a.update(error=True, error_kind="infrastructure", error_text="stalled: no heartbeat",
                     ended_at=started + dt.timedelta(seconds=400))
        else:
            wall = rng.uniform(0.5, 60.0)
            a.update(wall_s=wall, cpu_s=wall * 0.9, cpu_children_s=0.0,
                     ended_at=started + dt.timedelta(seconds=wall))
            if state == "failed":
                a.update(error=True, error_kind="science", error_text=TRACEBACK, all_products_passed_qc=False)
            elif task_type.startswith("transit_search"):
                found = 50.0 * rng.choice([1.0, 1.0, 1.0, 0.5, 2.0]) * rng.uniform(0.995, 1.005)
                for key, value in (("period", found), ("target_period", 50.0),
                                   ("outcome", "PASS" if 0.97 < 50.0 / found < 1.03 else "FAIL")):
                    meta_id += 1
                    meta_rows.append({"id": meta_id, "owner_kind": "attempt", "owner_id": attempt_id,
                                      "key": key, "value": value, "unit": ""})
        attempt_rows.append(a)

    root, _ = add_task(1, "execution_for_loop", None, "task_list[0]", {})
    task_rows[0]["state"] = "done"
    sizes = [0.25 * (16 ** (i / 99)) for i in range(100)]
    for c in range(grid_chains):
        size_index, cadence_index = c % 100, (c // 100) % 2
        meta = {"job_name": "grid", "size": sizes[size_index], "size_index": size_index,
                "cadence": (900, 25)[cadence_index], "cadence_index": cadence_index,
                "tda": "tls", "tda_index": 0}
        for i, task_type in enumerate(chain):
            tid, state = add_task(1, task_type, root, f"task_list[0].task_list[{i}]", meta,
                                  {"lc_duration": 730} if i == 2 else None)
            add_attempt(tid, state, task_type)
    for j in range(n_small):
        job_id = j + 2
        jobs.append({"id": job_id, "name": f"inbox/star_{j:06d}.fits", "spec": {}, "cancelled": False,
                     "working_directory": f"processed/star_{j:06d}", "created_at": t0})
        for i, task_type in enumerate(("ingest_external_lcs", "verify", "transit_search_bls_reference")):
            tid, state = add_task(job_id, task_type, None, f"task_list[{i}]", {"job_name": jobs[-1]["name"]})
            add_attempt(tid, state, task_type)
    severities = ["INFO"] * 90 + ["DEBUG"] * 6 + ["WARNING"] * 3 + ["ERROR"]
    for n in range(log_lines):
        a = attempt_rows[n % len(attempt_rows)]
        log_rows.append({"id": n + 1, "attempt_id": a["id"], "severity": severities[n % 100],
                         "text": f"step {n // len(attempt_rows)} of attempt {a['id']}",
                         "time": a["started_at"] + dt.timedelta(milliseconds=n // len(attempt_rows))})
    with db.session() as s:
        for model, rows in ((Job, jobs), (Task, task_rows), (Attempt, attempt_rows),
                            (MetadataItem, meta_rows), (LogMessage, log_rows)):
            for i in range(0, len(rows), 20_000):
                s.execute(insert(model.__table__), rows[i:i + 20_000])
    return {"grid_job": 1, "grid_loop_task": root, "search_type": "transit_search_tls",
            "small_job": 2 if n_small else None, "tasks": len(task_rows), "attempts": len(attempt_rows),
            "log_lines": len(log_rows), "jobs": len(jobs)}


def _median_s(fn, repeats: int) -> float:
    fn()                                                    # warm-up: caches, statement compile
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def run(quick: bool = False) -> list[tuple[str, str, str, str]]:
    """Rows (figure, measured, reference, ratio) for the benchmark table."""
    from eas_runtime import diagnostics as d

    with tempfile.TemporaryDirectory(prefix="eas-bench-diag-") as tmp:
        db = Database(f"sqlite:///{Path(tmp) / 'eas.db'}")
        db.create_schema()
        t = time.perf_counter()
        ids = populate(db)
        build_s = time.perf_counter() - t
        job, loop, search = ids["grid_job"], ids["grid_loop_task"], ids["search_type"]
        repeats = 3 if quick else 7
        cases = [
            ("tree, all jobs, first page", lambda: d.tree(db)),
            ("tree, all jobs, page 400", lambda: d.tree(db, page=400)),
            ("tree, grid job, depth 1, page 50", lambda: d.tree(db, job_id=job, depth=1, page=50)),
            ("tree, running only", lambda: d.tree(db, running_only=True)),
            ("tree, subtree of the grid loop", lambda: d.tree(db, subtree=loop)),
            ("progress, all tasks", lambda: d.progress(db)),
            ("jobs, first page", lambda: d.jobs(db)),
            ("errors, newest page", lambda: d.errors(db)),
            ("errors, since 1h", lambda: d.errors(db, since="1h")),
            ("timing groups", lambda: d.timing_groups(db)),
            ("timings, grid search, page 50", lambda: d.timings(db, job, search, page=50)),
            ("passfail, grid search", lambda: d.passfail(db, job, search)),
            ("inflight", lambda: d.inflight(db)),
            ("logs, all, page 5000", lambda: d.logs(db, page=5000)),
            ("logs, WARNING+, newest first", lambda: d.logs(db, severity="WARNING", newest_first=True)),
            ("logs, one small job", lambda: d.logs(db, job_id=ids["small_job"])),
            ("logs, the grid job (30 % of all lines), page 10", lambda: d.logs(db, job_id=job, page=10)),
            ("task page (all attempts)", lambda: d.task_detail(db, loop + 3)),
        ]
        rows = [(f"diagnostics: build {ids['tasks']:,} tasks, {ids['log_lines']:,} log lines [s]",
                 f"{build_s:.1f}", "", "")]
        for label, fn in cases:
            s = _median_s(fn, repeats)
            ratio = f"{REFERENCE_S / s:.1f}x under" if s < REFERENCE_S else f"{s / REFERENCE_S:.1f}x over"
            rows.append((f"diagnostics: {label} [ms]", f"{s * 1000:.1f}", f"{REFERENCE_S * 1000:.0f}", ratio))
        import io
        buf = io.StringIO()
        s = _median_s(lambda: d.export_csv(db, job, search, io.StringIO()), 1 if quick else 3)
        n = d.export_csv(db, job, search, buf)
        rows.append((f"diagnostics: timings CSV of {n:,} rows [ms]", f"{s * 1000:.0f}", "", ""))
        db.dispose()
    return rows


if __name__ == "__main__":
    import sys
    for row in run(quick="--quick" in sys.argv):
        print("  ".join(row))
