"""Submitting large jobs: compile, insert and schedule (SQLite, the embedded default).

The job is the 2-D detection grid of the prototype's feature tests (``detection_grid_2d.json``:
20,736 chains, 128,029 task rows), or with ``quick`` a 20,020-task null job. Each figure is
measured beside a reference in the same run:

* insertion: the bulk inserter (a multi-row ``INSERT ... RETURNING`` per tree level, one
  executemany per table for inputs, outputs and metadata inputs) against the prototype's
  strategy of one INSERT per row with a round trip for its id (here: an ORM ``add`` and
  ``flush`` per task, then its inputs, outputs and metadata inputs);
* peak memory: the growth of the resident set while compiling and inserting, each strategy in a
  fresh process;
* expression evaluation: the safe interpreter against Python's ``eval`` of the same
  (pre-compiled) expression, which the prototype used;
* scheduling: claiming every ready task of the job (one transaction per claim).
"""
from __future__ import annotations

import concurrent.futures as cf
import gc
import json
import multiprocessing
import resource
import tempfile
import time
from pathlib import Path

from sqlalchemy import func, select

from eas_runtime.db.models import DONE, WAITING, Job, Task, TaskInput, TaskMetadataInput, TaskOutput
from eas_runtime.db.session import Database
from eas_runtime.jobs import compile_job, insert_tree
from eas_runtime.settings import PROJECT_ROOT

GRID = PROJECT_ROOT / "examples" / "jobs" / "detection_grid_2d.json"
NULL_JOB = {"job_name": "big", "working_directory": "big", "task_list": [
    {"task": "execution_for_loop", "parameter": "group", "values": list(range(20)), "task_list": [
        {"task": "null", "name": "source", "outputs": {"receipt": "'source_{group_index}.json'.format(**metadata)"}},
        {"task": "execution_for_loop", "parameter": "member", "linear_range": [0, 1, 1000], "task_list": [
            {"task": "null", "inputs": {"receipt": "'source_{group_index}.json'.format(**metadata)"},
             "outputs": {"r": "'r_{group_index}_{member_index}.json'.format(**metadata)"}}]}]}]}


def _database(tmp: str, name: str) -> Database:
    db = Database(f"sqlite:///{Path(tmp) / name}")
    db.create_schema()
    return db


def insert_one_row_at_a_time(db: Database, compiled) -> None:
    """The reference: one INSERT and one id round trip per task row, then its other rows."""
    with db.session() as s:
        job = Job(name=compiled.job_name, working_directory=compiled.working_directory, spec={})
        s.add(job)
        s.flush()
        ids: dict[int, int] = {}

        def add(node, parent_id):
            task = Task(job_id=job.id, parent_id=parent_id, path=node.path, name=node.name,
                        task_type=node.task_type, working_directory=node.working_directory, params=node.params,
                        fully_configured=not node.late, state=DONE if node.expanded else WAITING)
            s.add(task)
            s.flush()
            ids[id(node)] = task.id
            for semantic, key in node.inputs.items():
                s.add(TaskInput(task_id=task.id, semantic_name=semantic, key=key))
            for semantic, key in node.outputs.items():
                s.add(TaskOutput(task_id=task.id, semantic_name=semantic, key=key))
            for r in node.requires:
                s.add(TaskMetadataInput(task_id=task.id, source_task_id=ids[id(r)]))
            for child in node.children:
                add(child, task.id)
        for root in compiled.roots:
            add(root, None)


def insert_bulk(db: Database, compiled) -> None:
    with db.session() as s:
        job = Job(name=compiled.job_name, working_directory=compiled.working_directory, spec={})
        s.add(job)
        s.flush()
        insert_tree(s, job.id, job.name, compiled.roots)


def _rows(db: Database) -> int:
    with db.read() as s:
        return s.scalar(select(func.count()).select_from(Task))


