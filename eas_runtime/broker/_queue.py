"""The broker's in-memory index of its durable queue: which pending rows are due when, which
are in flight, and the events of rows this broker stored itself.

The ``deliveries`` table stays the truth (a restart rebuilds this index from it); the index
spares every worker a query per row and every row a JSON round trip. Workers block on a
condition variable until the earliest row is due or a new row arrives: nothing polls.
"""
from __future__ import annotations

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


class DueQueue:
    """Due times [s since the epoch] of pending row ids, and the ids in flight."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._due = threading.Condition(self._lock)      # workers wait for a due row
        self._idle = threading.Condition(self._lock)     # wait_idle waits for an empty queue
        self._heap: list[tuple[float, int]] = []
        self._queued: set[int] = set()
        self._inflight: set[int] = set()
        self._rows: dict[int, Row] = {}

    # ------------------------------------------------------------------ producers
    def push(self, items: Iterable[tuple[int, float]], rows: Iterable[Row] = ()) -> None:
        """Queue ``(row id, due)`` pairs (ids already queued or in flight are skipped) and
        remember the rows given; wakes one worker per row."""
        with self._lock:
            for row in rows:
                self._rows[row.id] = row
            added = 0
            for row_id, due in items:
                if row_id in self._queued or row_id in self._inflight:
                    continue
                heapq.heappush(self._heap, (due, row_id))
                self._queued.add(row_id)
                added += 1
            if added:
                self._due.notify(added)

    # ------------------------------------------------------------------ workers
    def take(self, stop: threading.Event) -> int | None:
        """The id of the earliest due row, now in flight; blocks until one is due. ``None``
        once ``stop`` is set (call :meth:`wake_all` after setting it)."""
        with self._lock:
            while not stop.is_set():
                if not self._heap:
                    self._due.wait()
                    continue
                due, row_id = self._heap[0]
                wait = due - time.time()
                if wait > 0:
                    self._due.wait(wait)
                    continue
                heapq.heappop(self._heap)
                self._queued.discard(row_id)
                self._inflight.add(row_id)
                return row_id
        return None

    def row(self, row_id: int) -> Row | None:
        with self._lock:
            return self._rows.get(row_id)

    def done(self, row_id: int, *, again_at: float | None = None, row: Row | None = None) -> None:
        """A worker let go of a row: finished (forgotten), or pending again from ``again_at``."""
        with self._lock:
            self._inflight.discard(row_id)
            if again_at is None:
                self._rows.pop(row_id, None)
            else:
                if row is not None:
                    self._rows[row_id] = row
                if row_id not in self._queued:
                    heapq.heappush(self._heap, (again_at, row_id))
                    self._queued.add(row_id)
                    self._due.notify()
            if not self._heap and not self._inflight:
                self._idle.notify_all()

    def wake_all(self) -> None:
        with self._lock:
            self._due.notify_all()
            self._idle.notify_all()

    # ------------------------------------------------------------------ inspection
    def busy(self) -> bool:
        with self._lock:
            return bool(self._heap or self._inflight)

    def wait_idle(self, timeout: float) -> bool:
        """Wait until nothing is queued or in flight; False after ``timeout`` seconds."""
        deadline = time.monotonic() + timeout
        with self._lock:
            while self._heap or self._inflight:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                self._idle.wait(remaining)
        return True
