"""Log messages of every attempt, with a severity filter and paging."""
from __future__ import annotations

from flask import Blueprint, jsonify, render_template

from eas_runtime import diagnostics
from eas_runtime.diagnostics import SEVERITIES, DiagnosticsError
from eas_runtime.site._request import db, id_arg, install, job_arg, page_args, text_arg

bp = install(Blueprint("logs", __name__))
ORDERS = ("newest", "oldest")


def logs_data() -> dict:
    """One page of log lines: ``severity`` (that level and above), ``job``, ``task``,
    ``attempt``, ``order`` (newest first by default, or oldest) and ``page``."""
    order = text_arg("order") or "newest"
    if order not in ORDERS:
        raise DiagnosticsError(f"order must be one of {', '.join(ORDERS)}, got {order!r}")
    return diagnostics.logs(db(), job_id=job_arg(), task_id=id_arg("task", "a task"),
                            attempt_id=id_arg("attempt", "an attempt"),
                            severity=text_arg("severity"), newest_first=order == "newest",
                            **page_args())


@bp.get("/logs")
def logs():
    return render_template("logs.html", data=logs_data(), severities=SEVERITIES)


@bp.get("/api/logs")
def api_logs():
    return jsonify(logs_data())
