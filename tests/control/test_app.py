"""eas-control's HTTP face (Flask test client): answers, and replies when the broker asks."""
from __future__ import annotations

from cloudevents.conversion import to_binary

from eas_runtime import events
from eas_runtime.control.app import create_app


def _job(n: int, id: str):
    spec = {"job_name": "app", "task_list": [{"task": "null", "name": f"n{i}"} for i in range(n)]}
    return events.make_event(events.JOB_SUBMITTED, "/test", spec, id=id)


def test_without_prefer_reply_the_answer_is_202_and_events_are_posted(resources, event_log):
    client = create_app(resources).test_client()
    headers, body = to_binary(_job(2, "plain"))
    response = client.post("/", headers=headers, data=body)
    assert (response.status_code, response.data) == (202, b"")
    assert len(event_log.of_type("task.ready")) == 2


def test_asked_for_a_reply_control_answers_with_one_task_ready_and_posts_the_rest(resources, event_log):
    client = create_app(resources).test_client()
    headers, body = to_binary(_job(3, "replied"))
    response = client.post("/", headers={**headers, "Prefer": "reply"}, data=body)
    assert response.status_code == 200
    reply = events.parse(dict(response.headers), response.data)
    assert reply["type"] == events.TASK_READY and reply["tasktype"] == "null"
    posted = event_log.of_type("task.ready")
    assert len(posted) == 2 and reply["taskid"] not in {e["taskid"] for e in posted}


def test_asked_for_a_reply_with_nothing_to_send_the_answer_is_202(resources, event_log):
    client = create_app(resources).test_client()
    headers, body = to_binary(events.make_event(events.RECONCILE, "/test", {}, id="tick"))
    response = client.post("/", headers={**headers, "Prefer": "reply"}, data=body)
    assert (response.status_code, response.data) == (202, b"")


def test_invalid_event_is_400_with_the_reason(resources):
    client = create_app(resources).test_client()
    response = client.post("/", headers={"ce-specversion": "1.0", "ce-type": "x"}, data=b"{}")
    assert response.status_code == 400 and response.data.startswith(b"not a CloudEvent")
