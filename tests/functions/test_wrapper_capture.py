"""The wrapper's per-attempt helpers: the shared heartbeat thread and reused scratch folders."""
from __future__ import annotations

import datetime as dt
import threading
import time

from sqlalchemy import select, update

from eas_runtime.db.models import A_RUNNING, Attempt, Job, Task
from eas_runtime.wrapper._capture import _BEATS, Heartbeat, ScratchDirs

OLD = dt.datetime(2000, 1, 1, tzinfo=dt.timezone.utc)


def _running_attempts(db, n: int) -> list[int]:
    with db.session() as s:
        job = Job(name="beats")
        s.add(job)
        s.flush()
        tasks = [Task(job_id=job.id, task_type="null", state="running", attempt_count=1) for _ in range(n)]
        s.add_all(tasks)
        s.flush()
        attempts = [Attempt(task_id=t.id, number=1, state=A_RUNNING, started_at=OLD, heartbeat_at=OLD)
                    for t in tasks]
        s.add_all(attempts)
        s.flush()
        return [a.id for a in attempts]


def _beats(db, ids):
    with db.read() as s:
        return dict(s.execute(select(Attempt.id, Attempt.heartbeat_at).where(Attempt.id.in_(ids))).all())


def _wait_for(condition, what: str, timeout_s: float = 20.0):
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.02)


def test_one_thread_beats_every_running_attempt(resources):
    db = resources.db
    ids = _running_attempts(db, 3)
    with Heartbeat(db, ids[0], 0.05), Heartbeat(db, ids[1], 0.05):
        _wait_for(lambda: all(t > OLD for t in list(_beats(db, ids[:2]).values())), "both heartbeats")
        assert [t.name for t in threading.enumerate()].count("eas-heartbeat") == 1
    assert _beats(db, ids[2:])[ids[2]] == OLD            # not registered: never beaten
    assert not any(b.attempt_id in ids for b in _BEATS._due)     # both left the registry


def test_a_finished_attempt_is_not_beaten(resources):
    db = resources.db
    (attempt_id,) = _running_attempts(db, 1)
    with db.session() as s:
        s.execute(update(Attempt).where(Attempt.id == attempt_id).values(state="finished"))
    other = _running_attempts(db, 1)[0]
    with Heartbeat(db, attempt_id, 0.05), Heartbeat(db, other, 0.05):
        _wait_for(lambda: _beats(db, [other])[other] > OLD, "the running attempt's heartbeat")
    assert _beats(db, [attempt_id])[attempt_id] == OLD


def _files(folder):
    return sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*") if not p.is_dir())


def test_scratch_folder_holds_no_file_for_each_attempt_and_is_reused(tmp_path):
    dirs = ScratchDirs(keep=1)
    with dirs.folder() as first:
        assert list(first.iterdir()) == []
        (first / "outputs" / "lightcurve").mkdir(parents=True)
        (first / "outputs" / "lightcurve" / "lc.fits").write_bytes(b"x")
        (first / "outputs" / "lightcurve" / "extra").mkdir()
        (first / "sources" / "a1b2").mkdir(parents=True)
        (first / "sources" / "a1b2" / "star.csv").write_text("1,2")
        (first / "psls.yaml").write_text("a: 1")
    with dirs.folder() as second:
        assert second == first and _files(second) == []
        # The wrapper's layout stays (no folder to make again); what the science made goes.
        assert sorted(p.name for p in second.rglob("*")) == ["lightcurve", "outputs"]
        with dirs.folder() as third:                     # two attempts at once: two folders
            assert third != second and list(third.iterdir()) == []
    assert not third.exists() or not second.exists()     # only one is kept
    dirs.clear()
    assert not first.exists()


def test_scratch_layout_with_too_many_names_is_removed(tmp_path):
    dirs = ScratchDirs(keep=1)
    with dirs.folder() as first:
        for i in range(ScratchDirs.KEEP_NAMES + 1):
            (first / "inputs" / f"in{i}").mkdir(parents=True)
    with dirs.folder() as second:
        assert second == first and list(second.iterdir()) == []
