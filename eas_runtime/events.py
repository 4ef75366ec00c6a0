"""The event contract (CloudEvents 1.0) shared by every component.

Types are reverse-DNS names under ``org.plato.eas``. Extension attributes are lowercase letters
and digits, at most 20 characters: ``tasktype``, ``jobid``, ``taskid``, ``attemptid``.
Event ids are stable: the same upload, submission or attempt always gives the same id, so a
receiver recognises a duplicate delivery by ``source`` + ``id``.
"""
from __future__ import annotations

import hashlib
import http.client
import json
import re
from typing import Any, Mapping

from cloudevents.conversion import to_binary, to_structured
from cloudevents.http import CloudEvent

from eas_runtime import _event_attributes, _event_codec

PREFIX = "org.plato.eas."
PRODUCT_CREATED = PREFIX + "product.created"
JOB_SUBMITTED = PREFIX + "job.submitted"
TASK_READY = PREFIX + "task.ready"
TASK_FINISHED = PREFIX + "task.finished"
TASK_FAILED = PREFIX + "task.failed"
RECONCILE = PREFIX + "reconcile"
#: The type a Knative PingSource gives its events; eas-control treats it as a reconcile tick.
PING = "dev.knative.sources.ping"

ALL_TYPES = (PRODUCT_CREATED, JOB_SUBMITTED, TASK_READY, TASK_FINISHED, TASK_FAILED, RECONCILE)
EXTENSIONS = ("tasktype", "jobid", "taskid", "attemptid")
_EXTENSION_NAME = re.compile(r"^[a-z0-9]{1,20}$")

SOURCE_STORE = "/eas/store"
SOURCE_CONTROL = "/eas/control"
SOURCE_CLI = "/eas/cli"

#: Largest event accepted [bytes of body and ``ce-*`` header values]. CloudEvents asks every
#: hop to carry at least 64 KB; Knative's Kafka-backed Broker carries up to Kafka's default
#: message size, about 1 MB. The pipeline's events name objects in the store and are a few
#: kilobytes at most, so 1 MiB leaves room without letting one request fill the memory.
MAX_EVENT_BYTES = 1024 * 1024
#: Largest integer id (``taskid``, ``attemptid``): the databases store signed 64-bit integers.
MAX_ID = 2 ** 63 - 1


class EventError(ValueError):
    """An event that cannot be accepted: the message names the attribute and the problem."""


def stable_id(*parts: Any) -> str:
    """A short id that depends only on ``parts``: the same inputs always give the same id."""
    digest = hashlib.sha256("\x1f".join(str(p) for p in parts).encode()).hexdigest()
    return digest[:32]


def make_event(type_: str, source: str, data: Any, *, id: str, subject: str | None = None,
               **extensions: Any) -> CloudEvent:
    """Build a CloudEvent with JSON data; ``extensions`` must be names in :data:`EXTENSIONS`."""
    attributes: dict[str, Any] = {"type": type_, "source": source, "id": id,
                                  "datacontenttype": "application/json"}
    if subject is not None:
        attributes["subject"] = subject
    for name, value in extensions.items():
        if not _EXTENSION_NAME.match(name):
            raise EventError(f"extension name {name!r} must be 1-20 lowercase letters or digits")
        if value is not None:
            attributes[name] = str(value)
    return CloudEvent(attributes, data)


