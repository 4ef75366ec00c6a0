"""A control-flow job on the real embedded runtime: broker, eas-control and null functions."""
from __future__ import annotations

import uuid
from collections import Counter

import pytest
from sqlalchemy import select

from eas_runtime import events
from eas_runtime.db import metadata as md
from eas_runtime.db.models import DONE, Attempt, Task, TaskOutput
from eas_runtime.embedded import EmbeddedRuntime
from eas_runtime.resources import Resources
from tests.e2e.helpers import embedded_settings, settled, wait_for
from tests.jobs.conftest import EXAMPLES, load


@pytest.fixture
def runtime(tmp_path):
    started = EmbeddedRuntime(embedded_settings(tmp_path)).start()
    yield started
    started.stop()


def test_the_control_flow_demo_runs_end_to_end(runtime):
    spec = load(EXAMPLES / "control_flow_demo.json")
    events.send(events.make_event(events.JOB_SUBMITTED, events.SOURCE_CLI, spec, id=uuid.uuid4().hex),
                runtime.broker_url, token=runtime.settings.internal_token)
    # 9 rows at submission; per trial a branch (chain + null) and three do-while iterations
    # (chain + step + decision)
    wait_for(settled(runtime.db, expected_tasks=31), timeout_s=300, interval_s=0.5, what="the job to end")
    with runtime.db.read() as s:
        tasks = s.scalars(select(Task).order_by(Task.id)).all()
        keys = sorted(s.scalars(select(TaskOutput.key)))
        decisions = {t.path: md.get_metadata(s, "attempt", s.scalar(select(Attempt.id).where(Attempt.task_id == t.id)))
                     for t in tasks if t.path.endswith(".repeat")}
    assert {t.state for t in tasks} == {DONE} and len(tasks) == 31
    assert Counter(t.task_type for t in tasks) == {"null": 10, "execution_chain": 10, "execution_do_while_loop": 8,
                                                  "execution_conditional": 2, "execution_for_loop": 1}
    assert sorted(t.name for t in tasks if t.task_type == "null") == ["probe"] * 2 + ["step"] * 6 + ["then"] * 2
    assert keys == sorted([f"control_flow_demo/probe_{i}.json" for i in (0, 1)]
                          + [f"control_flow_demo/step_{i}_{r}.json" for i in (0, 1) for r in (1, 2, 3)])
    store = Resources(runtime.settings, db=runtime.db).store
    assert all(store.exists(k) for k in keys)
    assert decisions["task_list[0]@0.task_list[2]@3.repeat"] == {"iteration": 3, "repeat": False}
