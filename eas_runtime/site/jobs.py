"""Jobs: the list with progress bars and the submission form, one job with its actions.

Submitting, cancelling and retrying are POSTs to the authenticated endpoints of actions.py;
the pages only carry the forms, which static/eas.js sends with the token.
"""
from __future__ import annotations

from flask import Blueprint, jsonify, render_template
from sqlalchemy import select

from eas_runtime import diagnostics
from eas_runtime.db.models import Job
from eas_runtime.diagnostics import NotFound
from eas_runtime.site._request import db, install, page_args, resources, stall_s

bp = install(Blueprint("jobs", __name__))


def jobs_data() -> dict:
    """Jobs, newest first, each with its task counts and percentages per display state."""
    return diagnostics.jobs(db(), stall_s=stall_s(), **page_args())


def job_data(job_id: int) -> dict:
    """One job: name, folder, creation time, cancelled flag, why it was refused (``rejected``,
    None when accepted), its description, and progress per task type."""
    with db().read() as s:
        job = s.execute(select(Job.id, Job.name, Job.working_directory, Job.cancelled,
                               Job.created_at, Job.spec, Job.rejection).where(Job.id == job_id)).first()
    if job is None:
        raise NotFound(f"no job {job_id}")
    return {"job_id": job.id, "name": job.name, "working_directory": job.working_directory,
            "cancelled": job.cancelled, "rejected": job.rejection, "created": job.created_at.isoformat(),
            "spec": job.spec,
            "progress": diagnostics.progress(db(), job_id=job_id, stall_s=stall_s())}


def _can_change() -> bool:
    return bool(resources().settings.api_token)


@bp.get("/jobs")
def jobs():
    return render_template("jobs.html", data=jobs_data(), can_change=_can_change())


@bp.get("/api/jobs")
def api_jobs():
    return jsonify(jobs_data())


@bp.get("/jobs/<int:job_id>")
def job(job_id: int):
    return render_template("job.html", job=job_data(job_id), can_change=_can_change())


@bp.get("/api/jobs/<int:job_id>")
def api_job(job_id: int):
    return jsonify(job_data(job_id))
