"""Jobs on PostgreSQL: task ids reserved from the sequence while other writers insert, and a
do-while loop played through eas-control."""
from __future__ import annotations

import threading

import pytest
from sqlalchemy import func, select

from eas_runtime.control import Control
from eas_runtime.db.models import Task
from eas_runtime.db.session import Database
from eas_runtime.jobs import compile_job, insert_job
from eas_runtime.resources import Resources
from tests.integration.conftest import postgres_server, postgres_url  # noqa: F401 - fixtures
from tests.jobs.conftest import Player

pytestmark = pytest.mark.postgres


@pytest.fixture
def pg_resources(settings, postgres_url, event_log, resources):  # noqa: F811
    db = Database(postgres_url)
    db.create_schema()
    yield Resources(settings, send=event_log, store=resources.store, db=db)
    db.dispose()


def test_concurrent_submissions_get_distinct_task_ids(pg_resources):
    jobs = [{"working_directory": f"w{i}", "task_list": [
        {"task": "execution_for_loop", "parameter": "k", "values": list(range(300)),
         "task_list": [{"task": "null", "outputs": {"x": "'x_{k_index}.json'.format(**metadata)"}}]}]} for i in range(4)]
    compiled = [compile_job(j) for j in jobs]
    barrier, errors = threading.Barrier(len(jobs)), []

    def submit(i):
        barrier.wait()
        try:
            with pg_resources.db.session() as s:
                insert_job(s, compiled[i], source_event=f"job-{i}")
        except Exception as exc:  # noqa: BLE001 - reported below
            errors.append(exc)
    threads = [threading.Thread(target=submit, args=(i,)) for i in range(len(jobs))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    with pg_resources.db.read() as s:
        assert s.scalar(select(func.count()).select_from(Task)) == 4 * 601
        orphans = s.scalar(select(func.count()).select_from(Task).where(
            Task.parent_id.is_not(None), ~Task.parent_id.in_(select(Task.id))))
    assert orphans == 0
    with pg_resources.db.session() as s:                     # the sequence moved past the reserved ids
        s.add(Task(job_id=1, task_type="null"))


def test_a_do_while_loop_on_postgresql(pg_resources, event_log):
    player = Player(pg_resources, Control(pg_resources), event_log)
    player.submit({"task_list": [{"task": "execution_do_while_loop", "iteration_name": "it",
                                  "requires_metadata_from_child": ["s"],
                                  "repeat_criterion": "(metadata['it_index'] < requested_metadata['s']['n'])",
                                  "task_list": [{"task": "null", "name": "s"}]}]})
    assert player.run(lambda task: {"n": 4}) == 4
    assert [t.params["metadata"]["it_index"] for t in player.tasks(name="s")] == [1, 2, 3, 4]
