"""Backup and restore of the SQLite task database (PostgreSQL: tests/integration)."""
from __future__ import annotations

import sqlite3
import threading

import pytest
from sqlalchemy import func, select

from eas_runtime import diagnostics as diag
from eas_runtime.db.models import Base, Job, Task
from eas_runtime.db.session import Database


def _contents(db) -> dict:
    """Every row of every pipeline table, comparable across databases."""
    out = {}
    with db.read_engine.connect() as conn:
        for name, table in sorted(Base.metadata.tables.items()):
            out[name] = sorted(tuple(map(repr, row)) for row in conn.execute(select(table)))
    return out


def _fill(rows):
    job = rows.job("grid")
    task = rows.task(job, "verify", state="failed", metadata={"size": 1.5, "tda": "tls"})
    rows.attempt(task, error_kind="science", error_text="Traceback ...", logs=[("INFO", "hello")])
    rows.dead_letter("no sink")
    rows.delivery(tries=2)


def test_round_trip(db, rows, tmp_path):
    _fill(rows)
    out = diag.backup(db, tmp_path / "eas.backup")
    assert out["format"] == "sqlite" and out["bytes"] > 0
    assert not list(tmp_path.glob(".*partial"))
    fresh = Database(f"sqlite:///{tmp_path / 'restored' / 'eas.db'}")
    try:
        result = diag.restore(fresh, tmp_path / "eas.backup")
        assert _contents(fresh) == _contents(db)
        assert result["rows"]["tasks"] == 1 and result["replaced_rows"] == 0
        assert diag.errors(fresh)["items"][0]["error"] == "Traceback ..."
    finally:
        fresh.dispose()


def test_the_backup_is_one_self_contained_file(db, rows, tmp_path):
    _fill(rows)
    path = tmp_path / "copy.db"
    diag.backup(db, path)
    conn = sqlite3.connect(path)
    try:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "delete"
        assert conn.execute("SELECT count(*) FROM tasks").fetchone()[0] == 1
    finally:
        conn.close()


def test_restore_refuses_a_database_with_data_unless_forced(db, rows, tmp_path):
    _fill(rows)
    diag.backup(db, tmp_path / "b.db")
    rows.job("added after the backup")
    with pytest.raises(diag.BackupError, match="not empty.*2 jobs.*--force"):
        diag.restore(db, tmp_path / "b.db")
    out = diag.restore(db, tmp_path / "b.db", force=True)
    assert out["replaced_rows"] > 0
    with db.read() as s:
        assert s.scalars(select(Job.name)).all() == ["grid"]


def test_restore_over_an_empty_schema_needs_no_force(db, rows, tmp_path):
    _fill(rows)
    diag.backup(db, tmp_path / "b.db")
    empty = Database(f"sqlite:///{tmp_path / 'empty.db'}")
    try:
        empty.create_schema()
        assert diag.is_empty(empty)
        diag.restore(empty, tmp_path / "b.db")
        assert not diag.is_empty(empty)
    finally:
        empty.dispose()


def test_restore_rejects_files_that_are_not_backups(db, tmp_path):
    junk = tmp_path / "junk.bin"
    junk.write_bytes(b"hello world, not a database")
    with pytest.raises(diag.BackupError, match="not a SQLite backup"):
        diag.restore(db, junk)
    dump = tmp_path / "pg.dump"
    dump.write_bytes(b"PGDMP\x01\x0e\x00" + b"\x00" * 64)
    with pytest.raises(diag.BackupError, match="pg_dump archive: restore it into PostgreSQL"):
        diag.restore(db, dump)
    other = tmp_path / "other.db"
    conn = sqlite3.connect(other)
    conn.execute("CREATE TABLE t (x)")
    conn.commit()
    conn.close()
    with pytest.raises(diag.BackupError, match="not a backup of the task database"):
        diag.restore(db, other)
    with pytest.raises(diag.BackupError, match="no backup file"):
        diag.restore(db, tmp_path / "missing.db")
    with pytest.raises(diag.BackupError, match="does not exist"):
        diag.backup(db, tmp_path / "no" / "such" / "dir" / "b.db")


def test_backup_while_the_pipeline_writes_is_consistent(db, tmp_path):
    """Each write transaction adds a job and its 3 tasks: any consistent copy has 3 tasks per
    job, whatever moment it was taken."""
    stop = threading.Event()
    written = []

    def writer():
        while not stop.is_set():
            with db.session() as s:
                job = Job(name="j")
                s.add(job)
                s.flush()
                s.add_all([Task(job_id=job.id, task_type="t") for _ in range(3)])
            written.append(1)

    thread = threading.Thread(target=writer)
    thread.start()
    try:
        copies = []
        while len(copies) < 5:
            if len(written) > 5 * (len(copies) + 1):
                path = tmp_path / f"copy{len(copies)}.db"
                diag.backup(db, path)
                copies.append(path)
    finally:
        stop.set()
        thread.join(30)
    for path in copies:
        copy = Database(f"sqlite:///{path}")
        try:
            with copy.read() as s:
                jobs = s.scalar(select(func.count()).select_from(Job))
                tasks = s.scalar(select(func.count()).select_from(Task))
        finally:
            copy.dispose()
        assert jobs > 0 and tasks == 3 * jobs
