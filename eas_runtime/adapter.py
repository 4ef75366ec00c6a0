"""The storage event adapter: MinIO webhook calls in, ``product.created`` CloudEvents out.

MinIO's webhook target (with ``queue_dir``) POSTs ``{"EventName", "Key", "Records": [...]}``
and keeps each notification on disk until the call answers 2xx, retrying every few seconds.
So this handler answers 2xx only once the broker accepted every event it could build; if the
broker fails it answers 503 and MinIO sends the record again (event ids are stable, so a
repeated record is a duplicate the receivers ignore).

A record that can never be converted is the opposite case: retrying cannot help, and because
MinIO delivers its queue in order, one such record would stall every upload queued behind it.
It is kept as a ``DeadLetter`` row and acknowledged. The same holds for a body that is not
JSON (or nests deeper than any record does), a key no store accepts (``..`` parts: refused
where it enters, naming the reason), and an event the broker refuses for good (a 4xx that is
not worth retrying): each is a dead letter, and only the broker being unreachable or
answering 5xx/404/408/409/429 makes the whole call 503. Every other answer is 2xx or, for a
caller without the token, 401/403.
"""
from __future__ import annotations

import datetime as dt
import hmac
import json
import logging
from typing import Any, Callable
from urllib.parse import unquote_plus

from flask import Flask, Response, jsonify, request

from eas_runtime import events
from eas_runtime.store.base import MAX_OBJECT_SIZE, InvalidKey, ObjectInfo, check_key, product_created_event

log = logging.getLogger(__name__)

COMPONENT = "storage-adapter"
CREATED_PREFIX = "s3:ObjectCreated:"
META_PREFIX = "x-amz-meta-"
#: Largest notification body taken (MinIO sends one record per call, a few kB); a larger one
#: is answered 413 without being read.
MAX_BODY_BYTES = 4 * 1024 * 1024


class BadRecord(ValueError):
    """A notification record that can never become an event; the message names the defect."""


def _field(obj: Any, path: str, kind: type | tuple, *, required: bool = True, default=None):
    value: Any = obj
    for part in path.split("."):
        if not isinstance(value, dict):
            raise BadRecord(f"{path}: {part!r} is not inside an object")
        if part not in value or value[part] is None:
            if required:
                raise BadRecord(f"{path} is missing")
            return default
        value = value[part]
    if isinstance(value, bool) or not isinstance(value, kind):
        raise BadRecord(f"{path} has type {type(value).__name__}, expected "
                        f"{getattr(kind, '__name__', kind)}")
    return value


def record_to_info(record: Any) -> tuple[ObjectInfo, str]:
    """The object an ``s3:ObjectCreated:*`` record describes, and its sequencer."""
    if not isinstance(record, dict):
        raise BadRecord(f"record is a {type(record).__name__}, not an object")
    bucket = _field(record, "s3.bucket.name", str)
    raw_key = _field(record, "s3.object.key", str)
    if not bucket or not raw_key:
        raise BadRecord("s3.bucket.name or s3.object.key is empty")
    # S3 notifications carry the key URL-encoded; invalid UTF-8 escapes are a defect of the
    # record, not something to guess around.
    try:
        key = unquote_plus(raw_key, errors="strict")
    except UnicodeDecodeError:
        raise BadRecord(f"s3.object.key {raw_key[:200]!r} is not percent-encoded UTF-8") from None
    try:
        check_key(key)
    except InvalidKey as exc:
        raise BadRecord(f"s3.object.key {raw_key[:200]!r} decodes to a key no store accepts: {exc}") from None
    size = _field(record, "s3.object.size", int)
    if size < 0:
        raise BadRecord(f"s3.object.size is negative ({size})")
    if size > MAX_OBJECT_SIZE:
        raise BadRecord(f"s3.object.size {size} is larger than any object can be ({MAX_OBJECT_SIZE})")
    etag = _field(record, "s3.object.eTag", str).strip('"')
    meta = _field(record, "s3.object.userMetadata", dict, required=False, default={})
    if not all(isinstance(k, str) and isinstance(v, str) for k, v in meta.items()):
        raise BadRecord("s3.object.userMetadata must map strings to strings")
    # MinIO puts content-type and other headers next to the user metadata: keep only the latter.
    metadata = {k[len(META_PREFIX):].lower(): v for k, v in meta.items()
                if k.lower().startswith(META_PREFIX)}
    event_time = _field(record, "eventTime", str)
    try:
        modified = dt.datetime.fromisoformat(event_time.replace("Z", "+00:00"))
    except ValueError:
        raise BadRecord(f"eventTime {event_time!r} is not an ISO 8601 time") from None
    if modified.tzinfo is None:
        modified = modified.replace(tzinfo=dt.timezone.utc)
    version = _field(record, "s3.object.versionId", str, required=False) or None
    content_type = (_field(record, "s3.object.contentType", str, required=False)
                    or "application/octet-stream")
    # The sequencer tells two writes of the same content apart; MinIO derives it from the
    # object's modification time, so a redelivered record keeps it (and its event id).
    sequencer = _field(record, "s3.object.sequencer", str, required=False) or event_time
    info = ObjectInfo(bucket=bucket, key=key, size=size, etag=etag, last_modified=modified,
                      version_id=version, content_type=content_type, metadata=metadata)
    return info, sequencer