def parse(headers: Mapping[str, str], body: bytes) -> CloudEvent:
    """Parse an HTTP request in binary or structured (JSON) mode; raise :class:`EventError`
    naming the attribute when it is no valid CloudEvent 1.0 (see :mod:`._event_attributes`).

    Binary-mode ``ce-*`` values are percent-decoded (HTTP binding 1.0.2, section 3.1.3.2);
    values of the JSON format's boolean and integer extensions become canonical strings."""
    lowered = {str(k).lower(): v for k, v in headers.items()}
    body = body or b""
    size = len(body) + sum(len(str(v)) for k, v in lowered.items() if k.startswith("ce-"))
    if size > MAX_EVENT_BYTES:
        raise EventError(f"event of {size} bytes is larger than the limit of {MAX_EVENT_BYTES} bytes")
    media = str(lowered.get("content-type", "")).split(";", 1)[0].strip().lower()
    binary = not media.startswith("application/cloudevents")
    try:
        if media.startswith("application/cloudevents-batch"):
            raise EventError(f"batched CloudEvents ({media}) are not accepted: send one event per request")
        if not binary:
            if media != "application/cloudevents+json":
                raise EventError(f"event format {media!r} is not supported: structured mode takes "
                                 "application/cloudevents+json")
            attributes, data = _event_codec.structured_parts(body)
        else:
            parts = _event_codec.binary_parts(lowered, body)
            if parts is None:
                raise EventError(_binary_problem(lowered))
            attributes, data = parts
        return CloudEvent(_event_attributes.normalize(attributes, binary=binary), data)
    except (_event_codec.CodecError, _event_attributes.AttributeProblem) as exc:
        raise EventError(str(exc)) from None


def _binary_problem(lowered: Mapping[str, str]) -> str:
    if not any(k.startswith("ce-") for k in lowered):
        return ("not a CloudEvent: binary mode needs the headers ce-specversion, ce-id, ce-source "
                "and ce-type; structured mode needs Content-Type: application/cloudevents+json")
    missing = [n for n in ("ce-specversion", "ce-id", "ce-source", "ce-type") if n not in lowered]
    return f"not a CloudEvent: the binary-mode request lacks the required header(s) {', '.join(missing)}"


def int_attribute(event: CloudEvent, name: str) -> int:
    """A required integer id attribute (``taskid``, ``attemptid``): a positive integer that fits
    a signed 64-bit database column; :class:`EventError` naming it otherwise (a 30-digit id
    would overflow SQLite's INTEGER and fail as a server error further on)."""
    value = require(event, name)
    text = value.strip()
    if not (text.isascii() and text.isdigit()) or not 0 < int(text) <= MAX_ID:
        raise EventError(f"attribute {name!r} must be an integer id from 1 to {MAX_ID}, got {value[:40]!r}")
    return int(text)


def data_of(event: CloudEvent) -> dict:
    """The event's data as a dict (JSON text or bytes are decoded); EventError otherwise."""
    data = event.data
    if data is None:
        return {}
    if isinstance(data, (bytes, bytearray)):
        data = data.decode("utf-8", errors="replace")
    if isinstance(data, str):
        if not data.strip():
            return {}
        try:
            data = json.loads(data)
        except json.JSONDecodeError as exc:
            raise EventError(f"event {event['id']!r}: data is not JSON ({exc.msg} at {exc.pos})") from None
        except ValueError as exc:       # e.g. an integer of more than 4300 digits
            raise EventError(f"event {event['id']!r}: data cannot be read as JSON: {exc}") from None
        except RecursionError:
            raise EventError(f"event {event['id']!r}: data is JSON nested too deeply to be read") from None
    if not isinstance(data, dict):
        raise EventError(f"event {event['id']!r}: data must be a JSON object, got {type(data).__name__}")
    return data


def require(event: CloudEvent, name: str) -> str:
    """The value of a required attribute or extension, as a string."""
    value = event.get(name)
    if value is None or value == "":
        raise EventError(f"event {event['id']!r} of type {event['type']!r} lacks the {name!r} attribute")
    return str(value)


def to_http(event: CloudEvent, mode: str = "binary") -> tuple[dict[str, str], bytes]:
    """HTTP headers and body of ``event``: ``binary`` (``ce-*`` values percent-encoded, so any
    UTF-8 subject travels) or ``structured`` (JSON carries UTF-8 as it is)."""
    body: bytes | None
    if mode == "structured":
        headers, body = to_structured(event)
    else:
        encoded = _event_codec.binary(event)
        if encoded is None:             # an attribute that is not a string: the SDK, then encode
            sdk_headers, sdk_body = to_binary(event)
            encoded = _event_codec.encode_headers(sdk_headers), sdk_body
        headers, body = encoded
    return dict(headers), body if isinstance(body, bytes) else (body or b"")


