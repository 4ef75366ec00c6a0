"""Sending one request to a Knative Destination, and judging the answer as Knative does.

Dispatcher contract (what :class:`~eas_runtime.broker.delivery.Broker` calls)::

    status, headers, body = dispatcher.post(destination, headers, body, timeout)

``destination`` is a Knative Destination dict (``{"ref": {...}, "uri": ...}``); the answer is
the destination's HTTP response, whatever its status. When there is **no response** (refused,
reset, timed out, no replica) the dispatcher raises an ``OSError`` -- ``ConnectionError``,
``TimeoutError`` and every ``requests.RequestException`` are ``OSError``\\ s -- or returns
status 0; both count as a network error and are retried. A destination the dispatcher cannot
resolve at all raises ``ValueError``: not retried, the event goes to the dead-letter sink.
Any other exception is logged and treated as a network error.

:class:`HttpDispatcher` serves absolute ``uri`` destinations with ``requests``; the embedded
runtime passes its local serving layer instead, which also resolves
``ref: {kind: Service, name: X}`` plus an optional relative ``uri`` path.
"""
from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, field
from typing import Any, Mapping, Optional
from urllib.parse import urlsplit

import requests
from cloudevents.http import CloudEvent

from eas_runtime import events

from .wire import headers_of

log = logging.getLogger(__name__)

#: 4xx statuses Knative retries (``SelectiveRetry``); every 5xx is retried too.
RETRYABLE_4XX = frozenset({404, 408, 409, 429})
#: What Knative reports for a 2xx answer whose body is neither empty nor a CloudEvent.
BAD_GATEWAY = 502
#: What Knative reports (``knativeerrorcode``) when there was no response at all.
NO_RESPONSE = 500


class UnresolvableDestination(ValueError):
    """The dispatcher cannot send to this destination (not retried)."""


class HttpDispatcher:
    """Dispatcher for absolute ``http(s)`` URIs, one ``requests.Session`` per thread.

    A ``ref`` destination raises :class:`UnresolvableDestination`: resolving Knative
    references needs the embedded runtime's serving layer. Redirects are followed, as Go's HTTP
    client does. No response raises a ``requests.RequestException`` (an ``OSError``).
    """

    def __init__(self) -> None:
        self._local = threading.local()

    def _session(self) -> requests.Session:
        session = getattr(self._local, "session", None)
        if session is None:
            session = self._local.session = requests.Session()
        return session

    def post(self, destination: Mapping[str, Any], headers: Mapping[str, str], body: bytes,
             timeout: float | None) -> tuple[int, dict[str, str], bytes]:
        if destination.get("ref"):
            raise UnresolvableDestination(
                f"destination {dict(destination)!r} refers to a {destination['ref'].get('kind')}; "
                "HttpDispatcher only sends to absolute http(s) URIs (the embedded runtime's "
                "serving layer resolves references)")
        uri = destination.get("uri")
        parts = urlsplit(str(uri or ""))
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise UnresolvableDestination(f"destination uri {uri!r} is not an absolute http(s) URL")
        response = self._session().post(str(uri), headers=dict(headers), data=body, timeout=timeout)
        return response.status_code, dict(response.headers), response.content

    def close(self) -> None:
        session = getattr(self._local, "session", None)
        if session is not None:
            session.close()


def describe(destination: Mapping[str, Any] | None, namespace: str) -> str:
    """The URL Knative would resolve a destination to (used in messages and
    ``knativeerrordest``): a Service ``ref`` becomes ``http://<name>.<namespace>.svc.cluster.local``
    followed by the relative ``uri``."""
    if not destination:
        return ""
    ref, uri = destination.get("ref"), destination.get("uri")
    if not ref:
        return str(uri or "")
    base = f"http://{ref.get('name')}.{ref.get('namespace') or namespace}.svc.cluster.local"
    path = str(uri or "")
    if path and not path.startswith("/"):
        path = "/" + path
    return base + path


@dataclass
class Outcome:
    """The verdict on one attempt."""

    #: ``delivered``, ``retry`` (a retryable failure) or ``fail`` (not retried).
    verdict: str
    #: The status Knative would report: the HTTP status, 502 for a 2xx answer that is neither
    #: empty nor a CloudEvent (or a malformed reply), 500 when there was no response.
    status: int
    #: Human-readable description of a failure.
    error: str = ""
    #: Response body (or ``dispatch error: ...`` without a response), for ``knativeerrordata``.
    body: bytes = b""
    #: A reply CloudEvent carried by a 2xx answer.
    reply: Optional[CloudEvent] = field(default=None, repr=False)

    @property
    def delivered(self) -> bool:
        return self.verdict == "delivered"


def judge(status: int, headers: Mapping[str, str], body: bytes, target: str) -> Outcome:
    """Knative's verdict on an HTTP answer from a subscriber."""
    body = body or b""
    if not status:
        return no_response(target, "status 0")
    if 200 <= status < 300:
        lowered = headers_of(headers)
        media = lowered.get("content-type", "").split(";", 1)[0].strip().lower()
        is_event = "ce-specversion" in lowered or (
            media.startswith("application/cloudevents") and not media.startswith("application/cloudevents-batch"))
        if is_event:
            try:
                reply = events.parse(lowered, body)
            except events.EventError as exc:
                return Outcome("retry", BAD_GATEWAY, f"{target} answered {status} with a malformed "
                               f"reply event: {exc}", body)
            return Outcome("delivered", status, reply=reply)
        if body:
            return Outcome("retry", BAD_GATEWAY, f"{target} answered {status} with a non-empty body "
                           f"that is not a CloudEvent ({_excerpt(body)!r}); the response must be "
                           "empty or a CloudEvent", body)
        return Outcome("delivered", status)
    verdict = "retry" if status >= 500 or status in RETRYABLE_4XX else "fail"
    return Outcome(verdict, status, f"{target} answered {status}: {_excerpt(body)!r}", body)


def no_response(target: str, problem: str) -> Outcome:
    return Outcome("retry", NO_RESPONSE, f"no response from {target}: {problem}",
                   f"dispatch error: {problem}".encode())


def _excerpt(body: bytes, limit: int = 300) -> str:
    text = body.decode("utf-8", errors="replace")
    return text if len(text) <= limit else text[:limit] + "..."
