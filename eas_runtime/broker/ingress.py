"""The broker ingress: ``POST /<namespace>/<broker>`` accepts CloudEvents over HTTP.

Answers as Knative's broker ingress does: ``202`` with an empty body once the event is stored
(one delivery row per matching Trigger, in one transaction; zero rows is fine), ``400`` with a
plain-text reason for anything that is not a valid CloudEvent (binary or structured mode),
``404`` for an unknown Broker, ``405`` for methods other than POST, and ``503`` when the database
is unavailable (the sender retries). ``GET /healthz`` answers 200.
"""
from __future__ import annotations

import logging
import threading

from flask import Flask, Response, request
from sqlalchemy.exc import SQLAlchemyError
from werkzeug.serving import make_server

from eas_runtime import events
from eas_runtime.db.session import DatabaseUnavailable

from .delivery import Broker

log = logging.getLogger(__name__)

_REQUIRED = ("specversion", "id", "source", "type")


def _text(message: str, status: int) -> Response:
    return Response(message + "\n", status=status, mimetype="text/plain")


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


def create_app(broker: Broker) -> Flask:
    app = Flask("eas_runtime.broker.ingress")

    @app.get("/healthz")
    def healthz() -> Response:
        return _text("ok", 200)

    @app.route("/<namespace>/<name>", methods=["POST", "GET", "PUT", "PATCH", "DELETE"])
    def ingress(namespace: str, name: str) -> Response:
        if not broker.has_broker(namespace, name):
            return _text(f"no Broker {namespace}/{name} here (known: "
                         f"{', '.join(broker.config.brokers) or 'none'})", 404)
        if request.method != "POST":
            response = _text(f"{request.method} is not allowed: send events with POST", 405)
            response.headers["Allow"] = "POST"
            return response
        headers = dict(request.headers)
        body = request.get_data(cache=False)
        problem = binary_mode_problem(headers)
        if problem:
            return _text(problem, 400)
        try:
            event = events.parse(headers, body)
        except events.EventError as exc:
            return _text(str(exc), 400)
        try:
            broker.ingest(event, f"{namespace}/{name}")
        except DatabaseUnavailable as exc:
            log.warning("ingress %s/%s: %s", namespace, name, exc)
            return _text(f"event not stored, try again: {exc}", 503)
        except SQLAlchemyError as exc:
            log.exception("ingress %s/%s: database error", namespace, name)
            return _text(f"event not stored, try again: {type(exc).__name__}", 503)
        return Response(status=202)

    return app


class ServerThread(threading.Thread):
    """A werkzeug server (threaded) on its own thread; :meth:`shutdown` stops it."""

    def __init__(self, app: Flask, host: str, port: int):
        super().__init__(name=f"broker-ingress-{port}", daemon=True)
        self.server = make_server(host, port, app, threaded=True)
        self.host = host
        self.port = self.server.server_port

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def run(self) -> None:
        self.server.serve_forever(poll_interval=0.1)

    def shutdown(self) -> None:
        self.server.shutdown()
        self.join()
        self.server.server_close()


def serve(broker: Broker, host: str = "127.0.0.1", port: int = 0) -> ServerThread:
    """Serve the ingress of ``broker`` on ``host:port`` (0: a free port) from a started thread."""
    thread = ServerThread(create_app(broker), host, port)
    thread.start()
    return thread
