"""CloudEvents on the wire and in the delivery table, with the broker's own extensions.

- A delivery row keeps its event in structured JSON (:func:`to_payload`, :func:`from_payload`).
- Events go to subscribers in binary mode by default (:func:`encode`), ``ce-*`` header values
  percent-encoded (HTTP binding 1.0.2, 3.1.3.2: any UTF-8 attribute fits). The data are written as
  they came: bytes as bytes, text as text unless the content type is JSON, no body at all for
  an event without data (the SDK's default marshaller would write ``null``).
- ``knativebrokerttl`` is the hop counter Knative's broker keeps on events inside the broker
  to stop reply loops: set to 255 at ingress when absent, decremented at every pass through
  the ingress, copied onto reply events, and removed before anything leaves the broker.
"""
from __future__ import annotations

import json
from typing import Any, Callable, Mapping

from cloudevents.conversion import to_binary, to_structured
from cloudevents.http import CloudEvent, from_json

from eas_runtime import _event_codec

TTL_EXTENSION = "knativebrokerttl"
DEFAULT_TTL = 255
#: Extensions Knative adds to an event it sends to a dead-letter sink.
ERROR_DEST, ERROR_CODE, ERROR_DATA = "knativeerrordest", "knativeerrorcode", "knativeerrordata"
ERROR_DATA_MAX = 1024


def event_key(event: CloudEvent) -> str:
    """``source#id``: what identifies an event (a re-sent event has the same key)."""
    return f"{event['source']}#{event['id']}"[:300]


def attributes(event: CloudEvent) -> dict[str, Any]:
    """Context attributes and extensions of an event."""
    return dict(event.get_attributes())


def replace(event: CloudEvent, *, drop: tuple[str, ...] = (), **extensions: Any) -> CloudEvent:
    """A copy of ``event`` without the attributes in ``drop`` and with ``extensions`` set."""
    attrs = {k: v for k, v in event.get_attributes().items() if k not in drop}
    attrs.update({k: v for k, v in extensions.items() if v is not None})
    return CloudEvent(attrs, event.get_data())


def to_payload(event: CloudEvent) -> str:
    """The event in structured JSON, as stored in ``deliveries.payload``."""
    body = _event_codec.structured(event, _structured_marshaller)
    if body is None:
        _, body = to_structured(event, data_marshaller=_structured_marshaller)
    return body.decode("utf-8")


def from_payload(payload: str) -> CloudEvent:
    return from_json(payload)


def encode(event: CloudEvent, mode: str = "binary") -> tuple[dict[str, str], bytes]:
    """HTTP headers and body of an event: ``binary`` or ``json`` (structured) mode."""
    if mode == "json":
        headers, body = to_structured(event, data_marshaller=_structured_marshaller)
    else:
        marshal = _binary_marshaller(event)
        encoded = _event_codec.binary(event, marshal)
        if encoded is None:             # an attribute that is not a string: the SDK, then encode
            sdk_headers, sdk_body = to_binary(event, data_marshaller=marshal)
            encoded = _event_codec.encode_headers(sdk_headers), sdk_body
        headers, binary_body = encoded
        assert binary_body is not None      # the marshaller gives b"" for an event without data
        body = binary_body
    return {k: str(v) for k, v in headers.items()}, body if isinstance(body, bytes) else body.encode()


def is_json_type(content_type: str | None) -> bool:
    media = (content_type or "application/json").split(";", 1)[0].strip().lower()
    return media in ("application/json", "text/json") or media.endswith("+json")


def _binary_marshaller(event: CloudEvent) -> Callable[[Any], bytes]:
    json_data = is_json_type(event.get("datacontenttype"))

    def marshal(data: Any) -> bytes:
        if data is None:
            return b""
        if isinstance(data, (bytes, bytearray, memoryview)):
            return bytes(data)
        if isinstance(data, str) and not json_data:
            return data.encode("utf-8")
        return json.dumps(data).encode("utf-8")

    return marshal


def _structured_marshaller(data: Any) -> Any:
    if isinstance(data, memoryview):
        return bytes(data)
    return data


def headers_of(raw: Mapping[str, str]) -> dict[str, str]:
    """Lower-cased copy of HTTP headers."""
    return {str(k).lower(): str(v) for k, v in raw.items()}
