"""Two control instances racing for the same ready tasks on a real PostgreSQL server."""
from __future__ import annotations

import threading

import pytest
from sqlalchemy import func, select

from eas_runtime import events
from eas_runtime.control import Control, scheduler
from eas_runtime.db.models import Attempt, Job, Task
from eas_runtime.db.session import Database
from eas_runtime.resources import Resources
from eas_runtime.store.local import LocalStore

pytestmark = pytest.mark.postgres


def _instances(settings, url, event_log, n=2):
    out = []
    for _ in range(n):
        db = Database(url)
        out.append(Resources(settings, send=event_log, db=db,
                             store=LocalStore(settings.store_path, notify=None)))
    out[0].db.create_schema()
    return out


def test_concurrent_claims_have_exactly_one_winner(settings, postgres_url, event_log):
    a, b = _instances(settings, postgres_url, event_log)
    with a.db.session() as s:
        job = Job(name="race")
        s.add(job)
        s.flush()
        s.add_all([Task(job_id=job.id, task_type="null", name=f"t{i}") for i in range(40)])
    with a.db.read() as s:
        task_ids = list(s.scalars(select(Task.id).order_by(Task.id)))
    wins = {"a": 0, "b": 0}
    for task_id in task_ids:
        barrier = threading.Barrier(2)
        results = {}

        def race(name, res):
            barrier.wait()
            results[name] = scheduler.claim(res.db, task_id)

        threads = [threading.Thread(target=race, args=("a", a)), threading.Thread(target=race, args=("b", b))]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        winners = [n for n, r in results.items() if r is not None]
        assert len(winners) == 1, f"task {task_id}: winners {winners}"
        wins[winners[0]] += 1
    with a.db.read() as s:
        assert s.scalar(select(func.count()).select_from(Attempt)) == len(task_ids)
        assert set(s.scalars(select(Attempt.number))) == {1}
    for r in (a, b):
        r.db.dispose()


def test_two_controls_handling_the_same_submission_send_one_task_ready(settings, postgres_url, event_log):
    a, b = _instances(settings, postgres_url, event_log)
    job = {"job_name": "once", "task_list": [{"task": "null", "name": f"n{i}"} for i in range(10)]}
    event = events.make_event(events.JOB_SUBMITTED, "/test", job, id="same-submission")
    barrier = threading.Barrier(2)
    errors = []

    def handle(res):
        barrier.wait()
        try:
            Control(res).handle(event)
        except Exception as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=handle, args=(r,)) for r in (a, b)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    ready = event_log.of_type("task.ready")
    assert len(ready) == 10
    assert len({e["taskid"] for e in ready}) == 10
    with a.db.read() as s:
        assert s.scalar(select(func.count()).select_from(Job)) == 1
    for r in (a, b):
        r.db.dispose()
