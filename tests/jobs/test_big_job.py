"""A job of more than 20,000 tasks submits and schedules (timings: benchmarks/jobs.py)."""
from __future__ import annotations

from collections import Counter

from sqlalchemy import func, select

from eas_runtime import events
from eas_runtime.db.models import QUEUED, WAITING, Task

BIG = {"job_name": "big", "working_directory": "big", "task_list": [
    {"task": "execution_for_loop", "parameter": "group", "values": list(range(20)), "task_list": [
        {"task": "null", "name": "source", "outputs": {"receipt": "'source_{group_index}.json'.format(**metadata)"}},
        {"task": "execution_for_loop", "parameter": "member", "linear_range": [0, 1, 1000], "task_list": [
            {"task": "null", "inputs": {"receipt": "'source_{group_index}.json'.format(**metadata)"},
             "outputs": {"r": "'r_{group_index}_{member_index}.json'.format(**metadata)"}}]}]}]}


def test_a_job_of_20000_tasks_submits_and_schedules(resources, control, player, event_log):
    summary = control.handle(events.make_event(events.JOB_SUBMITTED, "/t", BIG, id="big"))
    assert summary["tasks"] == 20_020 and summary["claimed"] == 20          # the sources are ready
    with resources.db.read() as s:
        by_type = Counter(dict(s.execute(select(Task.task_type, func.count()).group_by(Task.task_type)).all()))
        states = Counter(dict(s.execute(select(Task.state, func.count()).where(Task.task_type == "null")
                                        .group_by(Task.state)).all()))
    assert by_type == {"null": 20_020, "execution_chain": 20_020, "execution_for_loop": 21}
    assert states == {QUEUED: 20, WAITING: 20_000}
    ready = event_log.of_type("task.ready")
    first = ready[0]
    player.seen = len(event_log.events)
    player.finish(int(first["taskid"]), int(first["attemptid"]))           # one source done: its 1,000 run
    released = event_log.of_type("task.ready")[20:]
    assert len(released) == 1000 and {e["tasktype"] for e in released} == {"null"}
    assert control.handle(events.make_event(events.JOB_SUBMITTED, "/t", BIG, id="big"))["created"] is False
