"""Pages and their JSON twins under /api/."""
from __future__ import annotations

from flask import Blueprint, abort, current_app, jsonify, render_template, request

from eas_runtime.status import status_summary

bp = Blueprint("site", __name__)


def _db():
    return current_app.extensions["eas_resources"].db


def _page() -> int:
    try:
        return max(0, int(request.args.get("page", 0)))
    except ValueError:
        abort(400, "page must be a whole number")


def summary_data() -> dict:
    return status_summary(_db())


@bp.get("/")
def index():
    return render_template("index.html", summary=summary_data())


@bp.get("/api/summary")
def api_summary():
    return jsonify(summary_data())


@bp.get("/healthz")
def healthz():
    return "ok\n"
