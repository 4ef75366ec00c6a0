"""Progress per task type, and the timings and pass/fail tables keyed by loop parameters.

``/timings`` and ``/passfail`` list the (job, task type) pairs with their run-time sums; with
both ``job`` and ``task_type`` they show that pair's table, one row per task, and the ``.csv``
twins stream the whole table (every page) as real CSV.
"""
from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterator

from flask import Blueprint, Response, jsonify, render_template
from sqlalchemy import func, select

from eas_runtime import diagnostics
from eas_runtime.db.models import Job, Task
from eas_runtime.diagnostics import DiagnosticsError, NotFound
from eas_runtime.diagnostics.tables import cell
from eas_runtime.site._request import db, install, job_arg, page_args, stall_s, text_arg

bp = install(Blueprint("tables", __name__))
KINDS = ("timings", "passfail")
_CSV_BATCH = 500


def progress_data() -> dict:
    """Counts and percentages of each display state per task type (``job``: of one job)."""
    return diagnostics.progress(db(), job_id=job_arg(), stall_s=stall_s())


def _pair(required: bool) -> tuple[int | None, str | None]:
    """(job, task_type) from the query; with ``required`` both must be given and the job must
    have tasks of that type (else 400 / 404)."""
    job, task_type = job_arg(), text_arg("task_type")
    if required and (job is None or task_type is None):
        missing = " and ".join(n for n, v in (("job", job), ("task_type", task_type)) if v is None)
        raise DiagnosticsError(f"a table needs job and task_type: {missing} missing")
    if job is not None and task_type is not None:
        with db().read() as s:
            if s.get(Job, job) is None:
                raise NotFound(f"no job {job}")
            if not s.scalar(select(func.count()).select_from(Task)
                            .where(Task.job_id == job, Task.task_type == task_type)):
                raise NotFound(f"job {job} has no task of type {task_type!r}")
    return job, task_type


def table_data(kind: str) -> dict:
    """The table of one (job, task type), or the list of pairs when either is not given; the
    answer's ``view`` says which (``table`` or ``groups``)."""
    job, task_type = _pair(required=False)
    if job is not None and task_type is not None:
        query = diagnostics.timings if kind == "timings" else diagnostics.passfail
        return {"view": "table", "kind": kind,
                **query(db(), job, task_type, stall_s=stall_s(), **page_args())}
    return {"view": "groups", "kind": kind,
            **diagnostics.timing_groups(db(), job_id=job, task_type=task_type, **page_args())}


def _csv_lines(columns: list[str], rows: Iterator[dict]) -> Iterator[str]:
    buf = io.StringIO()
    writer = csv.writer(buf)
    writer.writerow(columns)
    for n, row in enumerate(rows, 1):
        writer.writerow([cell(row.get(c)) for c in columns])
        if n % _CSV_BATCH == 0:
            yield buf.getvalue()
            buf.seek(0)
            buf.truncate()
    yield buf.getvalue()


def csv_response(kind: str) -> Response:
    job, task_type = _pair(required=True)
    assert job is not None and task_type is not None    # required: both given
    columns, rows = diagnostics.iter_table(db(), job, task_type, kind=kind, stall_s=stall_s())
    name = f"{kind}-job{job}-{re.sub(r'[^A-Za-z0-9_.-]+', '_', task_type)}.csv"
    return Response(_csv_lines(columns, rows), mimetype="text/csv",
                    headers={"Content-Disposition": f'attachment; filename="{name}"'})


@bp.get("/progress")
def progress():
    return render_template("progress.html", p=progress_data())


@bp.get("/api/progress")
def api_progress():
    return jsonify(progress_data())


def _page(kind: str):
    data = table_data(kind)
    template = "results_table.html" if data["view"] == "table" else "timing_groups.html"
    return render_template(template, data=data, kind=kind)


@bp.get("/timings")
def timings():
    return _page("timings")


@bp.get("/passfail")
def passfail():
    return _page("passfail")


@bp.get("/api/timings")
def api_timings():
    return jsonify(table_data("timings"))


@bp.get("/api/passfail")
def api_passfail():
    return jsonify(table_data("passfail"))


@bp.get("/timings.csv")
def timings_csv():
    return csv_response("timings")


@bp.get("/passfail.csv")
def passfail_csv():
    return csv_response("passfail")