def create_app(settings, *, db=None, send: Callable | None = None) -> Flask:
    """The adapter as a Flask app. ``db`` (a :class:`eas_runtime.db.session.Database`) keeps
    records that cannot be converted; ``send`` delivers an event to the broker (raises on
    failure)."""
    if send is None:
        send = lambda ev: events.send(ev, settings.sink_url, token=settings.internal_token)  # noqa: E731
    token = settings.adapter_token.encode()
    app = Flask(__name__)
    app.config["MAX_CONTENT_LENGTH"] = MAX_BODY_BYTES

    def dead_letter(reason: str, payload: str, event_type: str = "") -> None:
        log.error("dead-lettering storage notification: %s", reason)
        if db is None:
            log.error("no database to keep the dead letter; payload was: %s", payload[:2000])
            return
        from eas_runtime.db.models import DeadLetter
        try:
            with db.session() as s:
                s.add(DeadLetter(component=COMPONENT, reason=reason, event_type=event_type[:200],
                                 payload=payload))
        except Exception as exc:  # noqa: BLE001
            # The record is acknowledged all the same: it can never be converted, and refusing
            # it would make MinIO retry it forever, stalling every upload queued behind it.
            log.error("could not store dead letter (%s): %s; payload was: %s",
                      reason, exc, payload[:2000])

    @app.get("/healthz")
    def healthz():
        return Response("ok", 200, mimetype="text/plain")

    @app.post("/")
    @app.post("/minio")
    def notification():
        header = request.headers.get("Authorization", "")
        scheme, _, given = header.partition(" ")
        if scheme.lower() != "bearer" or not given.strip():
            return Response("missing bearer token\n", 401,
                            {"WWW-Authenticate": 'Bearer realm="eas-storage-adapter"'})
        if not hmac.compare_digest(given.strip().encode(), token):
            return Response("wrong token\n", 403)

        body = request.get_data()
        try:
            document = json.loads(body)
        except (ValueError, UnicodeDecodeError) as exc:
            dead_letter(f"body is not JSON: {exc}", body.decode("utf-8", "replace"))
            return jsonify(accepted=0, ignored=0, dead_lettered=1)
        except RecursionError:
            dead_letter("body nests JSON deeper than the parser allows; no S3 record does",
                        body[:100_000].decode("utf-8", "replace"))
            return jsonify(accepted=0, ignored=0, dead_lettered=1)
        records = document.get("Records") if isinstance(document, dict) else None
        if not isinstance(records, list):
            dead_letter("body has no 'Records' list", body.decode("utf-8", "replace"))
            return jsonify(accepted=0, ignored=0, dead_lettered=1)

        ready, bad, ignored = [], [], 0
        for record in records:
            name = record.get("eventName") if isinstance(record, dict) else None
            if isinstance(name, str) and not name.startswith(CREATED_PREFIX):
                ignored += 1  # removals and the like: nothing to announce
                continue
            try:
                if isinstance(record, dict) and not isinstance(name, str):
                    raise BadRecord("eventName is missing or not a string")
                info, sequencer = record_to_info(record)
                ready.append(product_created_event(info, sequencer))
            except (BadRecord, ValueError, TypeError) as exc:
                kind = name if isinstance(name, str) and name else "storage"
                bad.append((f"unusable {kind} record: {exc}", json.dumps(record, default=str),
                            name if isinstance(name, str) else ""))

        accepted = 0
        for event in ready:
            try:
                send(event)
                accepted += 1
            except Exception as exc:  # noqa: BLE001 - either MinIO resends, or it is set aside
                if events.is_transient(exc):
                    log.warning("broker did not take product.created for %s: %s", event["subject"], exc)
                    return jsonify(error=f"broker unavailable: {exc}"), 503
                bad.append((f"product.created for {event['subject']!r} refused by the broker for good: "
                            f"{type(exc).__name__}: {exc}", _event_json(event), events.PRODUCT_CREATED))
        # Dead letters are written only once the batch is acknowledged, so a batch that is
        # retried because of the broker does not leave the same dead letter twice.
        for reason, payload, event_type in bad:
            dead_letter(reason, payload, event_type)
        return jsonify(accepted=accepted, ignored=ignored, dead_lettered=len(bad))

    return app


def _event_json(event) -> str:
    return json.dumps({"attributes": dict(event.get_attributes()), "data": event.get_data()}, default=str)


def app_from_environment() -> Flask:
    """The adapter configured from ``EAS_*`` settings, e.g. for
    ``gunicorn 'eas_runtime.adapter:app_from_environment()'``."""
    from eas_runtime.db.session import database
    from eas_runtime.settings import Settings

    settings = Settings.load()
    logging.basicConfig(level=settings.log_level)
    return create_app(settings, db=database(settings.db_url))
