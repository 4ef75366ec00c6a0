"""Fixtures for the embedded broker: a SQLite database, real HTTP subscribers, YAML configs."""
from __future__ import annotations

import collections
import textwrap
import threading
import time
from pathlib import Path
from typing import Any, Callable

import pytest
from werkzeug.serving import make_server
from werkzeug.wrappers import Request, Response

from eas_runtime import events
from eas_runtime.broker import Broker, HttpDispatcher, load_config
from eas_runtime.db.session import Database
from eas_runtime.settings import Settings

Reply = Any  # int | (status, headers, body) | callable(request) -> reply


class Subscriber:
    """A real HTTP server on loopback that records requests and answers from a script.

    ``script(path, *replies)`` queues the answers for a path: an int status (empty body), a
    ``(status, headers, body)`` tuple, or a callable taking the werkzeug request. Once a path's
    script is used up it answers ``default`` (202, empty body).
    """

    def __init__(self, default: Reply = 202):
        self.default = default
        self.requests: list[dict[str, Any]] = []
        self._script: dict[str, list[Reply]] = collections.defaultdict(list)
        self._lock = threading.Condition()
        self._server = make_server("127.0.0.1", 0, self._wsgi, threaded=True)
        self.port = self._server.server_port
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.05,), daemon=True)
        self._thread.start()

    def url(self, path: str = "/") -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def script(self, path: str, *replies: Reply) -> None:
        with self._lock:
            self._script[path].extend(replies)

    def _wsgi(self, environ, start_response):
        request = Request(environ)
        body = request.get_data()
        with self._lock:
            self.requests.append({"path": request.path, "headers": dict(request.headers),
                                  "body": body, "time": time.monotonic()})
            queue = self._script[request.path]
            reply = queue.pop(0) if queue else self.default
            self._lock.notify_all()
        if callable(reply):
            reply = reply(request)
        if isinstance(reply, int):
            reply = (reply, {}, b"")
        status, headers, payload = reply
        return Response(payload, status=status, headers=headers)(environ, start_response)

    def received(self, path: str | None = None) -> list[dict[str, Any]]:
        with self._lock:
            return [r for r in self.requests if path is None or r["path"] == path]

    def wait_for(self, count: int, path: str | None = None, timeout: float = 10.0) -> list[dict[str, Any]]:
        deadline = time.monotonic() + timeout
        with self._lock:
            while True:
                got = [r for r in self.requests if path is None or r["path"] == path]
                if len(got) >= count:
                    return got
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise AssertionError(f"expected {count} request(s) to {path or 'any path'}, "
                                         f"got {len(got)}")
                self._lock.wait(remaining)

    def events(self, path: str | None = None) -> list:
        return [events.parse(r["headers"], r["body"]) for r in self.received(path)]

    def close(self) -> None:
        self._server.shutdown()
        self._thread.join()
        self._server.server_close()


@pytest.fixture
def subscriber():
    sub = Subscriber()
    yield sub
    sub.close()


@pytest.fixture
def db(tmp_path: Path):
    database = Database(f"sqlite:///{tmp_path / 'db' / 'eas.db'}")
    database.create_schema()
    yield database
    database.dispose()


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings.load(environ={}, home=str(tmp_path / "home"),
                         database_url=f"sqlite:///{tmp_path / 'db' / 'eas.db'}",
                         broker_config_dir=str(tmp_path / "config"))


def write_config(folder: Path, text: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "broker.yaml").write_text(textwrap.dedent(text))
    return folder


BROKER_DOC = """\
apiVersion: eventing.knative.dev/v1
kind: Broker
metadata:
  name: default
  namespace: eas
spec:
  delivery:
    retry: {retry}
    backoffPolicy: {policy}
    backoffDelay: {delay}
{dls}"""


def broker_doc(retry: int = 3, policy: str = "exponential", delay: str = "PT0.01S",
               dls: str | None = None) -> str:
    """A Broker document; ``dls`` is an absolute dead-letter sink URI."""
    sink = f"    deadLetterSink:\n      uri: {dls}\n" if dls else ""
    return BROKER_DOC.format(retry=retry, policy=policy, delay=delay, dls=sink)


def trigger_doc(name: str, uri: str, filter_yaml: str = "", delivery_yaml: str = "") -> str:
    """A Trigger document; ``filter_yaml``/``delivery_yaml`` are spec fields at 2-space indent."""
    return (f"---\napiVersion: eventing.knative.dev/v1\nkind: Trigger\nmetadata:\n  name: {name}\n"
            f"  namespace: eas\nspec:\n  broker: default\n  subscriber:\n    uri: {uri}\n"
            + textwrap.indent(textwrap.dedent(filter_yaml), "  ")
            + textwrap.indent(textwrap.dedent(delivery_yaml), "  "))


@pytest.fixture
def make_broker(tmp_path: Path, settings: Settings, db: Database):
    """``make_broker(yaml, start=True, **kwargs)``: a Broker on the test database with the
    configuration in ``yaml`` and an HttpDispatcher; stopped at teardown."""
    made: list[Broker] = []
    counter = iter(range(1000))

    def make(text: str, *, start: bool = True, **kwargs: Any) -> Broker:
        folder = write_config(tmp_path / f"config{next(counter)}", text)
        kwargs.setdefault("workers", 4)
        broker = Broker(settings, db, load_config(folder), HttpDispatcher(), **kwargs)
        made.append(broker)
        if start:
            broker.start()
        return broker

    yield make
    for broker in made:
        broker.stop(timeout=5)


def make_event(type_: str = "org.plato.eas.task.ready", id: str = "e1", data: Any = None,
               **extensions: Any):
    return events.make_event(type_, "/test", {"n": 1} if data is None else data, id=id, **extensions)


def wait_until(predicate: Callable[[], bool], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached in time")
        time.sleep(0.01)
