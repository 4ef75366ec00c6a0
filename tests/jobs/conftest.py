"""Fixtures for job tests: eas-control in process, and a player that does the functions' part."""
from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import pytest
from sqlalchemy import func, select, update

from eas_runtime import events
from eas_runtime.control import Control
from eas_runtime.db import metadata as md
from eas_runtime.db.models import (
    A_FINISHED,
    DONE,
    FAILED,
    Attempt,
    ProductVersion,
    Task,
    TaskOutput,
)
from eas_runtime.db.products import ensure_product
from eas_runtime.settings import PROJECT_ROOT

EXAMPLES = PROJECT_ROOT / "examples" / "jobs"


def load(path: Path) -> dict:
    return json.loads(Path(path).read_text())


@pytest.fixture
def prototype_jobs(shared_dir) -> dict[str, dict]:
    files = sorted((shared_dir / "prototype" / "jobs").glob("*/*.json"))
    assert files, "no prototype job files found"
    return {f"{f.parent.name}/{f.name}": load(f) for f in files}


@pytest.fixture
def control(resources) -> Control:
    return Control(resources)


class Player:
    """Plays every function: finishes each task.ready attempt, with QC-passed versions of its
    declared outputs and the result metadata ``results(task)`` gives, and tells eas-control."""

    def __init__(self, resources, control: Control, event_log):
        self.res, self.control, self.log = resources, control, event_log
        self.seen = 0
        self.finished: list[int] = []

    def submit(self, spec: dict, id: str = "job-1") -> dict:
        return self.control.handle(events.make_event(events.JOB_SUBMITTED, "/test", spec, id=id))

    def finish(self, task_id: int, attempt_id: int, metadata: dict | None = None, *, ok: bool = True) -> None:
        with self.res.db.session() as s:
            for key in s.scalars(select(TaskOutput.key).where(TaskOutput.task_id == task_id)):
                s.add(ProductVersion(product_id=ensure_product(s, key, generator_task_id=task_id).id,
                                     attempt_id=attempt_id, passed_qc=ok))
            md.set_metadata(s, "attempt", attempt_id, metadata or {})
            s.execute(update(Attempt).where(Attempt.id == attempt_id)
                      .values(state=A_FINISHED, error=not ok, error_kind="" if ok else "science"))
            s.execute(update(Task).where(Task.id == task_id).values(state=DONE if ok else FAILED))
        kind = events.TASK_FINISHED if ok else events.TASK_FAILED
        self.control.handle(events.make_event(kind, "/test", {"error_kind": "" if ok else "science"},
                                              id=f"end-{attempt_id}", taskid=task_id))
        self.finished.append(task_id)

    def run(self, results: Callable[[Task], dict] = lambda task: {}, limit: int = 10_000) -> int:
        """Finish every task sent to a function until none is left; return how many ran."""
        ran = 0
        while self.seen < len(self.log.events):
            event = self.log.events[self.seen]
            self.seen += 1
            if event["type"] != events.TASK_READY:
                continue
            with self.res.db.read() as s:
                task = s.get(Task, int(event["taskid"]))
            self.finish(task.id, int(event["attemptid"]), results(task))
            ran += 1
            assert ran <= limit, "the job does not end"
        return ran

    def counts(self) -> Counter:
        with self.res.db.read() as s:
            return Counter(dict(s.execute(select(Task.task_type, func.count()).group_by(Task.task_type)).all()))

    def tasks(self, **where) -> list[Task]:
        with self.res.db.read() as s:
            q = select(Task).order_by(Task.id)
            for k, v in where.items():
                q = q.where(getattr(Task, k) == v)
            return list(s.scalars(q))


@pytest.fixture
def player(resources, control, event_log) -> Player:
    return Player(resources, control, event_log)
