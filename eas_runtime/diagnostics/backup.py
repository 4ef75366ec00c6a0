"""Backup and restore of the task database.

SQLite: the ``sqlite3`` online backup API, copied in one step from a read transaction, so the
copy is consistent while the pipeline keeps writing (WAL: readers never block writers). The copy
is written to a temporary name and renamed, and it is a single self-contained file (rollback
journal mode, nothing left in a ``-wal`` file).

PostgreSQL: ``pg_dump --format=custom`` and ``pg_restore`` (the newest Debian install under
``/usr/lib/postgresql/*/bin``, else ``PATH``); ``pg_dump`` takes a consistent snapshot too. The
password, if the URL has one, is passed in ``PGPASSWORD``, never on the command line.

Restoring refuses a database that holds any row in the pipeline's tables unless ``force``; the
restored database is then brought to the newest schema revision.
"""
from __future__ import annotations

import os
import shutil
import sqlite3
import subprocess
from pathlib import Path

from sqlalchemy import func, inspect, select, table
from sqlalchemy.engine import make_url

from eas_runtime.db.models import Base
from eas_runtime.db.session import Database

SQLITE_MAGIC = b"SQLite format 3\x00"
PGDUMP_MAGIC = b"PGDMP"


class BackupError(RuntimeError):
    """A backup or restore could not be made (the message says why and what to do)."""


def database_rows(db: Database) -> dict[str, int]:
    """Rows in each pipeline table that exists (none: an empty or new database)."""
    if db.is_sqlite and not _sqlite_path(db.url).exists():
        return {}
    with db.read_engine.connect() as conn:
        present = set(inspect(conn).get_table_names())
        return {name: conn.execute(select(func.count()).select_from(table(name))).scalar_one()
                for name in sorted(Base.metadata.tables) if name in present}


def is_empty(db: Database) -> bool:
    return not any(database_rows(db).values())


def backup(db: Database, path: str | os.PathLike) -> dict:
    """Write a consistent copy of the database to ``path``; return what was written."""
    target = Path(path)
    if target.parent and not target.parent.is_dir():
        raise BackupError(f"cannot write {target}: folder {target.parent} does not exist")
    tmp = target.with_name(f".{target.name}.partial")
    tmp.unlink(missing_ok=True)
    try:
        if db.is_sqlite:
            _sqlite_backup(_sqlite_path(db.url), tmp)
            kind = "sqlite"
        else:
            _run(_pg_tool("pg_dump"), ["--format=custom", "--no-owner", "--no-privileges",
                                       f"--file={tmp}"], db.url)
            kind = "pg_dump-custom"
        os.replace(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)
    return {"file": str(target), "format": kind, "bytes": target.stat().st_size}


def restore(db: Database, path: str | os.PathLike, *, force: bool = False) -> dict:
    """Replace the database's contents with the backup at ``path``.

    Refuses (BackupError) when the database holds data, unless ``force``; when the backup is
    of the other kind of database; or when it is not a backup of this pipeline.
    """
    source = Path(path)
    if not source.is_file():
        raise BackupError(f"no backup file {source}")
    with source.open("rb") as f:
        head = f.read(16)
    rows = database_rows(db)
    if any(rows.values()) and not force:
        busy = ", ".join(f"{n} {name}" for name, n in rows.items() if n)
        raise BackupError(f"the database is not empty ({busy}); restoring would replace its data: "
                          "pass --force to do it anyway")
    if db.is_sqlite:
        if not head.startswith(SQLITE_MAGIC):
            raise BackupError(f"{source} is not a SQLite backup"
                              + (" (it is a pg_dump archive: restore it into PostgreSQL)"
                                 if head.startswith(PGDUMP_MAGIC) else ""))
        _check_sqlite_backup(source)
        db.dispose()
        _sqlite_restore(source, _sqlite_path(db.url))
        db.dispose()
    else:
        if not head.startswith(PGDUMP_MAGIC):
            raise BackupError(f"{source} is not a pg_dump custom-format archive"
                              + (" (it is a SQLite backup: restore it into SQLite)"
                                 if head.startswith(SQLITE_MAGIC) else ""))
        db.dispose()
        _run(_pg_tool("pg_restore"), ["--clean", "--if-exists", "--no-owner", "--no-privileges",
                                      "--single-transaction", "--exit-on-error", str(source)], db.url)
        db.dispose()
    db.create_schema()          # a backup of an older revision is brought up to date
    return {"file": str(source), "replaced_rows": sum(rows.values()), "rows": database_rows(db)}


