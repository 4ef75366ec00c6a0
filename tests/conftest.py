"""Shared fixtures: an isolated pipeline environment per test (settings, database, store)."""
from __future__ import annotations

import os
import threading
from pathlib import Path

import pytest

from eas_runtime.db.session import Database
from eas_runtime.resources import Resources
from eas_runtime.settings import PROJECT_ROOT, Settings
from eas_runtime.store.local import LocalStore

SHARED = Path(os.environ.get("EAS_SHARED_DIR", PROJECT_ROOT.parent / "shared"))


@pytest.fixture(autouse=True)
def _isolated_environment(monkeypatch, tmp_path):
    """No test sees the developer's EAS_* variables, and every test gets its own home."""
    for name in list(os.environ):
        if name.startswith("EAS_") and name != "EAS_SHARED_DIR" or name == "K_SINK":
            monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("EAS_HOME", str(tmp_path / "eas-home"))
    # Records of running `eas up` processes (eas_runtime.discovery): the developer's are not
    # seen, and a test's `eas up` leaves none behind.
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "xdg-state"))
    import eas_runtime.resources
    monkeypatch.setattr(eas_runtime.resources, "_default", None)


class EventLog:
    """Collects the events a component sends, in order (thread-safe)."""

    def __init__(self):
        self.events = []
        self._lock = threading.Lock()
        self.fail = False

    def __call__(self, event) -> None:
        if self.fail:
            from eas_runtime.events import DeliveryError
            raise DeliveryError("event log told to fail")
        with self._lock:
            self.events.append(event)

    def of_type(self, suffix: str) -> list:
        return [e for e in self.events if e["type"].endswith(suffix)]


@pytest.fixture
def shared_dir() -> Path:
    if not SHARED.is_dir():
        pytest.fail(f"the shared data folder {SHARED} is missing (set EAS_SHARED_DIR)")
    return SHARED


@pytest.fixture
def settings(tmp_path) -> Settings:
    return Settings.load(home=str(tmp_path / "eas-home"), heartbeat_s=0.2, stall_s=2.0, redeliver_s=2.0,
                         retry_backoff_s=0.0)


@pytest.fixture
def event_log() -> EventLog:
    return EventLog()


@pytest.fixture
def resources(settings, event_log) -> Resources:
    """Resources on a fresh SQLite database and local store; events go to ``event_log``."""
    db = Database(settings.db_url)
    db.create_schema()
    store = LocalStore(settings.store_path, settings.bucket, queue_dir=settings.home_path / "store-events",
                       notify=event_log)
    yield Resources(settings, send=event_log, store=store, db=db)
    db.dispose()
