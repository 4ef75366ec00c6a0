"""The broker ingress: ``POST /<namespace>/<broker>`` accepts CloudEvents over HTTP.

Answers as Knative's broker ingress does: ``202`` with an empty body once the event is stored
(one delivery row per matching Trigger, in one transaction; zero rows is fine), ``400`` with a
plain-text reason for anything that is not a valid CloudEvent (binary or structured mode),
``404`` for an unknown Broker, ``405`` for methods other than POST, ``413`` for a body larger than
:data:`~eas_runtime.events.MAX_EVENT_BYTES`, and ``503`` when the database is unavailable (the
sender retries). ``GET /healthz`` answers 200. A client that leaves in the middle of its request
is not answered (there is nobody to answer); one that stalls for 30 s gets ``408``.

:func:`accept` decides the answer; :func:`serve` runs it on a keep-alive HTTP/1.1 server (a
producer's connection serves all its events), :func:`create_app` wraps it as a Flask app for
any WSGI server.
"""
from __future__ import annotations

import logging
import threading
from typing import Mapping, cast

from flask import Flask, Response, request
from sqlalchemy.exc import SQLAlchemyError

from eas_runtime import events, internal_auth
from eas_runtime.db.session import DatabaseUnavailable
from eas_runtime.serving.http import BadRequest, ClientGone, KeepAliveHandler, KeepAliveServer

from .delivery import Broker

log = logging.getLogger(__name__)

_REQUIRED = ("specversion", "id", "source", "type")


def binary_mode_problem(headers) -> str | None:
    """What is wrong with a binary-mode request's ``ce-*`` headers, or ``None``.

    The SDK reports any missing header as a missing ``specversion``; this names the header.
    Structured requests (``Content-Type: application/cloudevents...``) are left to the parser.
    """
    lowered = {str(k).lower(): str(v) for k, v in headers.items()}
    media = lowered.get("content-type", "").split(";", 1)[0].strip().lower()
    if media.startswith("application/cloudevents"):
        return None
    if not any(k.startswith("ce-") for k in lowered):
        return ("not a CloudEvent: binary mode needs the headers ce-specversion, ce-id, ce-source "
                "and ce-type; structured mode needs Content-Type: application/cloudevents+json")
    missing = [f"ce-{name}" for name in _REQUIRED if not lowered.get(f"ce-{name}", "").strip()]
    if missing:
        return f"binary-mode CloudEvent lacks the required header(s) {', '.join(missing)}"
    return None


def accept(broker: Broker, method: str, path: str, headers: Mapping[str, str],
           body: bytes) -> tuple[int, str, dict[str, str]]:
    """The ingress's answer to one request: status, plain-text message, extra headers."""
    if path == "/healthz" and method in ("GET", "HEAD"):
        return 200, "ok", {}
    refused = internal_auth.refusal(headers, broker.settings.internal_token)
    if refused is not None:
        return refused
    parts = path.strip("/").split("/")
    if len(parts) != 2 or not all(parts):
        return 404, f"no route {path!r}: send events to /<namespace>/<broker>", {}
    namespace, name = parts
    if not broker.has_broker(namespace, name):
        return 404, (f"no Broker {namespace}/{name} here (known: "
                     f"{', '.join(broker.config.brokers) or 'none'})"), {}
    if method != "POST":
        return 405, f"{method} is not allowed: send events with POST", {"Allow": "POST"}
    problem = binary_mode_problem(headers)
    if problem:
        return 400, problem, {}
    try:
        event = events.parse(headers, body)
    except events.EventError as exc:
        return 400, str(exc), {}
    try:
        broker.ingest(event, f"{namespace}/{name}")
    except DatabaseUnavailable as exc:
        log.warning("ingress %s/%s: %s", namespace, name, exc)
        return 503, f"event not stored, try again: {exc}", {}
    except SQLAlchemyError as exc:
        log.exception("ingress %s/%s: database error", namespace, name)
        return 503, f"event not stored, try again: {type(exc).__name__}", {}
    return 202, "", {}


def create_app(broker: Broker) -> Flask:
    """The ingress as a Flask application (for a WSGI server of one's choice)."""
    app = Flask("eas_runtime.broker.ingress")

    @app.route("/", defaults={"path": ""}, methods=["POST", "GET", "PUT", "PATCH", "DELETE"])
    @app.route("/<path:path>", methods=["POST", "GET", "PUT", "PATCH", "DELETE"])
    def ingress(path: str) -> Response:
        body = request.get_data(cache=False)
        # Werkzeug's Headers is no typing.Mapping, but has the get/items/[] that accept uses.
        status, text, headers = accept(broker, request.method, "/" + path,
                                       cast(Mapping[str, str], request.headers), body)
        return Response(text + "\n" if text else b"", status=status, headers=headers,
                        mimetype="text/plain")

    return app


class _IngressHandler(KeepAliveHandler):
    server_version = "eas-broker-ingress"

    def _handle(self) -> None:
        try:
            body = self.read_body(events.MAX_EVENT_BYTES)
        except (BadRequest, ClientGone) as exc:
            self.bad_request(exc)
            return
        path = self.path.split("?", 1)[0]
        try:
            server = cast(_IngressServer, self.server)
            status, text, headers = accept(server.broker, self.command, path,
                                           cast(Mapping[str, str], self.headers), body)
        except Exception as exc:  # noqa: BLE001 - a bug: answer it rather than drop the connection
            log.exception("ingress: %s %s failed", self.command, path)
            self.close_connection = True
            status, text, headers = 500, f"internal error: {type(exc).__name__}", {"Connection": "close"}
        self.answer(status, (text + "\n").encode() if text else b"", headers)

    do_POST = do_GET = do_PUT = do_PATCH = do_DELETE = do_HEAD = do_OPTIONS = _handle

    def __getattr__(self, name: str):
        # Any other method (TRACE, CONNECT, a made-up token) gets :func:`accept`'s 405 with
        # ``Allow: POST``, as Knative's ingress answers, instead of the base class's bare 501.
        if name.startswith("do_"):
            return self._handle
        raise AttributeError(name)


class _IngressServer(KeepAliveServer):
    def __init__(self, address, broker: Broker):
        self.broker = broker
        super().__init__(address, _IngressHandler)


class ServerThread(threading.Thread):
    """The ingress server on its own thread; :meth:`shutdown` stops it and its connections."""

    def __init__(self, broker: Broker, host: str, port: int):
        super().__init__(name=f"broker-ingress-{port}", daemon=True)
        self.server = _IngressServer((host, port), broker)
        self.host = host
        self.port = self.server.server_port

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def run(self) -> None:
        self.server.serve_forever(poll_interval=0.5)

    def shutdown(self) -> None:
        self.server.shutdown()
        self.join()
        self.server.server_close()


def serve(broker: Broker, host: str = "127.0.0.1", port: int = 0) -> ServerThread:
    """Serve the ingress of ``broker`` on ``host:port`` (0: a free port) from a started thread."""
    thread = ServerThread(broker, host, port)
    thread.start()
    return thread
