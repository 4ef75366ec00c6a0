"""PingSource for the embedded runtime: periodic ``dev.knative.sources.ping`` events.

For every PingSource whose sink is a Broker of the configuration, :class:`PingEmitter` ingests
one event per tick, as Knative's PingSource adapter would send it: type
``dev.knative.sources.ping``, source ``/apis/v1/namespaces/<ns>/pingsources/<name>``, ``time``
the tick time, ``datacontenttype`` the PingSource's ``contentType`` and the data from ``data``
(JSON data as JSON) or ``dataBase64`` (bytes).

The interval is given to the emitter (the embedded runtime passes ``settings.reconcile_s``; 0
disables it) instead of the cron ``schedule``. Ticks are aligned to multiples of the interval
since the epoch and the event id depends only on the PingSource and the tick time, so a tick
emitted twice (e.g. across a restart) is recognisably the same event.
"""
from __future__ import annotations

import base64
import datetime as dt
import json
import logging
import math
import threading
import time
from typing import Any, Callable

from cloudevents.http import CloudEvent

from eas_runtime.events import PING

from .config import PingSourceConfig
from .delivery import Broker
from .wire import is_json_type

log = logging.getLogger(__name__)


def ping_event(source: PingSourceConfig, tick: float) -> CloudEvent:
    """The event of ``source`` for the tick at ``tick`` (seconds since the epoch)."""
    when = dt.datetime.fromtimestamp(tick, dt.timezone.utc).isoformat().replace("+00:00", "Z")
    attributes: dict[str, Any] = {"type": PING, "source": source.source,
                                  "id": f"{source.name}-{when}", "time": when}
    data: Any = None
    if source.data_base64 is not None:
        data = base64.b64decode(source.data_base64)
    elif source.data is not None:
        data = source.data
        if is_json_type(source.content_type or "application/json"):
            try:
                data = json.loads(source.data)
            except ValueError:
                data = source.data.encode("utf-8")
    if source.content_type:
        attributes["datacontenttype"] = source.content_type
    elif data is not None:
        attributes["datacontenttype"] = "application/json" if not isinstance(data, bytes) else "text/plain"
    return CloudEvent(attributes, data)


class PingEmitter(threading.Thread):
    """Emits the ticks of the configuration's PingSources into ``broker`` every ``interval_s``."""

    def __init__(self, broker: Broker, interval_s: float, *,
                 clock: Callable[[], float] = time.time):
        super().__init__(name="broker-ping", daemon=True)
        self.broker = broker
        self.interval_s = float(interval_s)
        self.clock = clock
        self.sources = [(s, s.sink_broker()) for s in broker.config.pingsources
                        if s.sink_broker() in broker.config.brokers]
        self.ticks = 0
        self._halt = threading.Event()
        for source in broker.config.pingsources:
            if source.sink_broker() not in broker.config.brokers:
                log.info("PingSource %s/%s: sink is not a Broker of this runtime; ignored",
                         source.namespace, source.name)

    @property
    def enabled(self) -> bool:
        return self.interval_s > 0 and bool(self.sources)

    def start(self) -> None:
        if self.enabled:
            super().start()

    def run(self) -> None:
        interval = self.interval_s
        next_tick = (math.floor(self.clock() / interval) + 1) * interval
        while not self._halt.wait(max(0.0, next_tick - self.clock())):
            self.emit(next_tick)
            next_tick += interval
            now = self.clock()
            if next_tick <= now:  # the machine slept: skip the missed ticks
                next_tick = (math.floor(now / interval) + 1) * interval

    def emit(self, tick: float) -> int:
        """Ingest the events of one tick; returns the number of delivery rows created."""
        created = 0
        for source, broker_key in self.sources:
            event = ping_event(source, tick)
            try:
                created += self.broker.ingest(event, broker_key)
            except Exception as exc:  # noqa: BLE001 - the next tick tries again
                log.warning("PingSource %s/%s: tick not stored: %s", source.namespace, source.name, exc)
        self.ticks += 1
        return created

    def stop(self, timeout: float = 5.0) -> None:
        self._halt.set()
        if self.is_alive():
            self.join(timeout)
