"""Errors, tasks, jobs, progress, timings, logs, activity and functions."""
from __future__ import annotations

from flask import Blueprint, abort, current_app, jsonify, render_template, request
from sqlalchemy import select

from eas_runtime.db.models import Attempt, DeadLetter, Task

bp = Blueprint("pages", __name__)
PAGE = 100


def _db():
    return current_app.extensions["eas_resources"].db


def _page() -> int:
    try:
        return max(0, int(request.args.get("page", 0)))
    except ValueError:
        abort(400, "page must be a whole number")


def errors_data(page: int) -> dict:
    with _db().read() as s:
        attempts = s.execute(select(Attempt, Task).join(Task, Task.id == Attempt.task_id)
                             .where(Attempt.error.is_(True)).order_by(Attempt.ended_at.desc(), Attempt.id.desc())
                             .offset(page * PAGE).limit(PAGE)).all()
        letters = s.scalars(select(DeadLetter).order_by(DeadLetter.id.desc()).offset(page * PAGE).limit(PAGE)).all()
        return {
            "failed_attempts": [{"attempt_id": a.id, "task_id": t.id, "task_type": t.task_type, "job_id": t.job_id,
                                 "number": a.number, "kind": a.error_kind, "error": a.error_text,
                                 "ended": a.ended_at.isoformat() if a.ended_at else None}
                                for a, t in attempts],
            "dead_letters": [{"id": d.id, "time": d.time.isoformat(), "component": d.component,
                              "reason": d.reason, "event_id": d.event_id, "event_type": d.event_type}
                             for d in letters],
        }



@bp.get("/errors")
def errors():
    page = _page()
    return render_template("errors.html", errors=errors_data(page), page=page)


@bp.get("/api/errors")
def api_errors():
    return jsonify(errors_data(_page()))