def prefers_reply(headers: Mapping[str, str]) -> bool:
    """True when the sender asks for the answer's event as a reply (``Prefer: reply``, as a
    Knative Broker and the embedded one send): answer 200 with the event instead of posting it."""
    value = headers.get("Prefer") or headers.get("prefer") or ""
    return any(part.strip().lower() == "reply" for part in str(value).split(","))


def is_cloudevent_response(headers: Mapping[str, str], body: bytes) -> bool:
    """True when an HTTP response carries a CloudEvent (a reply), as Knative judges it."""
    try:
        parse(headers, body)
        return True
    except EventError:
        return False


class DeliveryError(RuntimeError):
    """The broker did not accept an event: ``status`` is its HTTP answer, ``None`` when there
    was none (network error, timeout)."""

    def __init__(self, message: str, status: int | None = None):
        super().__init__(message)
        self.status = status


class UnsendableEvent(DeliveryError):
    """The event cannot be put on the wire at all (e.g. an attribute no encoding carries): no
    retry can help."""


#: Answers that a later try may change, as Knative judges them; any other refusal is final.
RETRIABLE_STATUSES = frozenset({404, 408, 409, 429})


def is_transient(exc: BaseException) -> bool:
    """True when sending again may succeed (no answer, 5xx, 404/408/409/429, the database or
    store down); False for a refusal that repeats on every try (another 4xx, an event that
    cannot be encoded or stored), which the sender sets aside instead of retrying."""
    if isinstance(exc, UnsendableEvent):
        return False
    if isinstance(exc, DeliveryError):
        return exc.status is None or exc.status >= 500 or exc.status in RETRIABLE_STATUSES
    from eas_runtime.db.session import DatabaseUnavailable
    from eas_runtime.store.base import StoreUnavailable
    from sqlalchemy.exc import OperationalError
    return isinstance(exc, (OSError, DatabaseUnavailable, StoreUnavailable, OperationalError))


_client = None


def send(event: CloudEvent, url: str, *, timeout: float = 10.0, mode: str = "binary",
         token: str = "") -> None:
    """POST ``event`` to ``url`` (a broker ingress); raise :class:`DeliveryError` unless 2xx.

    ``token`` is the internal token (``settings.internal_token``), sent as a bearer token when
    there is one. Each thread keeps its connection to the broker alive between events; one the
    broker closed meanwhile is replaced and the event sent again (the same id: receivers drop a
    duplicate)."""
    global _client
    if _client is None:
        from eas_runtime.serving.http import KeepAliveClient
        _client = KeepAliveClient()
    try:
        headers, body = to_http(event, mode)
    except (ValueError, TypeError) as exc:     # e.g. a lone surrogate: no encoding carries it
        raise UnsendableEvent(f"cannot encode event {event['id']!r}: {exc}") from exc
    if token:
        from eas_runtime.internal_auth import signed
        headers = signed(headers, token)
    try:
        status, _, answer = _client.post(url, headers, body, timeout)
    except (OSError, http.client.HTTPException) as exc:
        raise DeliveryError(f"cannot reach {url}: {exc!r}") from exc
    except UnicodeError as exc:     # a header value HTTP cannot carry: the same on every try
        raise UnsendableEvent(f"cannot send event {event['id']!r} to {url}: {exc}") from exc
    except ValueError as exc:       # a malformed URL: configuration, kept for a later try
        raise DeliveryError(f"cannot send to {url}: {exc}") from exc
    if not 200 <= status < 300:
        raise DeliveryError(f"{url} answered {status}: {answer[:200].decode('utf-8', 'replace')}", status)
