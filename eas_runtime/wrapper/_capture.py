"""Log capture, CPU/wall timing and the heartbeat of a running attempt."""
from __future__ import annotations

import datetime as dt
import logging
import resource
import threading
import time
from dataclasses import dataclass

from sqlalchemy import update

from eas_runtime.db.models import A_RUNNING, Attempt, utcnow

log = logging.getLogger(__name__)


class LogCapture(logging.Handler):
    """Collects the log records of one thread (one attempt) while it runs."""

    def __init__(self, thread_id: int, level: int = logging.DEBUG, limit: int = 5000):
        super().__init__(level)
        self.thread_id = thread_id
        self.records: list[tuple[dt.datetime, str, str]] = []
        self.limit = limit
        self.dropped = 0

    def emit(self, record: logging.LogRecord) -> None:
        if record.thread != self.thread_id:
            return
        if len(self.records) >= self.limit:
            self.dropped += 1
            return
        when = dt.datetime.fromtimestamp(record.created, dt.timezone.utc)
        try:
            text = record.getMessage()
        except Exception:  # noqa: BLE001 - a bad format string must not fail the task
            text = str(record.msg)
        if record.exc_info and record.exc_info[0] is not None:
            text += "\n" + logging.Formatter().formatException(record.exc_info)
        self.records.append((when, record.levelname, text))

    def __enter__(self) -> "LogCapture":
        logging.getLogger().addHandler(self)
        logging.captureWarnings(True)
        return self

    def __exit__(self, *exc) -> None:
        logging.getLogger().removeHandler(self)


@dataclass
class Timings:
    wall_s: float = 0.0
    cpu_s: float = 0.0
    cpu_children_s: float = 0.0


class Stopwatch:
    """Wall time, CPU time of this process (all threads) and of its waited-for children."""

    def __enter__(self) -> "Stopwatch":
        self._wall = time.perf_counter()
        self._cpu = time.process_time()
        ch = resource.getrusage(resource.RUSAGE_CHILDREN)
        self._children = ch.ru_utime + ch.ru_stime
        self.timings = Timings()
        return self

    def __exit__(self, *exc) -> None:
        ch = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpu = time.process_time() - self._cpu
        children = ch.ru_utime + ch.ru_stime - self._children
        self.timings = Timings(wall_s=time.perf_counter() - self._wall, cpu_s=cpu,
                               cpu_children_s=cpu + children)


class Heartbeat:
    """Updates ``attempts.heartbeat_at`` every ``interval_s`` while the attempt runs."""

    def __init__(self, db, attempt_id: int, interval_s: float):
        self.db = db
        self.attempt_id = attempt_id
        self.interval_s = interval_s
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"heartbeat-{attempt_id}", daemon=True)

    def _run(self) -> None:
        while not self._stop.wait(self.interval_s):
            try:
                with self.db.session() as s:
                    s.execute(update(Attempt).where(Attempt.id == self.attempt_id,
                                                    Attempt.state == A_RUNNING)
                              .values(heartbeat_at=utcnow()))
            except Exception as exc:  # noqa: BLE001 - a missed beat is retried at the next one
                log.warning("heartbeat of attempt %s failed: %s", self.attempt_id, exc)

    def __enter__(self) -> "Heartbeat":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
