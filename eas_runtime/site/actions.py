"""State-changing requests of the index site: submit, cancel and retry jobs.

Each needs ``Authorization: Bearer <EAS_API_TOKEN>``: 401 without a token, 403 with a wrong one
or when no token is configured (the site is then read-only).
"""
from __future__ import annotations

import hmac
import uuid

from flask import Blueprint, current_app, jsonify, request

from eas_runtime import events
from eas_runtime.db.session import DatabaseUnavailable
from eas_runtime.store import StoreUnavailable

bp = Blueprint("actions", __name__)


def _resources():
    return current_app.extensions["eas_resources"]


@bp.before_request
def _authenticate():
    token = _resources().settings.api_token
    if not token:
        return jsonify(error="this site is read-only: no EAS_API_TOKEN is configured"), 403
    header = request.headers.get("Authorization", "")
    if not header.startswith("Bearer "):
        return jsonify(error="send Authorization: Bearer <token> to change anything"), 401
    if not hmac.compare_digest(header[len("Bearer "):].encode(), token.encode()):
        return jsonify(error="wrong token"), 403
    return None


@bp.before_request
def _readable_body():
    """A JSON body nested too deeply for the parser is a 400: Flask's ``get_json(silent=True)``
    turns only a ValueError (not JSON, not UTF-8) into None, and a RecursionError would be a 500.
    Parsed here, after authentication, once: the handlers' get_json returns the cached result."""
    if not request.is_json:
        return None
    try:
        request.get_json(silent=True)
    except RecursionError:
        return jsonify(error="the body is JSON nested too deeply to be read"), 400
    return None


@bp.post("/api/jobs")
def submit_job():
    """Check the job as eas-control will (:func:`eas_runtime.jobs.admit`: the description, the
    task types served, its outputs and inputs against the database and the store), then post
    it as ``job.submitted``: 202. A clash with another job's outputs or an existing object is
    409, any other refusal 400, each naming the task."""
    from eas_runtime.jobs import JobConflict, JobError, admit, served_task_types
    spec = request.get_json(silent=True)
    if spec is None:
        return jsonify(error="the body must be a job description in JSON (content-type application/json)"), 400
    res = _resources()
    try:
        with res.db.read() as session:
            compiled = admit(spec, served=served_task_types(res.settings.broker_config_dir), session=session,
                             stat=res.store.stat)
    except JobConflict as exc:
        return jsonify(error=str(exc)), 409
    except JobError as exc:
        return jsonify(error=str(exc)), 400
    except (DatabaseUnavailable, StoreUnavailable) as exc:
        return jsonify(error=f"the job could not be checked: {exc}"), 503
    event = events.make_event(events.JOB_SUBMITTED, "/eas/index", spec, id=uuid.uuid4().hex,
                              subject=compiled.job_name)
    try:
        res.send(event)
    except events.DeliveryError as exc:
        return jsonify(error=f"the broker did not accept the job: {exc}"), 503
    return jsonify(event_id=event["id"], job_name=compiled.job_name,
                   task_counts=compiled.task_counts()), 202


@bp.post("/api/jobs/<int:job_id>/cancel")
def cancel(job_id: int):
    from eas_runtime.lifecycle import LifecycleError, cancel_job
    try:
        return jsonify(cancel_job(_resources().db, job_id))
    except LifecycleError as exc:
        return jsonify(error=str(exc)), 404
    except DatabaseUnavailable as exc:
        return jsonify(error=str(exc)), 503


@bp.post("/api/jobs/<int:job_id>/retry")
def retry(job_id: int):
    from eas_runtime.control import Control
    from eas_runtime.lifecycle import LifecycleError, retry_failed
    res = _resources()
    try:
        return jsonify(retry_failed(res.db, Control(res).send, job_id))
    except LifecycleError as exc:
        return jsonify(error=str(exc)), 404 if "no job" in str(exc) else 409
    except DatabaseUnavailable as exc:
        return jsonify(error=str(exc)), 503
