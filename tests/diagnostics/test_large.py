"""100,000 tasks: every query stays correct page after page (no timing assertions here; the
times are in benchmarks/diagnostics.py)."""
from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import func, select

from benchmarks.diagnostics import populate
from eas_runtime import diagnostics as diag
from eas_runtime.db.models import Attempt, LogMessage, Task, utcnow
from eas_runtime.db.session import Database

STALL_S = 300.0


@pytest.fixture(scope="module")
def big(tmp_path_factory):
    db = Database(f"sqlite:///{tmp_path_factory.mktemp('big') / 'eas.db'}")
    db.create_schema()
    ids = populate(db, tasks=100_000, log_lines=50_000, grid_chains=2_000)
    yield db, ids
    db.dispose()


def _preorder(db) -> list[int]:
    with db.read() as s:
        rows = s.execute(select(Task.id, Task.job_id, Task.parent_id).order_by(Task.id)).all()
    children: dict = {}
    for tid, job, parent in rows:
        children.setdefault(parent if parent is not None else ("job", job), []).append(tid)
    out = []
    for job in sorted({job for _, job, _ in rows}):
        stack = list(reversed(children.get(("job", job), [])))
        while stack:
            tid = stack.pop()
            out.append(tid)
            stack.extend(reversed(children.get(tid, [])))
    return out


def test_tree_pages_are_slices_of_the_whole_tree_in_order(big):
    """Pages inside the grid job, across its end into the small jobs, in the middle, at the end."""
    db, ids = big
    assert ids["tasks"] == 100_000
    expected = _preorder(db)
    size = diag.MAX_PAGE_SIZE
    for page in (0, 1, 5, 6, 7, 50, 98, 99):
        data = diag.tree(db, page=page, page_size=size)
        assert data["total"] == 100_000 and data["pages"] == 100
        assert [i["task_id"] for i in data["items"]] == expected[page * size:(page + 1) * size], page
        assert all(i["depth"] == (0 if i["parent_id"] is None else 1) for i in data["items"])
    odd = diag.tree(db, page=857, page_size=7)          # a page size that divides nothing
    assert [i["task_id"] for i in odd["items"]] == expected[857 * 7:858 * 7]
    assert diag.tree(db, page=100, page_size=size)["items"] == []


def test_depth_zero_pages_hold_the_top_level_tasks(big):
    db, ids = big
    first = diag.tree(db, depth=0, page_size=50)
    with db.read() as s:
        roots = s.scalars(select(Task.id).where(Task.parent_id.is_(None)).order_by(Task.job_id, Task.id)).all()
    assert first["total"] == len(roots)
    last = diag.tree(db, depth=0, page=first["pages"] - 1, page_size=50)
    assert [i["task_id"] for i in first["items"]] == roots[:50]
    assert [i["task_id"] for i in last["items"]] == roots[(first["pages"] - 1) * 50:]
    sub = diag.tree(db, subtree=ids["grid_loop_task"], depth=1, page=3, page_size=100)
    assert sub["total"] == 1 + 3 * 2_000
    assert all(i["depth"] == 1 and i["parent_id"] == ids["grid_loop_task"] for i in sub["items"])


def test_progress_and_running_view_agree_with_the_rows(big):
    db, _ = big
    now = utcnow()
    cutoff = now - dt.timedelta(seconds=STALL_S)
    with db.read() as s:
        stored = dict(s.execute(select(Task.state, func.count()).group_by(Task.state)).all())
        stalled_running = s.scalar(select(func.count()).select_from(Task).join(
            Attempt, (Attempt.task_id == Task.id) & (Attempt.number == Task.attempt_count))
            .where(Task.state == "running", Attempt.heartbeat_at < cutoff))
        stalled_waiting = s.scalar(select(func.count()).select_from(Task).join(
            Attempt, (Attempt.task_id == Task.id) & (Attempt.number == Task.attempt_count))
            .where(Task.state == "waiting", Task.retry_at.is_not(None), Attempt.error_kind == "infrastructure"))
    counts = diag.progress(db, stall_s=STALL_S, now=now)["all"]["counts"]
    assert sum(counts.values()) == 100_000
    assert stalled_running and stalled_waiting
    assert counts["stalled"] == stalled_running + stalled_waiting
    assert counts["running"] == stored["running"] - stalled_running
    assert counts["waiting"] == stored["waiting"] - stalled_waiting
    assert counts["done"] == stored["done"] and counts["failed"] == stored["failed"]
    running = diag.tree(db, running_only=True, page_size=diag.MAX_PAGE_SIZE, stall_s=STALL_S, now=now)
    assert running["total"] == stored["running"]
    assert sum(i["state"] == "stalled" for i in running["items"]) == stalled_running
    claimed = diag.claimed_attempts(db, page_size=diag.MAX_PAGE_SIZE)
    assert claimed["total"] == stored["running"]


def test_timings_pages_cover_every_search_once(big):
    db, ids = big
    job, search = ids["grid_job"], ids["search_type"]
    seen, outcomes = [], {}
    for page in range(3):
        data = diag.timings(db, job, search, page=page, page_size=diag.MAX_PAGE_SIZE)
        seen += [r["task_id"] for r in data["items"]]
        outcomes.update({r["task_id"]: r["outcome"] for r in data["items"]})
    with db.read() as s:
        expected = s.scalars(select(Task.id).where(Task.job_id == job, Task.task_type == search)
                             .order_by(Task.id)).all()
    assert seen == expected and len(seen) == 2_000
    summary = diag.passfail(db, job, search)["summary"]
    assert sum(summary.values()) == 2_000
    assert summary["PASS"] == sum(o == "PASS" for o in outcomes.values())
    assert diag.timing_groups(db)["total"] == 4 + 3 * (ids["jobs"] - 1)   # the grid job has a loop too


def test_errors_and_logs_page_without_gaps_or_repeats(big):
    db, _ = big
    with db.read() as s:
        failed = s.scalar(select(func.count()).select_from(Attempt).where(Attempt.error.is_(True)))
        warnings = s.scalar(select(func.count()).select_from(LogMessage)
                            .where(LogMessage.severity.in_(("WARNING", "ERROR", "CRITICAL"))))
    first = diag.errors(db, page_size=diag.MAX_PAGE_SIZE)
    assert first["total"] == failed
    ids, ended = [], []
    for page in range(first["pages"]):
        items = diag.errors(db, page=page, page_size=diag.MAX_PAGE_SIZE)["items"]
        ids += [e["attempt_id"] for e in items]
        ended += [e["ended"] for e in items]
    assert len(ids) == len(set(ids)) == failed
    assert ended == sorted(ended, reverse=True)
    logs = diag.logs(db, severity="WARNING", page_size=diag.MAX_PAGE_SIZE)
    assert logs["total"] == warnings
    last = diag.logs(db, page=49, page_size=diag.MAX_PAGE_SIZE)
    newest = diag.logs(db, newest_first=True, page_size=diag.MAX_PAGE_SIZE)
    assert last["total"] == 50_000 and len(last["items"]) == 1_000
    assert [m["id"] for m in last["items"]] == list(reversed([m["id"] for m in newest["items"]]))
