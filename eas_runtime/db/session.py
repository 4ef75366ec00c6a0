"""Engines and sessions for SQLite (WAL mode) and PostgreSQL.

SQLite: every write transaction starts with ``BEGIN IMMEDIATE`` so that two processes never
both read and then both try to upgrade to a write lock (which fails at once with "database is
locked" instead of waiting); a busy timeout makes writers queue. Readers use a separate engine
with deferred transactions, so the index site never blocks the pipeline. WAL mode with
``synchronous=NORMAL``: a commit survives the crash of any process without an fsync of its own;
a power loss may lose the last commits. Checkpoints run off the commit path
(:mod:`eas_runtime.db.checkpoint`). PostgreSQL runs at READ COMMITTED; the claim is a
conditional UPDATE, which is atomic there too.
"""
from __future__ import annotations

import contextlib
import logging
import threading
from pathlib import Path
from typing import Iterator

from sqlalchemy import MetaData, create_engine, event, text
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.orm import Session, sessionmaker

from eas_runtime.db.checkpoint import AUTOCHECKPOINT_PAGES
from eas_runtime.db.models import Base

log = logging.getLogger(__name__)
MIGRATIONS = Path(__file__).resolve().parent.parent / "migrations"


class DatabaseUnavailable(RuntimeError):
    """The database cannot be reached; the caller should answer 503 so the event is retried."""


def _sqlite_file(url: str) -> str | None:
    path = url.split("///", 1)[1] if "///" in url else ""
    return path if path and path != ":memory:" else None


def _sqlite_engine(url: str, immediate: bool) -> Engine:
    path = _sqlite_file(url)
    if path:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
    engine = create_engine(url, connect_args={"timeout": 60, "check_same_thread": False,
                                              "isolation_level": None})

    @event.listens_for(engine, "connect")
    def _pragmas(dbapi_conn, _record):
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute("PRAGMA synchronous=NORMAL")
        cur.execute("PRAGMA foreign_keys=ON")
        cur.execute("PRAGMA busy_timeout=60000")
        # Checkpoints run off the commit path (eas_runtime.db.checkpoint); this is the bound.
        cur.execute(f"PRAGMA wal_autocheckpoint={AUTOCHECKPOINT_PAGES}")
        cur.close()

    @event.listens_for(engine, "begin")
    def _begin(conn):
        conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")

    return engine


class Database:
    """A pair of engines (writes, reads) on one URL, with context-managed sessions."""

    def __init__(self, url: str):
        self.url = url
        self.is_sqlite = url.startswith("sqlite")
        #: The SQLite database file (``None`` for PostgreSQL or an in-memory database).
        self.sqlite_path = _sqlite_file(url) if self.is_sqlite else None
        if self.is_sqlite:
            self.engine = _sqlite_engine(url, immediate=True)
            self.read_engine = _sqlite_engine(url, immediate=False)
        else:
            self.engine = create_engine(url, pool_pre_ping=True, pool_size=5, max_overflow=10)
            self.read_engine = self.engine
        self._sessions = sessionmaker(self.engine, expire_on_commit=False)
        self._read_sessions = sessionmaker(self.read_engine, expire_on_commit=False)

    @contextlib.contextmanager
    def session(self) -> Iterator[Session]:
        """A write transaction: committed on success, rolled back on error."""
        with _unavailable_on_connection_errors(self.url):
            with self._sessions() as s, s.begin():
                yield s

    @contextlib.contextmanager
    def read(self) -> Iterator[Session]:
        with _unavailable_on_connection_errors(self.url):
            with self._read_sessions() as s:
                yield s

    @contextlib.contextmanager
    def begin(self) -> Iterator[Connection]:
        """A write transaction on a Core connection (no ORM unit of work): for hot paths that
        run prebuilt statements. Committed on success, rolled back on error."""
        with _unavailable_on_connection_errors(self.url):
            with self.engine.begin() as conn:
                yield conn

    @contextlib.contextmanager
    def connect(self) -> Iterator[Connection]:
        """A read-only Core connection (a deferred transaction on SQLite)."""
        with _unavailable_on_connection_errors(self.url):
            with self.read_engine.connect() as conn:
                yield conn

    def ping(self) -> None:
        with _unavailable_on_connection_errors(self.url):
            with self.read_engine.connect() as conn:
                conn.execute(text("SELECT 1"))

    def create_schema(self) -> None:
        """Bring the schema to the newest Alembic revision (creating it when empty)."""
        upgrade(self)

    def dispose(self) -> None:
        self.engine.dispose()
        if self.read_engine is not self.engine:
            self.read_engine.dispose()


@contextlib.contextmanager
def _unavailable_on_connection_errors(url: str):
    try:
        yield
    except OperationalError as exc:
        if _is_connection_problem(exc):
            raise DatabaseUnavailable(f"database {_redact(url)} unavailable: {exc.orig}") from exc
        raise
    except DBAPIError as exc:
        if exc.connection_invalidated:
            raise DatabaseUnavailable(f"database {_redact(url)} connection lost: {exc.orig}") from exc
        raise


def _is_connection_problem(exc: OperationalError) -> bool:
    """A failure that a later try can get past: the server is unreachable, or (PostgreSQL)
    the transaction lost a deadlock or a serialisation conflict and was rolled back."""
    message = str(exc.orig).lower()
    return any(s in message for s in (
        "could not connect", "connection refused", "server closed", "terminating connection",
        "unable to open database", "connection to server", "no such host", "timeout expired",
        "database is locked", "disk i/o error", "the database system is", "deadlock detected",
        "could not serialize access"))


def _redact(url: str) -> str:
    if "@" in url and "://" in url:
        scheme, rest = url.split("://", 1)
        return f"{scheme}://***@{rest.split('@', 1)[1]}"
    return url


_upgrade_lock = threading.Lock()


def upgrade(db: Database, revision: str = "head") -> None:
    from alembic import command
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.attributes["connection_engine"] = db.engine
    with _upgrade_lock:
        command.upgrade(cfg, revision)


_databases: dict[str, Database] = {}
_databases_lock = threading.Lock()


def database(url: str) -> Database:
    """One shared :class:`Database` per URL in this process."""
    with _databases_lock:
        db = _databases.get(url)
        if db is None:
            db = _databases[url] = Database(url)
        return db


def metadata() -> MetaData:
    return Base.metadata
