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
from cloudevents.http import CloudEvent, from_http
from cloudevents import exceptions as ce_exceptions

from eas_runtime import _event_codec

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
    """Parse an HTTP request in binary or structured mode; raise :class:`EventError` if invalid."""
    try:
        event = _event_codec.parse_binary(headers, body) or from_http(dict(headers), body)
    except ce_exceptions.MissingRequiredFields as exc:
        raise EventError(f"not a CloudEvent: {exc}") from None
    except ce_exceptions.GenericException as exc:
        raise EventError(f"malformed CloudEvent: {exc}") from None
    except (ValueError, TypeError, AttributeError, KeyError) as exc:
        raise EventError(f"malformed CloudEvent: {exc}") from None
    for required in ("id", "source", "type", "specversion"):
        if not event.get(required):
            raise EventError(f"CloudEvent attribute {required!r} is empty")
    return event


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
    if mode == "structured":
        headers, body = to_structured(event)
    else:
        headers, body = _event_codec.binary(event) or to_binary(event)
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
    headers, body = to_http(event, mode)
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
