"""Query parameters, path ids and error answers shared by the site's blueprints.

Every page reads its filters with the parsers below, which raise :class:`DiagnosticsError`
naming the parameter, the value and the allowed range; :func:`install` maps that to 400,
:class:`NotFound` to 404 and a database outage to 503: JSON ``{"error": ...}`` under ``/api/``
(and for CSV), an HTML page otherwise. Every number is range-checked here, where it is parsed:
ids and pages must fit the database's signed 64-bit integers, or the driver raises
(``OverflowError``) instead of matching nothing.
"""
from __future__ import annotations

import re
from urllib.parse import urlencode

from flask import Blueprint, Flask, current_app, jsonify, render_template, request
from werkzeug.exceptions import HTTPException
from werkzeug.routing import IntegerConverter, ValidationError

from eas_runtime.db.session import DatabaseUnavailable
from eas_runtime.diagnostics import DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE, DiagnosticsError, NotFound
from eas_runtime.diagnostics._common import MAX_ID, MAX_PAGE, shown

#: Longest text filter (task type, severity, component, prefix...): names are far shorter.
MAX_TEXT = 1000
#: A whole number as typed in a query: ASCII digits only (int() also takes "1_000" and other
#: scripts' digits), at most as many as MAX_ID has (int() of a long text is slow, then refused).
_WHOLE = re.compile(r"[+-]?[0-9]{1,%d}" % len(str(MAX_ID)))
#: C0 control characters (NUL among them: PostgreSQL refuses it in text).
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def resources():
    return current_app.extensions["eas_resources"]


def db():
    return resources().db


def stall_s() -> float:
    """Seconds after which a running attempt without a heartbeat shows as stalled."""
    return resources().settings.stall_s


def check_text(name: str, value: str) -> str:
    """``value`` unless it is longer than MAX_TEXT or holds a control character (400)."""
    if len(value) > MAX_TEXT or _CONTROL.search(value):
        raise DiagnosticsError(f"{name} must be text of at most {MAX_TEXT} characters without control "
                               f"characters, got {shown(value)}")
    return value


def text_arg(name: str) -> str | None:
    """A text filter: None when absent or blank."""
    value = request.args.get(name, "").strip()
    return check_text(name, value) if value else None


def int_arg(name: str, *, low: int = 0, high: int = MAX_ID, meaning: str = "a whole number") -> int | None:
    """A whole-number filter from ``low`` to ``high``: None when absent or blank;
    DiagnosticsError (400) naming the parameter and the range otherwise."""
    raw = request.args.get(name, "").strip()
    if not raw:
        return None
    value = int(raw) if _WHOLE.fullmatch(raw) else None
    if value is None or not low <= value <= high:
        raise DiagnosticsError(f"{name} must be {meaning} from {low} to {high}, got {shown(raw)}")
    return value


def id_arg(name: str, what: str) -> int | None:
    """The id of a row (``what``: "a job", "an attempt"...) from 1 to MAX_ID."""
    return int_arg(name, low=1, high=MAX_ID, meaning=f"{what} id, a whole number")


def job_arg() -> int | None:
    return id_arg("job", "a job")


def page_args() -> dict:
    """``page`` (from 0 to MAX_PAGE) and ``page_size`` (1 to MAX_PAGE_SIZE) as keyword
    arguments for the diagnostics queries."""
    page = int_arg("page", high=MAX_PAGE)
    size = int_arg("page_size", low=1, high=MAX_PAGE_SIZE)
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


def answer(status: int, message: str):
    """The error answer: ``{"error": message}`` for /api/ and CSV, the error page otherwise."""
    if wants_json():
        return jsonify(error=message), status
    return render_template("site_error.html", status=status, message=message), status


def install(bp: Blueprint) -> Blueprint:
    """Error answers and template helpers for one page blueprint."""
    bp.register_error_handler(DiagnosticsError, lambda exc: answer(400, str(exc)))
    bp.register_error_handler(NotFound, lambda exc: answer(404, str(exc)))
    bp.register_error_handler(DatabaseUnavailable,
                              lambda exc: answer(503, f"the task database is unavailable: {exc}"))
    bp.register_error_handler(HTTPException,
                              lambda exc: answer(exc.code or 500, exc.description or exc.name))
    bp.context_processor(lambda: {"url_with": url_with, "api_url": api_url})
    return bp


class RowIdConverter(IntegerConverter):
    """``<int:...>`` in this site's routes: the id of a row, so at most MAX_ID; a longer or
    larger number matches no route (404 "no page at ...") instead of overflowing the driver, and
    is refused before int() (which raises past 4300 digits)."""

    def __init__(self, map, *args, **kwargs) -> None:
        kwargs.setdefault("max", MAX_ID)
        super().__init__(map, *args, **kwargs)

    def to_python(self, value: str) -> int:
        if not value.isascii() or len(value) > len(str(MAX_ID)):
            raise ValidationError()
        return super().to_python(value)


def install_app(app: Flask) -> None:
    """Before any blueprint is registered: bounded ``int`` path ids, and error answers with a
    message for what no blueprint handles (an unknown path, a wrong method)."""
    app.url_map.converters["int"] = RowIdConverter

    def unmatched(exc: HTTPException):
        if exc.code == 404:
            return answer(404, f"no page at {shown(request.path)}: the path is unknown, or an id in it "
                               f"is not a whole number from 1 to {MAX_ID}")
        return answer(exc.code or 500, exc.description or exc.name)
    app.register_error_handler(HTTPException, unmatched)
