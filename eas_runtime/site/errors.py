"""Errors: every failed attempt with its full traceback, and the dead letters."""
from __future__ import annotations

from flask import Blueprint, jsonify, render_template

from eas_runtime import diagnostics
from eas_runtime.diagnostics import DiagnosticsError
from eas_runtime.site._request import db, install, job_arg, page_args, text_arg

bp = install(Blueprint("errors", __name__))
#: Error kinds the pipeline records (eas_runtime/wrapper, control, lifecycle).
KINDS = ("science", "input", "qc", "parameters", "timeout", "environment", "infrastructure",
         "cancelled")


def errors_data() -> dict:
    """Failed attempts, newest first: ``job``, ``task_type``, ``since`` (ISO time or an age
    like 2h), ``kind`` and ``page`` filter them."""
    kind = text_arg("kind")
    if kind is not None and kind not in KINDS:
        raise DiagnosticsError(f"kind {kind!r} is not one of {', '.join(KINDS)}")
    return diagnostics.errors(db(), job_id=job_arg(), task_type=text_arg("task_type"),
                              since=text_arg("since"), kind=kind, **page_args())


def dead_letters_data() -> dict:
    """Events and records that could not be processed (retries exhausted, refused), newest
    first, with the reason and the event itself."""
    return diagnostics.dead_letters(db(), component=text_arg("component"),
                                    since=text_arg("since"), **page_args())


@bp.get("/errors")
def errors():
    return render_template("errors.html", data=errors_data(), kinds=KINDS)


@bp.get("/api/errors")
def api_errors():
    return jsonify(errors_data())


@bp.get("/dead-letters")
def dead_letters():
    return render_template("dead_letters.html", data=dead_letters_data())


@bp.get("/api/dead-letters")
def api_dead_letters():
    return jsonify(dead_letters_data())
