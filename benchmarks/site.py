"""The index site's pages on a large database, through Flask's test client.

The database is the diagnostics benchmark's (:func:`benchmarks.diagnostics.populate`: 100,000
tasks, an attempt per started task, loop parameters and results, 1,000,000 log lines) plus
100,000 products with a version each (three outputs per small job, the rest uploads under
``inbox/``). Every page of the site is requested several times after a warm-up; each page's
median is reported beside the median of the bare query it shows (the diagnostics or products
query with the page's arguments), measured in the same run, so the ratio is the cost of the
page around its query: parameter parsing, the template and the response. Pages without a
query (functions) are compared with ``/healthz``. Only the slowest pages get a row of their
own, then one row sums up every page against the 0.5 s a page may take.
"""
from __future__ import annotations

import datetime as dt
import statistics
import tempfile
import time
from pathlib import Path
from urllib.parse import quote

from sqlalchemy import insert, select

from benchmarks.diagnostics import populate
from eas_runtime.db.models import Product, ProductVersion, Task, TaskOutput, utcnow
from eas_runtime.db.session import Database

BUDGET_S = 0.5
SLOWEST = 10


def add_products(db: Database, products: int = 100_000) -> str:
    """Products with one version each: the small jobs' three outputs, then uploads; returns
    the key of a file whose page is timed."""
    t0 = utcnow() - dt.timedelta(days=1)
    rows, versions, outputs = [], [], []
    with db.read() as s:
        small = s.execute(select(Task.id, Task.job_id, Task.task_type).where(Task.parent_id.is_(None),
                                                                             Task.job_id > 1)
                          .order_by(Task.id)).all()
    for i, (task_id, job_id, task_type) in enumerate(small[:products]):
        directory = f"processed/star_{job_id - 2:06d}"
        rows.append({"id": i + 1, "key": f"{directory}/{task_type}.fits", "directory": directory,
                     "filename": f"{task_type}.fits", "semantic_type": task_type,
                     "mime_type": "application/fits", "generator_task_id": task_id, "created_at": t0})
        outputs.append({"task_id": task_id, "semantic_name": "lightcurve", "key": rows[-1]["key"]})
    for i in range(len(rows), products):
        name = f"upload_{i:06d}.fits"
        directory = f"inbox/batch_{i // 1000:03d}"
        rows.append({"id": i + 1, "key": f"{directory}/{name}", "directory": directory, "filename": name,
                     "semantic_type": "upload", "mime_type": "application/fits",
                     "generator_task_id": None, "created_at": t0})
    for r in rows:
        versions.append({"id": r["id"], "product_id": r["id"], "attempt_id": None, "etag": f"{r['id']:032x}",
                         "size": 1_000_000 + r["id"], "passed_qc": True, "created_at": t0})
    with db.session() as s:
        for model, batch in ((Product, rows), (ProductVersion, versions), (TaskOutput, outputs)):
            for i in range(0, len(batch), 20_000):
                s.execute(insert(model.__table__), batch[i:i + 20_000])
    return rows[0]["key"]


def _median_s(fn, repeats: int) -> float:
    fn()                                                    # warm-up: caches, statement compile
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def _get(client, path: str):
    def fetch():
        response = client.get(path)
        body = response.get_data()                          # a streamed CSV is read to its end
        if response.status_code != 200:
            raise AssertionError(f"{path}: HTTP {response.status_code}: {body[:300]!r}")
    return fetch


