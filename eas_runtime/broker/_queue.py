"""The broker's in-memory index of its durable queue: which pending rows are due when, which
are in flight, and the events of rows this broker stored itself.

The ``deliveries`` table stays the truth (a restart rebuilds this index from it); the index
spares every worker a query per row and every row a JSON round trip. Workers block on a
condition variable until the earliest row is due or a new row arrives: nothing polls.

Rows wait in one lane per Trigger, and a Trigger has at most ``lane_width`` rows in flight: a
worker takes the earliest due row among the Triggers below that cap. One slow subscriber thus
holds at most its own lane's workers, never the deliveries of another Trigger (Knative's
dispatcher likewise sends each Trigger's events independently). The broker keeps a spare
worker waiting (:meth:`DueQueue.waiting`), so a row of an idle lane is taken at once.
"""
from __future__ import annotations

import collections
import heapq
import threading
import time
from dataclasses import dataclass
from typing import Iterable, Optional

from cloudevents.http import CloudEvent


@dataclass
class Row:
    """What a worker needs of one ``deliveries`` row (``event`` parsed, or ``None`` until read)."""
    id: int
    trigger: str
    tries: int
    last_error: str
    event_type: str
    payload: str
    event: Optional[CloudEvent] = None
    #: Number of the attempt a worker is making (0: none); a crash counts it (see delivery).
    attempt: int = 0


class DueQueue:
    """Due times [s since the epoch] of pending row ids by Trigger, and the ids in flight."""

    def __init__(self, lane_width: int = 1) -> None:
        self.lane_width = max(1, lane_width)
        self._lock = threading.Lock()
        self._due = threading.Condition(self._lock)      # workers wait for a due row
        self._idle = threading.Condition(self._lock)     # wait_idle waits for an empty queue
        self._lanes: dict[str, list[tuple[float, int]]] = {}     # only lanes with queued rows
        self._queued: dict[int, str] = {}                # row id -> trigger
        self._inflight: dict[int, str] = {}
        self._busy: collections.Counter[str] = collections.Counter()
        self._rows: dict[int, Row] = {}
        self._waiting = 0

    # ------------------------------------------------------------------ producers
    def push(self, items: Iterable[tuple[int, float, str]], rows: Iterable[Row] = ()) -> None:
        """Queue ``(row id, due, trigger)`` triples (ids already queued or in flight are
        skipped) and remember the rows given; wakes one worker per row."""
        with self._lock:
            for row in rows:
                self._rows[row.id] = row
            added = 0
            for row_id, due, trigger in items:
                if row_id in self._queued or row_id in self._inflight:
                    continue
                self._enqueue(row_id, due, trigger)
                added += 1
            if added:
                self._due.notify(added)

    def _enqueue(self, row_id: int, due: float, trigger: str) -> None:
        heapq.heappush(self._lanes.setdefault(trigger, []), (due, row_id))
        self._queued[row_id] = trigger

    # ------------------------------------------------------------------ workers
    def take(self, stop: threading.Event) -> int | None:
        """The id of the earliest due row of a Trigger below its cap, now in flight; blocks
        until one is due. ``None`` once ``stop`` is set (call :meth:`wake_all` after setting it)."""
        with self._lock:
            self._waiting += 1
            try:
                while not stop.is_set():
                    best: tuple[float, int] | None = None
                    lane = ""
                    for trigger, heap in self._lanes.items():
                        if self._busy[trigger] < self.lane_width and (best is None or heap[0] < best):
                            best, lane = heap[0], trigger
                    if best is None:
                        self._due.wait()
                        continue
                    wait = best[0] - time.time()
                    if wait > 0:
                        self._due.wait(wait)
                        continue
                    heap = self._lanes[lane]
                    heapq.heappop(heap)
                    if not heap:
                        del self._lanes[lane]
                    row_id = best[1]
                    del self._queued[row_id]
                    self._inflight[row_id] = lane
                    self._busy[lane] += 1
                    return row_id
            finally:
                self._waiting -= 1
        return None

    def waiting(self) -> int:
        """Workers waiting in :meth:`take` (free for the next due row)."""
        with self._lock:
            return self._waiting

    def row(self, row_id: int) -> Row | None:
        with self._lock:
            return self._rows.get(row_id)

    def keep(self, row: Row) -> None:
        """Remember a row read from the table (forgotten when it is done)."""
        with self._lock:
            self._rows[row.id] = row

    def done(self, row_id: int, *, again_at: float | None = None, row: Row | None = None) -> None:
        """A worker let go of a row: finished (forgotten), or pending again from ``again_at``."""
        with self._lock:
            lane = self._inflight.pop(row_id, None)
            if lane is not None:
                self._busy[lane] -= 1
                if self._busy[lane] <= 0:
                    del self._busy[lane]
            if again_at is None:
                self._rows.pop(row_id, None)
            else:
                if row is not None:
                    self._rows[row_id] = row
                    lane = row.trigger
                if row_id not in self._queued:
                    self._enqueue(row_id, again_at, lane or "")
            if lane in self._lanes:
                self._due.notify()          # the lane has room again, or a row back
            if not self._queued and not self._inflight:
                self._idle.notify_all()

    def wake_all(self) -> None:
        with self._lock:
            self._due.notify_all()
            self._idle.notify_all()

    # ------------------------------------------------------------------ inspection
    def busy(self) -> bool:
        with self._lock:
            return bool(self._queued or self._inflight)

    def in_flight(self, trigger: str) -> int:
        with self._lock:
            return self._busy[trigger]

    def wait_idle(self, timeout: float) -> bool:
        """Wait until nothing is queued or in flight; False after ``timeout`` seconds."""
        deadline = time.monotonic() + timeout
        with self._lock:
            while self._queued or self._inflight:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                self._idle.wait(remaining)
        return True