def _max_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def measure(strategy: str, quick: bool) -> dict:
    """In a fresh process: compile the job and insert it with ``strategy`` (bulk | rows) into a
    new SQLite database; times, rows, and the growth of the peak resident memory [MB]."""
    spec = NULL_JOB if quick else json.loads(GRID.read_text())
    with tempfile.TemporaryDirectory(prefix="eas-bench-jobs-") as tmp:
        db = _database(tmp, "eas.db")
        gc.collect()
        base = _max_rss_mb()
        t = time.perf_counter()
        compiled = compile_job(spec)
        compile_s = time.perf_counter() - t
        t = time.perf_counter()
        (insert_bulk if strategy == "bulk" else insert_one_row_at_a_time)(db, compiled)
        insert_s = time.perf_counter() - t
        peak = _max_rss_mb() - base
        out = {"compile_s": compile_s, "insert_s": insert_s, "rows": _rows(db), "peak_mb": peak}
        if quick and strategy == "bulk":
            from eas_runtime.control import scheduler
            t = time.perf_counter()
            out["claimed"] = len(scheduler.schedule(db, lambda event: True))
            out["schedule_s"] = time.perf_counter() - t
        db.dispose()
        return out


def _in_child(strategy: str, quick: bool) -> dict:
    ctx = multiprocessing.get_context("spawn")
    with cf.ProcessPoolExecutor(max_workers=1, mp_context=ctx) as pool:
        return pool.submit(measure, strategy, quick).result()


def expression_cost(n: int = 20_000) -> tuple[float, float]:
    """Microseconds per evaluation: the safe interpreter, and Python's eval (the prototype)."""
    from eas_runtime.jobs.expressions import Env, evaluate
    text = "'grid2d_{tda_index}_{cadence_index}_{size_index}_{period_index}_{impact_index}.gz'.format(**metadata)"
    metadata = {"tda_index": 1, "cadence_index": 0, "size_index": 3, "period_index": 7, "impact_index": 2}
    t = time.perf_counter()
    for i in range(n):
        evaluate(text, Env({**metadata, "impact_index": i}))
    safe = (time.perf_counter() - t) / n * 1e6
    code = compile(text, "<job>", "eval")
    t = time.perf_counter()
    for i in range(n):
        eval(code, {"metadata": {**metadata, "impact_index": i}})
    plain = (time.perf_counter() - t) / n * 1e6
    return safe, plain


def run(quick: bool = False) -> list[tuple[str, str, str, str]]:
    """Rows (figure, measured, reference, ratio) for the benchmark table."""
    label = "20,020-task null job" if quick else "2-D detection grid (20,736 chains)"
    bulk, rows_ = _in_child("bulk", quick), _in_child("rows", quick)
    assert bulk["rows"] == rows_["rows"]
    n = bulk["rows"]
    out = [(f"compile {label}, {n:,} task rows [s]", f"{bulk['compile_s']:.1f}", "", ""),
           (f"insert {n:,} task rows [s]", f"{bulk['insert_s']:.1f}",
            f"{rows_['insert_s']:.1f} (one INSERT per row)", f"{rows_['insert_s'] / bulk['insert_s']:.1f}x faster"),
           ("insert, task rows per second", f"{n / bulk['insert_s']:,.0f}", f"{n / rows_['insert_s']:,.0f}",
            f"{rows_['insert_s'] / bulk['insert_s']:.1f}x"),
           ("peak memory growth, compile + insert [MB]", f"{bulk['peak_mb']:.0f}",
            f"{rows_['peak_mb']:.0f} (one INSERT per row)", f"{rows_['peak_mb'] / max(bulk['peak_mb'], 1):.1f}x")]
    if "claimed" in bulk:
        out.append((f"schedule: claim the {bulk['claimed']} ready tasks [s]", f"{bulk['schedule_s']:.2f}", "",
                    f"{bulk['claimed'] / bulk['schedule_s']:,.0f} claims/s"))
    safe_us, eval_us = expression_cost(5_000 if quick else 20_000)
    out.append(("expression '...'.format(**metadata) [us]", f"{safe_us:.1f}", f"{eval_us:.1f} (Python eval)",
                f"{safe_us / eval_us:.1f}x slower"))
    return out


if __name__ == "__main__":
    import sys
    for row in run(quick="--quick" in sys.argv):
        print("  ".join(row))
