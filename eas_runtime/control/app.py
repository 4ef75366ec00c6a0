"""HTTP face of eas-control: one endpoint for subscribed events, one for dead letters."""
from __future__ import annotations

import base64
import logging

from flask import Flask, request

from eas_runtime import events, internal_auth
from eas_runtime.control import Control
from eas_runtime.db.session import DatabaseUnavailable
from eas_runtime.resources import Resources
from eas_runtime.store import StoreUnavailable

log = logging.getLogger("eas.control")


def create_app(resources: Resources) -> Flask:
    app = Flask(__name__)
    app.name = "eas-control"
    control = Control(resources)
    app.extensions["eas_control"] = control
    internal_auth.protect_flask(app, resources.settings.internal_token)

    @app.post("/")
    def receive():
        """202; or, when the broker asks for a reply (``Prefer: reply``) and a task became
        ready, 200 with its ``task.ready`` as the reply (other events are posted)."""
        try:
            event = events.parse(request.headers, request.get_data())
            if events.prefers_reply(request.headers):
                summary, reply = control.handle_with_reply(event)
            else:
                summary, reply = control.handle(event), None
            log.debug("%s %s -> %s", event["type"], event["id"], summary)
        except events.EventError as exc:
            _record(control, "control", f"invalid event: {exc}", request)
            return f"{exc}\n", 400
        except (DatabaseUnavailable, StoreUnavailable) as exc:
            return f"{exc}\n", 503
        if reply is not None:
            headers, body = events.to_http(reply)
            return body, 200, headers
        return "", 202

    @app.post("/dead-letter")
    def dead_letter():
        """The Broker's dead-letter sink: keep the event and Knative's reason for giving up."""
        try:
            event = events.parse(request.headers, request.get_data())
        except events.EventError as exc:
            _record(control, "broker", f"unparseable dead letter: {exc}", request)
            return "", 202
        code = event.get("knativeerrorcode", "")
        dest = event.get("knativeerrordest", "")
        detail = event.get("knativeerrordata", "")
        try:
            detail = base64.b64decode(detail).decode("utf-8", "replace") if detail else ""
        except ValueError:
            pass
        try:
            control.dead_letter("broker", f"delivery to {dest or '?'} failed (HTTP {code or '?'}): {detail}"
                                .strip(), event)
        except DatabaseUnavailable as exc:
            return f"{exc}\n", 503
        return "", 202

    @app.get("/healthz")
    def healthz():
        return "ok\n", 200

    return app


def _record(control: Control, component: str, reason: str, req) -> None:
    try:
        control.dead_letter(component, reason, payload=req.get_data(as_text=True)[:100_000]
                            + "\n" + str(dict(req.headers))[:5000])
    except DatabaseUnavailable:
        log.error("could not record: %s", reason)
