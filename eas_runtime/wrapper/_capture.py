"""Log capture, CPU/wall timing, the heartbeat and the scratch folder of a running attempt."""
from __future__ import annotations

import atexit
import contextlib
import datetime as dt
import logging
import math
import os
import resource
import shutil
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

from sqlalchemy import bindparam, update

from eas_runtime.db.models import A_RUNNING, Attempt, utcnow
from eas_runtime.wrapper import _descendants

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
    #: CPU time of this process (all its threads).
    cpu_s: float = 0.0
    #: ``cpu_s`` plus the CPU time of every process started below this one during the task,
    #: whether it was waited for or still runs (a persistent pool worker).
    cpu_children_s: float = 0.0


class Stopwatch:
    """Wall time, CPU time of this process (all threads) and of its descendants.

    Children that were waited for are read from ``RUSAGE_CHILDREN``; living descendants (and
    what they waited for) from ``/proc`` (:mod:`eas_runtime.wrapper._descendants`), as growth
    between the start and the end of the task.
    """

    def __enter__(self) -> "Stopwatch":
        self._tree = _descendants.snapshot()
        self._wall = time.perf_counter()
        self._cpu = time.process_time()
        ch = resource.getrusage(resource.RUSAGE_CHILDREN)
        self._children = ch.ru_utime + ch.ru_stime
        self.timings = Timings()
        return self

    def __exit__(self, *exc) -> None:
        cpu = time.process_time() - self._cpu
        wall = time.perf_counter() - self._wall
        ch = resource.getrusage(resource.RUSAGE_CHILDREN)
        children = ch.ru_utime + ch.ru_stime - self._children
        children += _descendants.spent(self._tree, _descendants.snapshot())
        self.timings = Timings(wall_s=wall, cpu_s=cpu, cpu_children_s=cpu + max(0.0, children))


class Heartbeat:
    """Updates ``attempts.heartbeat_at`` every ``interval_s`` [s] while the attempt runs.

    Every attempt of a process shares one beating thread (:class:`_Beats`), started with the
    first attempt and woken by a condition variable: entering and leaving costs no thread start.
    """

    def __init__(self, db, attempt_id: int, interval_s: float):
        self.db = db
        self.attempt_id = attempt_id
        self.interval_s = interval_s

    def __enter__(self) -> "Heartbeat":
        _BEATS.add(self)
        return self

    def __exit__(self, *exc) -> None:
        _BEATS.remove(self)


class _Beats:
    """The process's heartbeat thread: sleeps until the earliest due beat, then beats every due
    attempt of a database in one UPDATE."""

    def __init__(self):
        self._cond = threading.Condition()
        self._due: dict[Heartbeat, float] = {}       # heartbeat -> next beat (monotonic s)
        self._wake_at = math.inf                      # when the thread wakes next (monotonic s)
        self._thread: threading.Thread | None = None

    def add(self, beat: Heartbeat) -> None:
        with self._cond:
            due = self._due[beat] = time.monotonic() + beat.interval_s
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._run, name="eas-heartbeat", daemon=True)
                self._thread.start()
            elif due < self._wake_at:       # wake the thread only when it would sleep too long
                self._cond.notify()

    def remove(self, beat: Heartbeat) -> None:
        with self._cond:
            self._due.pop(beat, None)

    def _run(self) -> None:
        while True:
            with self._cond:
                now = time.monotonic()
                due = [b for b, t in self._due.items() if t <= now]
                if not due:
                    self._wake_at = min(self._due.values(), default=math.inf)
                    self._cond.wait(None if self._wake_at == math.inf else self._wake_at - now)
                    self._wake_at = -math.inf
                    continue
                for beat in due:
                    self._due[beat] = now + beat.interval_s
            by_db: dict[int, list[Heartbeat]] = {}
            for beat in due:
                by_db.setdefault(id(beat.db), []).append(beat)
            for beats in by_db.values():
                ids = [b.attempt_id for b in beats]
                try:
                    with beats[0].db.begin() as conn:
                        conn.execute(_BEAT, {"ids": ids, "now": utcnow()})
                except Exception as exc:  # noqa: BLE001 - a missed beat is retried at the next one
                    log.warning("heartbeat of attempts %s failed: %s", ids, exc)


_A = Attempt.__table__
_BEAT = (update(_A).where(_A.c.id.in_(bindparam("ids", expanding=True)), _A.c.state == A_RUNNING)
         .values(heartbeat_at=bindparam("now")))
_BEATS = _Beats()


class ScratchDirs:
    """Scratch folders for attempts, reused between attempts of a process.

    An attempt gets a folder of its own that holds no file when it starts; afterwards its files
    are removed and the folder waits for the next attempt. The wrapper's own layout is kept
    (``inputs/<name>/`` and ``outputs/<name>/``, empty, at most :attr:`KEEP_NAMES` names each);
    anything else the attempt made is removed. Creating and removing folders per attempt costs
    milliseconds on some file systems (ext4 with online discard trims a block on every
    ``rmdir``). At most ``keep`` folders wait; the rest, and any folder that cannot be emptied,
    are removed.
    """

    LAYOUT = ("inputs", "outputs")
    KEEP_NAMES = 32

    def __init__(self, keep: int = 8, prefix: str = "eas-attempt-"):
        self.keep = keep
        self.prefix = prefix
        self._free: list[Path] = []
        self._lock = threading.Lock()
        atexit.register(self.clear)

    @contextlib.contextmanager
    def folder(self) -> Iterator[Path]:
        with self._lock:
            path = self._free.pop() if self._free else None
        if path is None or not path.is_dir():
            path = Path(tempfile.mkdtemp(prefix=self.prefix))
        try:
            yield path
        finally:
            self._give_back(path)

    def _give_back(self, path: Path) -> None:
        try:
            self._empty(path, 0)
        except OSError as exc:
            log.warning("scratch folder %s could not be emptied (%s); removing it", path, exc)
            shutil.rmtree(path, ignore_errors=True)
            return
        with self._lock:
            if len(self._free) < self.keep:
                self._free.append(path)
                return
        shutil.rmtree(path, ignore_errors=True)

    def _empty(self, folder, depth: int) -> None:
        """Remove the files below ``folder``, keeping the layout's folders (depth 0: the
        scratch folder, 1: ``inputs``/``outputs``, 2: one name)."""
        with os.scandir(folder) as it:
            entries = list(it)
        if depth == 1 and len(entries) > self.KEEP_NAMES:
            shutil.rmtree(folder)
            return
        for entry in entries:
            if not entry.is_dir(follow_symlinks=False):
                os.unlink(entry.path)
            elif depth == 1 or (depth == 0 and entry.name in self.LAYOUT):
                self._empty(entry.path, depth + 1)
            else:
                shutil.rmtree(entry.path)

    def clear(self) -> None:
        with self._lock:
            free, self._free = self._free, []
        for path in free:
            shutil.rmtree(path, ignore_errors=True)
