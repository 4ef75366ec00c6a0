"""Submitting, cancelling and retrying jobs through the site: token required, errors named."""
from __future__ import annotations

import pytest
from sqlalchemy import select

from eas_runtime.control import Control
from eas_runtime.db.models import Job, Task
from eas_runtime.resources import Resources
from eas_runtime.site import create_app

TOKEN = "s3cret"
JOB = {"job_name": "site job", "task_list": [{"task": "null"}, {"task": "null", "name": "b"}]}


@pytest.fixture
def site(settings, resources, event_log):
    res = Resources(settings.replace(api_token=TOKEN), send=event_log, store=resources.store, db=resources.db)
    return create_app(res).test_client()


def auth(token=TOKEN):
    return {"Authorization": f"Bearer {token}"}


def test_submission_needs_the_token(site, event_log):
    assert site.post("/api/jobs", json=JOB).status_code == 401
    assert site.post("/api/jobs", json=JOB, headers=auth("wrong")).status_code == 403
    assert event_log.events == []


def test_read_only_site_refuses_every_change(resources):
    client = create_app(resources).test_client()          # no EAS_API_TOKEN configured
    response = client.post("/api/jobs", json=JOB, headers=auth())
    assert response.status_code == 403 and "read-only" in response.get_json()["error"]
    assert client.post("/api/jobs/1/cancel", headers=auth()).status_code == 403


def test_submission_sends_the_job_to_the_broker(site, event_log, resources):
    response = site.post("/api/jobs", json=JOB, headers=auth())
    assert response.status_code == 202
    body = response.get_json()
    assert body["task_counts"] == {"null": 2} and body["job_name"] == "site job"
    [event] = event_log.of_type("job.submitted")
    assert event["id"] == body["event_id"]
    Control(resources).handle(event)                      # what eas-control does with it
    with resources.db.read() as s:
        assert s.scalar(select(Job.name)) == "site job"


def test_bad_job_is_refused_with_its_path(site, event_log):
    response = site.post("/api/jobs", json={"task_list": [{"task": "null", "outputs": {"x": 3}}]},
                         headers=auth())
    assert response.status_code == 400
    assert "task_list[0].outputs.x" in response.get_json()["error"]
    response = site.post("/api/jobs", data="not json", headers=auth())
    assert response.status_code == 400 and "JSON" in response.get_json()["error"]
    assert event_log.events == []


def test_cancel_and_retry(site, event_log, resources):
    site.post("/api/jobs", json=JOB, headers=auth())
    Control(resources).handle(event_log.of_type("job.submitted")[0])
    with resources.db.read() as s:
        job_id = s.scalar(select(Job.id))
    out = site.post(f"/api/jobs/{job_id}/cancel", headers=auth())
    assert out.status_code == 200 and out.get_json()["cancelled_tasks"] == 2
    with resources.db.read() as s:
        assert set(s.scalars(select(Task.state))) == {"cancelled"}
    assert site.post(f"/api/jobs/{job_id}/retry", headers=auth()).status_code == 409
    assert site.post("/api/jobs/999/cancel", headers=auth()).status_code == 404
