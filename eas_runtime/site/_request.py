"""Query parameters and error answers shared by the site's page blueprints.

Every page reads its filters with the parsers below, which raise :class:`DiagnosticsError`
naming the parameter and the value; :func:`install` maps that to 400, :class:`NotFound` to 404
and a database outage to 503: JSON ``{"error": ...}`` under ``/api/``, an HTML page otherwise.
"""
from __future__ import annotations

from urllib.parse import urlencode

from flask import Blueprint, current_app, jsonify, render_template, request
from werkzeug.exceptions import HTTPException

from eas_runtime.db.session import DatabaseUnavailable
from eas_runtime.diagnostics import DEFAULT_PAGE_SIZE, DiagnosticsError, NotFound


def resources():
    return current_app.extensions["eas_resources"]


def db():
    return resources().db


def stall_s() -> float:
    """Seconds after which a running attempt without a heartbeat shows as stalled."""
    return resources().settings.stall_s


def text_arg(name: str) -> str | None:
    """A text filter: None when absent or blank."""
    value = request.args.get(name, "").strip()
    return value or None


def int_arg(name: str, *, low: int | None = 0, high: int | None = None,
            meaning: str = "a whole number") -> int | None:
    """A whole-number filter: None when absent or blank; DiagnosticsError (400) otherwise."""
    raw = request.args.get(name, "").strip()
    if not raw:
        return None
    try:
        value = int(raw)
    except ValueError:
        raise DiagnosticsError(f"{name} must be {meaning}, got {raw!r}") from None
    if (low is not None and value < low) or (high is not None and value > high):
        bounds = f"from {low} to {high}" if high is not None else f">= {low}"
        raise DiagnosticsError(f"{name} must be {meaning} {bounds}, got {raw!r}")
    return value


def job_arg() -> int | None:
    return int_arg("job", low=1, meaning="a job id (a whole number)")


def page_args() -> dict:
    """``page`` (from 0) and ``page_size`` as keyword arguments for the diagnostics queries;
    the diagnostics layer checks page_size's upper bound."""
    page = int_arg("page", meaning="a whole number")
    size = int_arg("page_size", low=1, meaning="a whole number")
    return {"page": page or 0, "page_size": size or DEFAULT_PAGE_SIZE}


def url_with(**changes) -> str:
    """The current path with its query changed (None removes a parameter)."""
    args = {k: v for k, v in request.args.items()}
    for key, value in changes.items():
        if value is None or value == "":
            args.pop(key, None)
        else:
            args[key] = str(value)
    return request.path + ("?" + urlencode(args) if args else "")


def api_url() -> str:
    """The JSON twin of the current page, with the same query."""
    query = request.query_string.decode()
    return "/api" + request.path + ("?" + query if query else "")


def wants_json() -> bool:
    return request.path.startswith("/api/") or request.path.endswith(".csv")


def _answer(status: int, message: str):
    if wants_json():
        return jsonify(error=message), status
    return render_template("site_error.html", status=status, message=message), status


def install(bp: Blueprint) -> Blueprint:
    """Error answers and template helpers for one page blueprint."""
    bp.register_error_handler(DiagnosticsError, lambda exc: _answer(400, str(exc)))
    bp.register_error_handler(NotFound, lambda exc: _answer(404, str(exc)))
    bp.register_error_handler(DatabaseUnavailable,
                              lambda exc: _answer(503, f"the task database is unavailable: {exc}"))
    bp.register_error_handler(HTTPException,
                              lambda exc: _answer(exc.code or 500, exc.description or exc.name))
    bp.context_processor(lambda: {"url_with": url_with, "api_url": api_url})
    return bp
