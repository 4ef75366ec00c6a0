"""Pages and their JSON twins under /api/."""
from __future__ import annotations

from flask import Blueprint, abort, current_app, jsonify, render_template, request
from sqlalchemy import select

from eas_runtime.db.models import Attempt, DeadLetter, Product, ProductVersion, Task
from eas_runtime.status import status_summary

bp = Blueprint("site", __name__)
PAGE = 100


def _db():
    return current_app.extensions["eas_resources"].db


def _page() -> int:
    try:
        return max(0, int(request.args.get("page", 0)))
    except ValueError:
        abort(400, "page must be a whole number")


def summary_data() -> dict:
    return status_summary(_db())


def products_data(page: int, prefix: str = "") -> list[dict]:
    with _db().read() as s:
        q = select(Product).order_by(Product.key).offset(page * PAGE).limit(PAGE)
        if prefix:
            q = q.where(Product.key.startswith(prefix, autoescape=True))
        out = []
        for p in s.scalars(q):
            versions = s.scalars(select(ProductVersion).where(ProductVersion.product_id == p.id)
                                 .order_by(ProductVersion.id)).all()
            out.append({"key": p.key, "directory": p.directory, "filename": p.filename,
                        "semantic_type": p.semantic_type, "generator_task_id": p.generator_task_id,
                        "versions": [{"id": v.id, "size": v.size, "md5": v.etag, "passed_qc": v.passed_qc,
                                      "attempt_id": v.attempt_id, "created": v.created_at.isoformat()}
                                     for v in versions]})
        return out


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


@bp.get("/")
def index():
    return render_template("index.html", summary=summary_data())


@bp.get("/products")
def products():
    page = _page()
    return render_template("products.html", products=products_data(page, request.args.get("prefix", "")),
                           page=page, prefix=request.args.get("prefix", ""))


@bp.get("/errors")
def errors():
    page = _page()
    return render_template("errors.html", errors=errors_data(page), page=page)


@bp.get("/api/summary")
def api_summary():
    return jsonify(summary_data())


@bp.get("/api/products")
def api_products():
    return jsonify(products_data(_page(), request.args.get("prefix", "")))


@bp.get("/api/errors")
def api_errors():
    return jsonify(errors_data(_page()))


@bp.get("/healthz")
def healthz():
    return "ok\n"
