"""Display states: derived from stored states, attempts and heartbeats; one definition for
every view."""
from __future__ import annotations

import datetime as dt

from sqlalchemy import select

from eas_runtime import diagnostics as diag
from eas_runtime.db.models import A_FINISHED, A_QUEUED, A_RUNNING, Task, utcnow

STALL_S = 300.0


def _state(db, task_id, **kw):
    with db.read() as s:
        return s.scalar(select(diag.display_state(Task, stall_s=kw.pop("stall_s", STALL_S), **kw))
                        .where(Task.id == task_id))


def test_stored_states_show_as_themselves(db, rows):
    job = rows.job()
    for state in ("waiting", "queued", "done", "failed", "cancelled"):
        task = rows.task(job, state=state)
        if state != "waiting":
            rows.attempt(task, state=A_QUEUED if state == "queued" else A_FINISHED,
                         error_kind="science" if state == "failed" else "")
        assert _state(db, task) == state


def test_running_with_a_fresh_heartbeat_is_running(db, rows):
    task = rows.task(rows.job(), state="running")
    rows.attempt(task, state=A_RUNNING, heartbeat_age_s=STALL_S - 30)
    assert _state(db, task) == "running"


def test_running_with_an_old_heartbeat_is_stalled(db, rows):
    task = rows.task(rows.job(), state="running")
    rows.attempt(task, state=A_RUNNING, heartbeat_age_s=STALL_S + 30)
    assert _state(db, task) == "stalled"
    # judged against the limit and the time given
    assert _state(db, task, stall_s=STALL_S + 60) == "running"
    assert _state(db, task, now=utcnow() - dt.timedelta(seconds=60)) == "running"


def test_waiting_for_the_retry_of_a_lost_attempt_is_stalled(db, rows):
    task = rows.task(rows.job(), state="waiting", retry_at=utcnow() + dt.timedelta(seconds=60))
    rows.attempt(task, error_kind="infrastructure", error_text="stalled: no heartbeat")
    assert _state(db, task) == "stalled"


def test_waiting_for_a_requested_retry_of_a_science_failure_is_waiting(db, rows):
    task = rows.task(rows.job(), state="waiting", retry_at=utcnow() + dt.timedelta(seconds=60))
    rows.attempt(task, error_kind="science", error_text="Traceback ...")
    assert _state(db, task) == "waiting"


def test_only_the_current_attempt_counts(db, rows):
    """An old attempt lost to the infrastructure does not make its successor stalled."""
    task = rows.task(rows.job(), state="running")
    rows.attempt(task, error_kind="infrastructure")
    rows.attempt(task, state=A_RUNNING, heartbeat_age_s=5)
    assert _state(db, task) == "running"
    failed = rows.task(rows.job(), state="failed")        # lost, and no attempts left
    rows.attempt(failed, error_kind="infrastructure")
    assert _state(db, failed) == "failed"


def test_the_reconcile_tick_leaves_a_stalled_task_stalled_until_its_retry_starts(db, rows):
    """The real recovery path: a stale heartbeat is given up and the task waits for its retry."""
    from eas_runtime.control import scheduler
    task = rows.task(rows.job(), state="running")
    rows.attempt(task, state=A_RUNNING, heartbeat_age_s=120)
    assert _state(db, task, stall_s=60) == "stalled"
    assert scheduler.recover_stalled(db, stall_s=60, max_attempts=3, backoff_base_s=600) == 1
    with db.read() as s:
        assert s.get(Task, task).state == "waiting"          # stored state: waiting for the retry
    assert _state(db, task, stall_s=60) == "stalled"
    with db.read() as s:
        assert scheduler.find_ready(s, task_ids=[task]) == []          # not due: backoff
    assert scheduler.claim(db, task, expected_attempts=1) is not None  # the retry starts
    assert _state(db, task, stall_s=60) == "queued"


def test_every_view_uses_the_same_states(db, rows):
    job = rows.job()
    expected = {}
    for i, (state, age) in enumerate((("running", 10), ("running", 1000), ("done", None),
                                      ("failed", None), ("waiting", None))):
        task = rows.task(job, "t", state=state, name=f"n{i}")
        if state == "running":
            rows.attempt(task, state=A_RUNNING, heartbeat_age_s=age)
        elif state != "waiting":
            rows.attempt(task, error_kind="science" if state == "failed" else "")
        expected[task] = "stalled" if age == 1000 else state
    tree = diag.tree(db, stall_s=STALL_S)
    assert {i["task_id"]: i["state"] for i in tree["items"]} == expected
    counts = diag.progress(db, stall_s=STALL_S)["task_types"][0]["counts"]
    assert counts == {st: list(expected.values()).count(st) for st in diag.DISPLAY_STATES}
    assert diag.jobs(db, stall_s=STALL_S)["items"][0]["counts"] == counts
    timings = diag.timings(db, job, "t", stall_s=STALL_S)
    assert {r["task_id"]: r["state"] for r in timings["items"]} == expected
    claimed = diag.claimed_attempts(db, stall_s=STALL_S)["items"]
    assert sorted(a["task_state"] for a in claimed) == ["running", "stalled"]
    assert {diag.task_detail(db, t, stall_s=STALL_S)["state"] for t in expected} == set(expected.values())