def cases(db, ids: dict, key: str, stall_s: float) -> list[tuple[str, str, object]]:
    """(label, path, the bare query behind it or None for /healthz)."""
    from eas_runtime import diagnostics as d
    from eas_runtime.diagnostics.activity import activity
    from eas_runtime.site import _product_queries as products
    from eas_runtime.status import status_summary

    job, loop, search = ids["grid_job"], ids["grid_loop_task"], ids["search_type"]
    table = f"job={job}&task_type={search}"
    kw = {"stall_s": stall_s}
    return [
        ("summary", "/", lambda: status_summary(db)),
        ("jobs", "/jobs", lambda: d.jobs(db, **kw)),
        ("job page (grid)", f"/jobs/{job}", lambda: d.progress(db, job_id=job, **kw)),
        ("tree, first page", "/tasks", lambda: d.tree(db, **kw)),
        ("tree, page 400", "/tasks?page=400", lambda: d.tree(db, page=400, **kw)),
        ("tree, grid job, depth 1, page 50", f"/tasks?job={job}&depth=1&page=50",
         lambda: d.tree(db, job_id=job, depth=1, page=50, **kw)),
        ("tree, subtree of the grid loop", f"/tasks?subtree={loop}", lambda: d.tree(db, subtree=loop, **kw)),
        ("running tasks", "/tasks/running", lambda: d.tree(db, running_only=True, **kw)),
        ("task page", f"/tasks/{loop + 3}",
         lambda: (d.task_detail(db, loop + 3, **kw), d.logs(db, task_id=loop + 3))),
        ("progress, all tasks", "/progress", lambda: d.progress(db, **kw)),
        ("errors, newest page", "/errors", lambda: d.errors(db)),
        ("errors, since 1h", "/errors?since=1h", lambda: d.errors(db, since="1h")),
        ("dead letters", "/dead-letters", lambda: d.dead_letters(db)),
        ("timing groups", "/timings", lambda: d.timing_groups(db)),
        ("timings, grid search, page 50", f"/timings?{table}&page=50",
         lambda: d.timings(db, job, search, page=50, **kw)),
        ("pass/fail, grid search", f"/passfail?{table}", lambda: d.passfail(db, job, search, **kw)),
        ("timings CSV, grid search", f"/timings.csv?{table}",
         lambda: d.export_csv(db, job, search, _Null(), **kw)),
        ("logs, newest", "/logs", lambda: d.logs(db, newest_first=True)),
        ("logs, page 5000", "/logs?page=5000", lambda: d.logs(db, page=5000, newest_first=True)),
        ("logs, WARNING+", "/logs?severity=WARNING", lambda: d.logs(db, severity="WARNING", newest_first=True)),
        ("logs, grid job, page 10", f"/logs?job={job}&page=10",
         lambda: d.logs(db, job_id=job, page=10, newest_first=True)),
        ("activity, last day", "/activity?since=1d", lambda: activity(db, since="1d")),
        ("activity, two days", "/activity?since=2d", lambda: activity(db, since="2d")),
        ("functions", "/functions", None),
        ("products, top", "/products", lambda: products.listing(db, "")),
        ("products, processed/", "/products?prefix=processed/", lambda: products.listing(db, "processed/")),
        ("products, one file", f"/products/file/{quote(key)}", lambda: products.file_detail(db, key)),
    ]


class _Null:
    def write(self, text: str) -> int:
        return len(text)


def run(quick: bool = False) -> list[tuple[str, str, str, str]]:
    """Rows (figure, measured, reference, ratio) for the benchmark table."""
    from eas_runtime.resources import Resources
    from eas_runtime.settings import Settings
    from eas_runtime.site import create_app

    with tempfile.TemporaryDirectory(prefix="eas-bench-site-") as tmp:
        settings = Settings.load(environ={}, home=tmp, store_root=str(Path(tmp) / "store"))
        db = Database(settings.db_url)
        db.create_schema()
        t = time.perf_counter()
        ids = populate(db)
        key = add_products(db)
        build_s = time.perf_counter() - t
        client = create_app(Resources(settings, db=db)).test_client()
        repeats = 3 if quick else 7
        healthz_s = _median_s(_get(client, "/healthz"), repeats * 3)
        measured = []
        for label, path, query in cases(db, ids, key, settings.stall_s):
            page_s = _median_s(_get(client, path), repeats)
            ref_s = _median_s(query, repeats) if query is not None else healthz_s
            measured.append((label, page_s, ref_s, query is None))
        db.dispose()
    rows = [(f"site: build {ids['tasks']:,} tasks, {ids['log_lines']:,} log lines, 100,000 products [s]",
             f"{build_s:.1f}", "", "")]
    for label, page_s, ref_s, bare in sorted(measured, key=lambda m: -m[1])[:SLOWEST]:
        against = "/healthz" if bare else "its query"
        rows.append((f"site: {label} [ms]", f"{page_s * 1000:.1f}", f"{ref_s * 1000:.1f}",
                     f"{page_s / ref_s:.1f}x {against}"))
    slowest = max(m[1] for m in measured)
    median = statistics.median(m[1] for m in measured)
    rows.append((f"site: all {len(measured)} pages, median / slowest [ms]",
                 f"{median * 1000:.0f} / {slowest * 1000:.0f}", f"{BUDGET_S * 1000:.0f}",
                 f"slowest {slowest / BUDGET_S:.2f}x the budget"))
    return rows


if __name__ == "__main__":
    import sys
    for row in run(quick="--quick" in sys.argv):
        print("  ".join(row))
