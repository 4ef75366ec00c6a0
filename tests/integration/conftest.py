"""Fixtures with real servers on loopback: MinIO, PostgreSQL, WSGI apps and a capture broker.

- ``minio_server`` (session): a MinIO server without notifications; use a fresh bucket per test
  (``minio_store`` gives one).
- ``minio_factory`` (test): ``minio_factory(**MinioServer kwargs) -> MinioServer``, started,
  stopped after the test; for tests that stop, kill or restart the server, or need a webhook.
- ``postgres_server`` (session) and ``postgres_url`` (test): a fresh, empty database per test,
  dropped afterwards.
- ``wsgi_server`` (test): ``wsgi_server(app) -> base URL``, a real threaded HTTP server.
- ``capture_broker`` (test): a broker ingress that records the CloudEvents POSTed to it.

Tests using MinIO or PostgreSQL must carry ``@pytest.mark.minio`` / ``@pytest.mark.postgres``.
Missing servers skip those tests, except with ``CI=true`` where they fail.
"""
from __future__ import annotations

import re
import threading
import time
import uuid
from collections import deque
from typing import Callable

import pytest
from werkzeug.serving import make_server
from werkzeug.wrappers import Request, Response

from eas_runtime import devservers, events


# --------------------------------------------------------------------------- HTTP servers
class ServerThread:
    """A WSGI app served by werkzeug's threaded server on 127.0.0.1 in a daemon thread."""

    def __init__(self, app, port: int = 0):
        self.server = make_server(devservers.LOOPBACK, port, app, threaded=True)
        self.port = self.server.server_port
        self.url = f"http://{devservers.LOOPBACK}:{self.port}"
        self.thread = threading.Thread(target=self.server.serve_forever,
                                       kwargs={"poll_interval": 0.1}, name=f"wsgi-{self.port}",
                                       daemon=True)
        self.thread.start()

    def close(self) -> None:
        if self.thread.is_alive():
            self.server.shutdown()
            self.thread.join(10)
        self.server.server_close()


@pytest.fixture
def wsgi_server():
    """``wsgi_server(app) -> base URL`` (no trailing slash); servers stop after the test."""
    servers: list[ServerThread] = []

    def serve(app) -> str:
        server = ServerThread(app)
        servers.append(server)
        return server.url

    yield serve
    for server in servers:
        server.close()


class CaptureBroker:
    """A broker ingress that records every valid CloudEvent POSTed to it (answering 202 with an
    empty body, as a Knative broker does) and can be told to fail the next calls."""

    def __init__(self):
        self.events: list = []
        self.rejected: list[str] = []
        self.calls = 0
        self._failures: deque[int] = deque()
        self._cond = threading.Condition()
        self._server = ServerThread(self._app)
        self.url = self._server.url + "/eas/default"

    @Request.application
    def _app(self, request: Request) -> Response:
        with self._cond:
            self.calls += 1
            if self._failures:
                return Response(b"", status=self._failures.popleft())
        if request.method != "POST":
            return Response(b"", status=405)
        try:
            event = events.parse(request.headers, request.get_data())
        except events.EventError as exc:
            with self._cond:
                self.rejected.append(str(exc))
            return Response(str(exc).encode(), status=400)
        with self._cond:
            self.events.append(event)
            self._cond.notify_all()
        return Response(b"", status=202)

    def fail_next(self, count: int, status: int = 503) -> None:
        """Answer ``status`` to the next ``count`` calls (replacing any pending failures)."""
        with self._cond:
            self._failures = deque([status] * count)

    def recover(self) -> None:
        """Stop failing."""
        self.fail_next(0)

    @property
    def failures_left(self) -> int:
        with self._cond:
            return len(self._failures)

    def unique_events(self) -> dict:
        """Recorded events by id (duplicates collapse)."""
        with self._cond:
            return {ev["id"]: ev for ev in self.events}

    def wait_for(self, predicate: Callable[[list], bool], timeout_s: float = 30.0) -> list:
        """Wait until ``predicate(events)`` holds; return a copy of the events. AssertionError
        after ``timeout_s``."""
        deadline = time.monotonic() + timeout_s
        with self._cond:
            while not predicate(list(self.events)):
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"timed out after {timeout_s} s; broker has "
                                         f"{len(self.events)} events: "
                                         f"{[ev.get('subject') for ev in self.events]}")
                self._cond.wait(min(left, 0.5))
            return list(self.events)

    def close(self) -> None:
        self._server.close()


@pytest.fixture
def capture_broker():
    broker = CaptureBroker()
    yield broker
    broker.close()


# --------------------------------------------------------------------------- MinIO
@pytest.fixture(scope="session")
def minio_binary():
    return devservers.require("minio")


@pytest.fixture(scope="session")
def minio_server(tmp_path_factory, minio_binary):
    """A MinIO server for the whole session (no notifications). Do not stop it: use
    ``minio_factory`` for a server of your own."""
    server = devservers.MinioServer(tmp_path_factory.mktemp("minio"), binary=minio_binary)
    server.start()
    yield server
    server.stop()


@pytest.fixture
def minio_factory(tmp_path_factory, minio_binary):
    servers: list[devservers.MinioServer] = []

    def make(**kwargs) -> devservers.MinioServer:
        server = devservers.MinioServer(tmp_path_factory.mktemp("minio"), binary=minio_binary,
                                        **kwargs)
        servers.append(server)
        return server.start()

    yield make
    for server in servers:
        server.stop()


def fresh_bucket_name(prefix: str = "t") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:16]}"


@pytest.fixture
def minio_store(minio_server):
    """A MinioStore on a fresh bucket of the session server."""
    from eas_runtime.store.minio_store import MinioStore

    store = MinioStore(minio_server.endpoint, minio_server.access_key, minio_server.secret_key,
                       fresh_bucket_name())
    store.ensure_bucket()
    return store


# --------------------------------------------------------------------------- PostgreSQL
@pytest.fixture(scope="session")
def postgres_server(tmp_path_factory):
    devservers.require("postgres")
    server = devservers.PostgresServer(tmp_path_factory.mktemp("postgres"))
    server.start()
    yield server
    server.stop()


@pytest.fixture
def postgres_url(postgres_server, request) -> str:
    """SQLAlchemy URL of a fresh, empty database (dropped after the test)."""
    slug = re.sub(r"[^a-z0-9]+", "_", request.node.name.lower())[:40].strip("_")
    name = f"t_{slug}_{uuid.uuid4().hex[:8]}"
    url = postgres_server.create_database(name)
    yield url
    # WITH (FORCE) ends connections the test's engines still hold.
    postgres_server.drop_database(name)