# ---------------------------------------------------------------------- SQLite
def _sqlite_path(url: str) -> Path:
    u = make_url(url)
    if not u.database or u.database == ":memory:":
        raise BackupError(f"{url}: an in-memory database cannot be backed up or restored")
    return Path(u.database)


def _sqlite_backup(source: Path, target: Path) -> None:
    if not source.exists():
        raise BackupError(f"no database at {source}")
    src = sqlite3.connect(source, timeout=60)   # read-write open: works whatever the WAL files' state
    dst = sqlite3.connect(target)
    try:
        src.backup(dst)                        # one step: one consistent read snapshot
        dst.execute("PRAGMA journal_mode=DELETE")
        dst.commit()
    finally:
        dst.close()
        src.close()


def _check_sqlite_backup(source: Path) -> None:
    conn = sqlite3.connect(f"file:{source}?mode=ro", uri=True)
    try:
        names = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        integrity = conn.execute("PRAGMA quick_check").fetchone()[0]
    except sqlite3.DatabaseError as exc:
        raise BackupError(f"{source} cannot be read as a SQLite database: {exc}") from None
    finally:
        conn.close()
    if not {"tasks", "alembic_version"} <= names:
        raise BackupError(f"{source} is a SQLite database but not a backup of the task database "
                          f"(tables: {', '.join(sorted(names)) or 'none'})")
    if integrity != "ok":
        raise BackupError(f"{source} fails SQLite's integrity check: {integrity}")


def _sqlite_restore(source: Path, target: Path) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    src = sqlite3.connect(f"file:{source}?mode=ro", uri=True)
    dst = sqlite3.connect(target, timeout=60)
    try:
        dst.execute("PRAGMA busy_timeout=60000")
        src.backup(dst)                        # page by page into the live file, under its lock
        dst.execute("PRAGMA journal_mode=WAL")
        dst.commit()
    finally:
        dst.close()
        src.close()


# ---------------------------------------------------------------------- PostgreSQL
def _pg_tool(name: str) -> str:
    def version(p: Path) -> int:
        v = p.parent.parent.name
        return int(v) if v.isdigit() else 0
    found = sorted(Path("/usr/lib/postgresql").glob(f"*/bin/{name}"), key=version)
    if found:
        return str(found[-1])
    on_path = shutil.which(name)
    if on_path:
        return on_path
    raise BackupError(f"{name} not found: install the PostgreSQL client (Debian: apt-get install "
                      "postgresql-client) or put it on PATH")


def _run(tool: str, args: list[str], url: str) -> None:
    u = make_url(url)
    conn = [f"--dbname={u.database}"]
    if u.host:
        conn.append(f"--host={u.host}")
    if u.port:
        conn.append(f"--port={u.port}")
    if u.username:
        conn.append(f"--username={u.username}")
    env = dict(os.environ, PGCONNECT_TIMEOUT="30")
    if u.password is not None:
        env["PGPASSWORD"] = str(u.password)
    sslmode = u.query.get("sslmode")
    if sslmode:
        env["PGSSLMODE"] = str(sslmode)
    result = subprocess.run([tool, "--no-password", *conn, *args], capture_output=True, text=True,
                            env=env, stdin=subprocess.DEVNULL)
    if result.returncode != 0:
        raise BackupError(f"{Path(tool).name} failed (exit {result.returncode}): "
                          f"{(result.stderr or result.stdout).strip()[-2000:]}")
