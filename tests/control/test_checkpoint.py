"""WAL checkpoints off the commit path (eas_runtime.db.checkpoint) on a real SQLite file."""
from __future__ import annotations

import os
import time

from sqlalchemy import text

from eas_runtime.db.checkpoint import AUTOCHECKPOINT_PAGES, Checkpointer
from eas_runtime.db.models import DeadLetter


def _grow_wal(db, rows: int = 400) -> None:
    for i in range(rows):
        with db.session() as s:
            s.add(DeadLetter(component="test", reason="x" * 2000, payload=str(i)))


def test_connections_leave_checkpoints_to_the_checkpointer(resources):
    db = resources.db
    with db.read() as s:
        assert s.execute(text("PRAGMA wal_autocheckpoint")).scalar() == AUTOCHECKPOINT_PAGES
    _grow_wal(db)
    wal = db.sqlite_path + "-wal"
    assert os.path.getsize(wal) > 1024 * 1024          # grew past SQLite's default bound


def test_checkpointer_checkpoints_a_grown_wal(resources):
    db = resources.db
    _grow_wal(db)
    checkpointer = Checkpointer(db, interval_s=0.05, threshold_bytes=512 * 1024).start()
    try:
        deadline = time.monotonic() + 20
        while checkpointer.checkpoints == 0:
            assert time.monotonic() < deadline, "no checkpoint"
            time.sleep(0.05)
    finally:
        checkpointer.stop()
    busy, wal_pages, done = Checkpointer(db).checkpoint()
    assert busy == 0 and done == wal_pages              # everything was copied back
    with db.read() as s:
        assert s.execute(text("SELECT count(*) FROM dead_letters")).scalar() == 400
