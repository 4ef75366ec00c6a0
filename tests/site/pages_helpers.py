"""Rows for the site's page tests, written through the ORM into the test's SQLite database."""
from __future__ import annotations

import datetime as dt

from eas_runtime.db.models import Attempt, Job, LogMessage, MetadataItem, Task, utcnow


def ago(seconds: float) -> dt.datetime:
    """That many seconds before now (UTC)."""
    return utcnow() - dt.timedelta(seconds=seconds)


class Rows:
    """``Rows(db).job(...)``, ``.task(...)``, ``.attempt(...)``: each commits and returns the id."""

    def __init__(self, db):
        self.db = db

    def _add(self, obj) -> int:
        with self.db.session() as s:
            s.add(obj)
            s.flush()
            return obj.id

    def job(self, name: str = "job", **kw) -> int:
        return self._add(Job(name=name, **kw))

    def task(self, job_id: int, task_type: str = "null", *, parent: int | None = None,
             state: str = "done", name: str = "", path: str = "", params=None,
             metadata: dict | None = None, attempts: int = 0, **kw) -> int:
        task_id = self._add(Task(job_id=job_id, task_type=task_type, parent_id=parent, state=state,
                                 name=name, path=path, params=params or {},
                                 attempt_count=attempts, **kw))
        self.metadata("task", task_id, metadata or {})
        return task_id

    def attempt(self, task_id: int, number: int = 1, *, started: dt.datetime | None = None,
                ended: dt.datetime | None = None, error_kind: str = "", error_text: str = "",
                host: str = "node-a", pid: int | None = 100, state: str = "finished",
                results: dict | None = None, units: dict | None = None, **kw) -> int:
        started = started or ago(60)
        kw.setdefault("heartbeat_at", ended or started)
        attempt_id = self._add(Attempt(
            task_id=task_id, number=number, state=state, queued_at=started, sent_at=started,
            started_at=started, ended_at=ended, host=host, pid=pid,
            error=bool(error_kind), error_kind=error_kind, error_text=error_text, **kw))
        with self.db.session() as s:
            task = s.get(Task, task_id)
            task.attempt_count = max(task.attempt_count, number)
        self.metadata("attempt", attempt_id, results or {}, units)
        return attempt_id

    def metadata(self, kind: str, owner: int, items: dict, units: dict | None = None) -> None:
        """Metadata items of an owner, with the units a function would record (``units``)."""
        if items:
            with self.db.session() as s:
                s.add_all(MetadataItem(owner_kind=kind, owner_id=owner, key=k, value=v,
                                       unit=(units or {}).get(k, ""))
                          for k, v in items.items())

    def log(self, attempt_id: int, lines: list[tuple[str, str]], start: dt.datetime | None = None) -> None:
        start = start or ago(50)
        with self.db.session() as s:
            s.add_all(LogMessage(attempt_id=attempt_id, severity=sev, text=text,
                                 time=start + dt.timedelta(milliseconds=i))
                      for i, (sev, text) in enumerate(lines))
