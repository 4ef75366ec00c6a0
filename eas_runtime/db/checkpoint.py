"""WAL checkpoints of the SQLite task database, off the pipeline's path.

In WAL mode with ``synchronous=NORMAL`` a commit appends to the ``-wal`` file and does not
fsync; the fsync happens when a checkpoint copies the WAL back into the database. SQLite runs
that checkpoint inside whichever commit pushes the WAL past ``wal_autocheckpoint`` pages, so one
event in a few hundred waited for it (5-30 ms on a virtual disk). Durability is unchanged by
moving it: a committed transaction is in the WAL, which survives a crash of any process (a
power loss can lose the last transactions in both cases, as ``synchronous=NORMAL`` states).

:class:`Checkpointer` is a thread of the embedded runtime that checkpoints (``PASSIVE``: never
blocks a reader or a writer) once the WAL has grown past ``threshold_bytes``; connections keep a
much larger ``wal_autocheckpoint`` (:data:`AUTOCHECKPOINT_PAGES`) as the bound when no runtime
runs.
"""
from __future__ import annotations

import logging
import os
import threading

log = logging.getLogger(__name__)

#: ``PRAGMA wal_autocheckpoint`` of every connection [pages of 4 KiB]: 64 MiB.
AUTOCHECKPOINT_PAGES = 16384
#: WAL size from which the checkpointer runs [bytes].
THRESHOLD_BYTES = 4 * 1024 * 1024


class Checkpointer:
    """Checkpoints ``db`` (a SQLite :class:`~eas_runtime.db.session.Database`) when its WAL
    grew past ``threshold_bytes``, looking every ``interval_s`` seconds (a stat of the file)."""

    def __init__(self, db, interval_s: float = 1.0, threshold_bytes: int = THRESHOLD_BYTES):
        self.db = db
        self.interval_s = interval_s
        self.threshold_bytes = threshold_bytes
        self.checkpoints = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def wal_path(self) -> str:
        return self.db.sqlite_path + "-wal"

    def start(self) -> "Checkpointer":
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="eas-wal-checkpoint", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=30)

    def _run(self) -> None:
        while not self._stop.wait(self.interval_s):
            try:
                if os.path.getsize(self.wal_path) >= self.threshold_bytes:
                    self.checkpoint()
            except FileNotFoundError:
                pass
            except Exception as exc:  # noqa: BLE001 - the next look tries again
                log.warning("WAL checkpoint of %s failed: %s", self.db.sqlite_path, exc)

    def checkpoint(self) -> tuple[int, int, int]:
        """``PRAGMA wal_checkpoint(PASSIVE)``: (busy, WAL pages, pages checkpointed)."""
        raw = self.db.engine.raw_connection()
        try:
            result = tuple(raw.driver_connection.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone())
        finally:
            raw.close()
        self.checkpoints += 1
        log.debug("WAL checkpoint of %s: %s", self.db.sqlite_path, result)
        return result
