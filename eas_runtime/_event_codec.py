"""Lean CloudEvents HTTP codecs for the events the pipeline sends: JSON data, string attributes.

The cloudevents SDK (1.x) converts every event through its generic marshaller objects, which
costs a few hundred microseconds per conversion; an event crosses four to six conversions per
hop. These functions produce exactly what the SDK produces for CloudEvents 1.0 with string
attributes (binary mode, structured JSON) and return ``None`` for anything else, so that the
caller falls back to the SDK (which also words the errors). The tests compare
both on the same events.
"""
from __future__ import annotations

import base64
import json
from typing import Any, Callable, Mapping

from cloudevents.http import CloudEvent

_REQUIRED = ("ce-specversion", "ce-id", "ce-source", "ce-type")
_BYTES = (bytes, bytearray, memoryview)


def parse_binary(headers: Mapping[str, str], body: bytes | str | None) -> CloudEvent | None:
    """A binary-mode CloudEvent 1.0 as ``from_http`` reads it, or ``None`` (not binary mode,
    another specversion, a structured content type: left to the SDK)."""
    lowered = {str(k).lower(): v for k, v in headers.items()}
    if any(name not in lowered for name in _REQUIRED) or lowered["ce-specversion"] != "1.0":
        return None
    content_type = lowered.get("content-type")
    if content_type is not None and str(content_type).lower().startswith("application/cloudevents"):
        return None
    attributes = {k[3:]: v for k, v in lowered.items() if k.startswith("ce-")}
    if content_type is not None:
        attributes["datacontenttype"] = content_type
    if not body:
        data = None
    else:
        try:
            data = json.loads(body)
        except (json.JSONDecodeError, TypeError, UnicodeDecodeError):
            data = body
    return CloudEvent(attributes, data)


def best_effort_json(value: Any) -> Any:
    """The SDK's default binary marshaller: ``None`` stays ``None``, JSON when it can, else the
    value as it is."""
    if value is None:
        return None
    try:
        return json.dumps(value)
    except TypeError:
        return value


def binary(event: CloudEvent, marshal: Callable[[Any], Any] = best_effort_json
           ) -> tuple[dict[str, str], bytes | None] | None:
    """``to_binary(event, marshal)``: headers and body, or ``None`` when an attribute is not a
    string (left to the SDK)."""
    attributes = event.get_attributes()
    if attributes.get("specversion") != "1.0":
        return None
    headers: dict[str, str] = {}
    content_type = attributes.get("datacontenttype")
    if content_type:
        headers["content-type"] = content_type
    for name, value in attributes.items():
        if name == "datacontenttype" or value is None:
            continue
        if not isinstance(value, str):
            return None
        headers["ce-" + name] = value
    body = marshal(event.get_data())
    if isinstance(body, str):
        body = body.encode("utf-8")
    return headers, body


def structured(event: CloudEvent, marshal: Callable[[Any], Any] | None = None) -> bytes | None:
    """The body of ``to_structured(event, marshal)`` (JSON), or ``None`` when an attribute is
    not a string."""
    attributes = event.get_attributes()
    if attributes.get("specversion") != "1.0":
        return None
    document: dict[str, Any] = {}
    for name, value in attributes.items():
        if value is None:
            continue
        if not isinstance(value, str):
            return None
        document[name] = value
    data = event.get_data()
    if data is not None:
        if marshal is not None:
            data = marshal(data)
        if isinstance(data, _BYTES):
            document["data_base64"] = base64.b64encode(data).decode("ascii")
        else:
            document["data"] = data
    return json.dumps(document).encode("utf-8")
