"""``eas submit --wait``: follow one job to its end, then print its results.

The progress line counts the job's task rows (control-flow rows included, as ``eas progress``
does): done, failed, running (queued and stalled with it: started or about to start), waiting,
and the time left. The time left is the rows still to end divided by the rate at which rows
ended since following began; it is shown once a row has ended, and it is an estimate (a job's
tasks differ in cost, and a loop can add rows). On a terminal the line is rewritten in place;
into a file or pipe a line is written when the counts change, at most every
:data:`PIPE_EVERY_S` seconds, so a log stays short.

The job has ended when none of its rows waits, is queued, runs or is stalled. The results are
then the timings table of each science task type (loop parameters that vary, the state and the
results, :data:`SHOWN_ROWS` rows at most; ``eas timings`` and ``--csv`` give every row).
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from typing import IO, Callable

from eas_runtime import diagnostics as diag
from eas_runtime.diagnostics import _text
from eas_runtime.diagnostics.tables import cell

#: Seconds between two progress lines written to a file or pipe (when the counts changed).
PIPE_EVERY_S = 10.0
#: Rows of each task type's results shown at the end.
SHOWN_ROWS = 20
#: Display states that have not ended yet.
OPEN_STATES = ("waiting", "queued", "running", "stalled")
#: Columns of the timings table not shown in the summary (bookkeeping, or shown otherwise).
_BOOKKEEPING = {"name", "path", "attempts", "cpu_children_s"}


@dataclass(frozen=True)
class Counts:
    total: int
    done: int
    failed: int
    cancelled: int
    running: int
    waiting: int

    @property
    def ended(self) -> int:
        return self.done + self.failed + self.cancelled

    @property
    def open(self) -> int:
        return self.total - self.ended

    @classmethod
    def of(cls, progress: dict) -> "Counts":
        c = progress["all"]["counts"]
        return cls(total=progress["all"]["total"], done=c["done"], failed=c["failed"],
                   cancelled=c["cancelled"], running=c["running"] + c["queued"] + c["stalled"],
                   waiting=c["waiting"])


def duration(seconds: float) -> str:
    """``45 s``, ``3 min 20 s``, ``2 h 05 min``."""
    seconds = max(0, int(round(seconds)))
    if seconds < 60:
        return f"{seconds} s"
    if seconds < 3600:
        return f"{seconds // 60} min {seconds % 60:02d} s"
    return f"{seconds // 3600} h {seconds % 3600 // 60:02d} min"


def time_left(start: Counts, now: Counts, elapsed_s: float) -> float | None:
    """Seconds left at the rate rows ended since ``start``; None before any row ended."""
    ended = now.ended - start.ended
    if ended <= 0 or elapsed_s <= 0:
        return None
    return now.open * elapsed_s / ended


def line(job_id: int, now: Counts, elapsed_s: float, left_s: float | None) -> str:
    left = ("time left unknown yet" if left_s is None and now.open else
            "finished" if not now.open else f"about {duration(left_s)} left")
    cancelled = f", {now.cancelled} cancelled" if now.cancelled else ""
    return (f"job {job_id}: {now.done}/{now.total} done, {now.failed} failed{cancelled}, "
            f"{now.running} running, {now.waiting} waiting; {duration(elapsed_s)} elapsed, {left}")


def follow(db, job_id: int, *, out: IO[str], stall_s: float = 300.0, interval_s: float = 1.0,
           timeout_s: float = 0.0, clock: Callable[[], float] = time.monotonic,
           sleep: Callable[[float], None] = time.sleep) -> Counts | None:
    """Show the job's progress until it ends; its final counts, or None after ``timeout_s``
    seconds (0: no limit)."""
    tty = hasattr(out, "isatty") and out.isatty()
    began = clock()
    first = last = Counts.of(diag.progress(db, job_id=job_id, stall_s=stall_s))
    width, shown, shown_at = 0, None, None     # terminal line width; counts last written, when
    while True:
        elapsed = clock() - began
        text = line(job_id, last, elapsed, time_left(first, last, elapsed))
        if tty:
            out.write("\r" + text.ljust(width))
            out.flush()
            width = len(text)
        elif last != shown and (shown_at is None or clock() - shown_at >= PIPE_EVERY_S or not last.open):
            out.write(text + "\n")
            out.flush()
            shown, shown_at = last, clock()
        if not last.open:
            break
        if timeout_s and elapsed >= timeout_s:
            if tty:
                out.write("\n")
            return None
        sleep(interval_s)
        last = Counts.of(diag.progress(db, job_id=job_id, stall_s=stall_s))
    if tty:
        out.write("\n")
    return last


def _shown(value):
    """Floats to 6 significant digits: a summary, not the record (``--json``, CSV keep all)."""
    return f"{value:.6g}" if isinstance(value, float) else value


def results(db, job_id: int, task_types: list[str], *, stall_s: float = 300.0) -> list[str]:
    """The results of each science task type of the job, in the order its tasks were made."""
    tables = [diag.timings(db, job_id, t, stall_s=stall_s, page_size=SHOWN_ROWS) for t in task_types]
    lines: list[str] = []
    for data in sorted((d for d in tables if d["items"]), key=lambda d: d["items"][0]["task_id"]):
        items, task_type = data["items"], data["task_type"]
        params = [c for c in data["parameters"] if len({cell(r.get(c)) for r in items}) > 1]
        columns = ["task_id", "state", *params,
                   *[c for c in data["results"] if c not in _BOOKKEEPING]]
        lines += ["", f"{task_type} ({data['total']} tasks)"]
        lines += _text.table(columns, [[_shown(row.get(c)) for c in columns] for row in items], width=40)
        if data["total"] > len(items):
            lines.append(f"... {data['total'] - len(items)} more: eas timings --job {job_id} --type {task_type} "
                         f"(--csv FILE for all)")
    return lines
