"""The composition root: which database, store and event sink a process uses.

Everything that needs a resource receives a :class:`Resources`; only this module decides, from
the settings, whether that is SQLite or PostgreSQL, a local folder or MinIO, and where events go.
"""
from __future__ import annotations

import functools
import logging
from typing import Callable

from cloudevents.http import CloudEvent

from eas_runtime import events
from eas_runtime.db.session import Database, database
from eas_runtime.settings import Settings
from eas_runtime.store import ObjectStore, open_store

log = logging.getLogger(__name__)


class Resources:
    def __init__(self, settings: Settings, *, send: Callable[[CloudEvent], None] | None = None,
                 store: ObjectStore | None = None, db: Database | None = None):
        self.settings = settings
        self._send = send
        self._store = store
        self._db = db

    @functools.cached_property
    def db(self) -> Database:
        return self._db or database(self.settings.db_url)

    @property
    def store(self) -> ObjectStore:
        if self._store is None:
            self._store = open_store(self.settings, notify=self.send, on_refused=self._refused)
        return self._store

    def _refused(self, event: CloudEvent | None, reason: str) -> None:
        """Keep a store notification the broker refused for good as a dead letter."""
        import json

        from eas_runtime.db.models import DeadLetter
        payload = "" if event is None else json.dumps(
            {"attributes": dict(event.get_attributes()), "data": event.get_data()}, default=str)
        with self.db.session() as s:
            s.add(DeadLetter(component="store", reason=reason[:10_000],
                             event_id="" if event is None else str(event["id"])[:200],
                             event_type="" if event is None else str(event["type"])[:200],
                             payload=payload[:100_000]))

    def send(self, event: CloudEvent) -> None:
        """Hand ``event`` to the broker; raises :class:`events.DeliveryError` on failure."""
        if self._send is not None:
            self._send(event)
        else:
            events.send(event, self.settings.sink_url, token=self.settings.internal_token)

    def try_send(self, event: CloudEvent) -> bool:
        """Like :meth:`send`, but a failure is logged, not raised (a reconcile tick resends)."""
        try:
            self.send(event)
            return True
        except events.DeliveryError as exc:
            log.warning("event %s (%s) not sent: %s", event["id"], event["type"], exc)
            return False


_default: Resources | None = None


def default_resources() -> Resources:
    """The process-wide resources from the environment (used by function entry points)."""
    global _default
    if _default is None:
        _default = Resources(Settings.load())
    return _default
