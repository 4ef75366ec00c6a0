"""The lean event codecs give what the cloudevents SDK gives, and leave the rest to it."""
from __future__ import annotations

import json

import pytest
from cloudevents.conversion import to_binary, to_structured
from cloudevents.http import CloudEvent, from_http

from eas_runtime import _event_codec, events
from eas_runtime.broker import wire

EVENTS = [
    events.make_event(events.TASK_READY, "/eas/control", {"task_id": 1, "nested": {"a": [1, 2.5, None]}},
                      id="e1", subject="1", tasktype="null", jobid=3, taskid=1, attemptid=2),
    events.make_event(events.JOB_SUBMITTED, "/cli", {"name": "ünïcode ✓"}, id="e2"),
    CloudEvent({"type": "t", "source": "/s", "id": "e3"}, None),
    CloudEvent({"type": "t", "source": "/s", "id": "e4", "datacontenttype": "text/plain"}, "plain text"),
    CloudEvent({"type": "t", "source": "/s", "id": "e5", "datacontenttype": "application/octet-stream"},
               b"\x00\x01binary"),
    CloudEvent({"type": "t", "source": "/s", "id": "e6"}, [1, 2, 3]),
    CloudEvent({"type": "t", "source": "/s", "id": "e7"}, {}),
]


@pytest.mark.parametrize("event", EVENTS, ids=lambda e: e["id"])
def test_binary_encoding_equals_the_sdk(event):
    marshal = wire._binary_marshaller(event)
    assert _event_codec.binary(event, marshal) == to_binary(event, data_marshaller=marshal)
    assert _event_codec.binary(event) == to_binary(event)


@pytest.mark.parametrize("event", EVENTS, ids=lambda e: e["id"])
def test_structured_encoding_equals_the_sdk(event):
    _, sdk_body = to_structured(event, data_marshaller=wire._structured_marshaller)
    assert json.loads(_event_codec.structured(event, wire._structured_marshaller)) == json.loads(sdk_body)


@pytest.mark.parametrize("event", EVENTS, ids=lambda e: e["id"])
def test_binary_parsing_equals_the_sdk(event):
    headers, body = to_binary(event, data_marshaller=wire._binary_marshaller(event))
    fast = _event_codec.parse_binary(headers, body)
    sdk = from_http(dict(headers), body)
    assert dict(fast.get_attributes()) == dict(sdk.get_attributes())
    assert fast.data == sdk.data


@pytest.mark.parametrize("headers", [
    {"ce-specversion": "0.3", "ce-id": "1", "ce-source": "/s", "ce-type": "t"},
    {"ce-id": "1", "ce-source": "/s", "ce-type": "t"},
    {"ce-specversion": "1.0", "ce-id": "1", "ce-source": "/s", "ce-type": "t",
     "content-type": "application/cloudevents+json"},
])
def test_other_requests_are_left_to_the_sdk(headers):
    assert _event_codec.parse_binary(headers, b"{}") is None


def test_non_string_attributes_are_left_to_the_sdk():
    event = CloudEvent({"type": "t", "source": "/s", "id": "n", "count": 3}, {"a": 1})
    assert _event_codec.binary(event) is None and _event_codec.structured(event) is None
