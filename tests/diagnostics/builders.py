"""Rows inserted directly into the task database, for diagnostics tests."""
from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import update

from eas_runtime.db import metadata as md
from eas_runtime.db.models import (A_FINISHED, A_QUEUED, A_RUNNING, Attempt, DeadLetter, Delivery,
                                   Job, LogMessage, Task, utcnow)


class Rows:
    """Builds jobs, tasks, attempts, logs, deliveries and dead letters; returns their ids."""

    def __init__(self, db, now: dt.datetime | None = None):
        self.db = db
        self.now = now or utcnow()

    def ago(self, seconds: float) -> dt.datetime:
        return self.now - dt.timedelta(seconds=seconds)

    def job(self, name: str = "job", cancelled: bool = False) -> int:
        with self.db.session() as s:
            job = Job(name=name, working_directory=name, cancelled=cancelled)
            s.add(job)
            s.flush()
            return job.id

    def task(self, job_id: int, task_type: str = "null", *, parent: int | None = None, name: str = "",
             path: str = "", state: str = "waiting", params: dict | None = None,
             metadata: dict[str, Any] | None = None, retry_at: dt.datetime | None = None) -> int:
        with self.db.session() as s:
            task = Task(job_id=job_id, parent_id=parent, task_type=task_type, name=name, path=path,
                        state=state, params=params or {}, retry_at=retry_at)
            s.add(task)
            s.flush()
            md.set_metadata(s, "task", task.id, {"path": path, "job_name": "job", **(metadata or {})})
            return task.id

    def attempt(self, task_id: int, *, state: str = A_FINISHED, error_kind: str = "", error_text: str = "",
                host: str = "node-1", pid: int | None = 4242, heartbeat_age_s: float | None = None,
                ended_age_s: float | None = None, wall_s: float | None = None, cpu_s: float | None = None,
                cpu_children_s: float | None = None, metadata: dict[str, Any] | None = None,
                logs: list[tuple[str, str]] = ()) -> int:
        """The task's next attempt (``attempt_count`` follows)."""
        with self.db.session() as s:
            task = s.get(Task, task_id)
            number = task.attempt_count + 1
            task.attempt_count = number
            started = None if state == A_QUEUED else self.ago(600)
            beat = self.ago(heartbeat_age_s) if heartbeat_age_s is not None else started
            ended = None if state in (A_QUEUED, A_RUNNING) else \
                self.ago(ended_age_s if ended_age_s is not None else 10)
            a = Attempt(task_id=task_id, number=number, state=state, queued_at=self.ago(700),
                        sent_at=self.ago(700), started_at=started, heartbeat_at=beat, ended_at=ended,
                        host=host if started else "", pid=pid if started else None,
                        error=bool(error_kind), error_kind=error_kind, error_text=error_text,
                        wall_s=wall_s, cpu_s=cpu_s, cpu_children_s=cpu_children_s)
            s.add(a)
            s.flush()
            md.set_metadata(s, "attempt", a.id, metadata or {})
            for i, (severity, text) in enumerate(logs):
                s.add(LogMessage(attempt_id=a.id, severity=severity, text=text,
                                 time=self.ago(500 - i)))
            return a.id

    def set_state(self, task_id: int, state: str, **values) -> None:
        with self.db.session() as s:
            s.execute(update(Task).where(Task.id == task_id).values(state=state, **values))

    def delivery(self, trigger: str = "eas-verify", *, state: str = "pending", tries: int = 0,
                 due_in_s: float = 0.0, last_error: str = "", event_type: str = "org.plato.eas.task.ready") -> int:
        with self.db.session() as s:
            d = Delivery(event_key=f"/src {trigger}-{tries}", event_type=event_type, trigger=trigger,
                         payload="{}", state=state, tries=tries,
                         due_at=self.now + dt.timedelta(seconds=due_in_s), last_error=last_error)
            s.add(d)
            s.flush()
            return d.id

    def dead_letter(self, reason: str, *, component: str = "broker", age_s: float = 60.0,
                    event_type: str = "org.plato.eas.task.ready", payload: str = '{"x": 1}') -> int:
        with self.db.session() as s:
            d = DeadLetter(component=component, reason=reason, event_id=f"ev-{reason[:10]}",
                           event_type=event_type, payload=payload, time=self.ago(age_s))
            s.add(d)
            s.flush()
            return d.id
