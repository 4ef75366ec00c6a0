"""``eas submit --wait``'s progress line and results (eas_runtime.follow), on rows of a real
task database, with a clock the test moves (no wall-clock timing)."""
from __future__ import annotations

import io

from eas_runtime import follow
from eas_runtime.db import metadata as md
from eas_runtime.follow import Counts


class Clock:
    """A clock that moves only when the follower sleeps; each sleep may change the rows."""

    def __init__(self, steps):
        self.t, self.steps = 0.0, list(steps)

    def __call__(self) -> float:
        return self.t

    def sleep(self, seconds: float) -> None:
        self.t += seconds
        if self.steps:
            self.steps.pop(0)()


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def _job(rows, n=4):
    job = rows.job("grid")
    return job, [rows.task(job, "verify", metadata={"size": 0.1 * i}) for i in range(n)]


def test_counts_and_time_left():
    start = Counts(total=10, done=0, failed=0, cancelled=0, running=2, waiting=8)
    now = Counts(total=10, done=3, failed=1, cancelled=0, running=2, waiting=4)
    assert now.ended == 4 and now.open == 6
    assert follow.time_left(start, now, elapsed_s=40.0) == 60.0        # 4 rows in 40 s, 6 to go
    assert follow.time_left(start, start, elapsed_s=40.0) is None      # nothing ended yet
    assert follow.duration(45) == "45 s" and follow.duration(200) == "3 min 20 s"
    assert follow.duration(7500) == "2 h 05 min"
    text = follow.line(7, now, 40.0, 60.0)
    assert text == "job 7: 3/10 done, 1 failed, 2 running, 4 waiting; 40 s elapsed, about 1 min 00 s left"


def test_a_pipe_gets_a_line_per_change_at_most_every_ten_seconds(db, rows):
    job, tasks = _job(rows)
    changes = [lambda t=t: rows.set_state(t, "done") for t in tasks[:3]] + [lambda: rows.set_state(tasks[3], "failed")]
    clock = Clock([lambda: None] * 4 + changes[:1] + [lambda: None] * 14 + changes[1:])
    out = io.StringIO()
    final = follow.follow(db, job, out=out, clock=clock, sleep=clock.sleep, interval_s=1.0)
    assert final == Counts(total=4, done=3, failed=1, cancelled=0, running=0, waiting=0)
    lines = out.getvalue().splitlines()
    assert lines[0].startswith(f"job {job}: 0/4 done, 0 failed, 0 running, 4 waiting; 0 s elapsed, time left unknown")
    assert lines[1].startswith(f"job {job}: 1/4 done") and "10 s elapsed" in lines[1]   # changed at 5 s, shown at 10 s
    assert lines[2].startswith(f"job {job}: 2/4 done") and "20 s elapsed" in lines[2]   # 10 s later
    assert lines[-1] == f"job {job}: 3/4 done, 1 failed, 0 running, 0 waiting; 22 s elapsed, finished"
    assert len(lines) == 4


def test_a_terminal_line_is_rewritten_in_place(db, rows):
    job, tasks = _job(rows, n=2)
    clock = Clock([lambda: rows.set_state(tasks[0], "done"), lambda: rows.set_state(tasks[1], "done")])
    out = Terminal()
    assert follow.follow(db, job, out=out, clock=clock, sleep=clock.sleep).done == 2
    text = out.getvalue()
    assert text.count("\r") == 3 and text.endswith("\n") and text.count("\n") == 1
    assert text.rstrip().endswith("finished")     # padded over the longer line before it
    assert "about 1 s left" in text          # one of two rows ended after 1 s


def test_following_stops_at_the_timeout(db, rows):
    job, _ = _job(rows, n=1)
    clock = Clock([])
    out = io.StringIO()
    assert follow.follow(db, job, out=out, clock=clock, sleep=clock.sleep, timeout_s=5.0) is None
    assert clock.t == 5.0


def test_results_show_the_varying_parameters_and_the_results_in_task_order(db, rows):
    job = rows.job("grid")
    for i, size in enumerate((0.5, 2.0)):
        for task_type, result in (("synthesis_batman", {"depth": 0.123456789}),
                                  ("transit_search_tls", {"period": 3.0 + i, "outcome": "PASS"})):
            task = rows.task(job, task_type, metadata={"size": size, "tda": "tls"}, state="done")
            attempt = rows.attempt(task)
            with db.session() as s:
                md.set_metadata(s, "attempt", attempt, result)
    lines = follow.results(db, job, ["transit_search_tls", "synthesis_batman"])
    first = lines.index("synthesis_batman (2 tasks)")
    assert first < lines.index("transit_search_tls (2 tasks)")       # the order the tasks were made
    header = lines[first + 1].split()
    assert header[:3] == ["task_id", "state", "size"] and "tda" not in header     # tda is the same everywhere
    assert "0.123457" in lines[first + 2]                              # 6 significant digits
    search = lines[lines.index("transit_search_tls (2 tasks)") + 1].split()
    assert search[search.index("period"):search.index("period") + 2] == ["period", "outcome"]


def test_results_of_a_large_job_say_how_to_get_every_row(db, rows):
    job = rows.job("big")
    for i in range(follow.SHOWN_ROWS + 5):
        rows.task(job, "verify", metadata={"size": i}, state="done")
    lines = follow.results(db, job, ["verify"])
    assert lines[-1] == f"... 5 more: eas timings --job {job} --type verify (--csv FILE for all)"
