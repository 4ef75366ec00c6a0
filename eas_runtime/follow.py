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

import dataclasses
import sys
import time
from dataclasses import dataclass
from typing import IO, Callable, Sequence

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

    def __add__(self, other: "Counts") -> "Counts":
        return Counts(*(a + b for a, b in zip(dataclasses.astuple(self), dataclasses.astuple(other))))


def counts(db, job_ids: Sequence[int], *, stall_s: float) -> Counts:
    """The task rows of these jobs, summed."""
    total = Counts(0, 0, 0, 0, 0, 0)
    for job_id in job_ids:
        total += Counts.of(diag.progress(db, job_id=job_id, stall_s=stall_s))
    return total


def label(job_ids: Sequence[int]) -> str:
    if len(job_ids) == 1:
        return f"job {job_ids[0]}"
    if len(job_ids) <= 4:
        return "jobs " + ", ".join(map(str, job_ids))
    return f"{len(job_ids)} jobs"


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


def line(job_ids: int | Sequence[int], now: Counts, elapsed_s: float, left_s: float | None) -> str:
    if not now.open:
        left = "finished"
    elif left_s is None:
        left = "time left unknown yet"
    else:
        left = f"about {duration(left_s)} left"
    cancelled = f", {now.cancelled} cancelled" if now.cancelled else ""
    jobs = label([job_ids] if isinstance(job_ids, int) else list(job_ids))
    return (f"{jobs}: {now.done}/{now.total} done, {now.failed} failed{cancelled}, "
            f"{now.running} running, {now.waiting} waiting; {duration(elapsed_s)} elapsed, {left}")


def follow(db, job_ids: int | Sequence[int], *, out: IO[str], stall_s: float = 300.0, interval_s: float = 1.0,
           timeout_s: float = 0.0, clock: Callable[[], float] = time.monotonic,
           sleep: Callable[[float], None] = time.sleep) -> Counts | None:
    """Show the progress of the job (or jobs, summed) until it ends; the final counts, or None
    after ``timeout_s`` seconds (0: no limit)."""
    job_ids = [job_ids] if isinstance(job_ids, int) else list(job_ids)
    tty = hasattr(out, "isatty") and out.isatty()
    began = clock()
    first = last = counts(db, job_ids, stall_s=stall_s)
    width, shown, shown_at = 0, None, None     # terminal line width; counts last written, when
    while True:
        elapsed = clock() - began
        text = line(job_ids, last, elapsed, time_left(first, last, elapsed))
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
        last = counts(db, job_ids, stall_s=stall_s)
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


def run(db, job_ids: Sequence[int], *, stall_s: float = 300.0, timeout_s: float = 0.0, command: str = "eas",
        out: IO[str] | None = None, err: IO[str] | None = None) -> int:
    """Follow the jobs to their end, then print their results (``--wait``). Exit status 0:
    every task done; 4: some failed or were cancelled; 3: not ended within ``timeout_s``; 130:
    Ctrl-C (the jobs go on)."""
    from eas_runtime.jobs import CONTROL_FLOW
    out, err = out or sys.stdout, err or sys.stderr
    which = label(list(job_ids))
    look = f"eas progress --job {job_ids[0]}" if len(job_ids) == 1 else "eas jobs"
    try:
        final = follow(db, job_ids, out=out, stall_s=stall_s, timeout_s=timeout_s)
    except KeyboardInterrupt:
        print(f"\nstopped following {which}; it goes on: {look}", file=err)
        return 130
    if final is None:
        print(f"{command}: {which} has not ended after {timeout_s:g} s; it goes on: {look}",
              file=err)
        return 3
    for job_id in job_ids:
        if len(job_ids) > 1:
            print(f"\n== job {job_id}", file=out)
        types = [t["task_type"] for t in diag.progress(db, job_id=job_id, stall_s=stall_s)["task_types"]
                 if t["task_type"] not in CONTROL_FLOW]
        for text in results(db, job_id, types, stall_s=stall_s):
            print(text, file=out)
    if final.failed or final.cancelled:
        errors = " and ".join(f"eas errors --job {j}" for j in job_ids)
        print(f"\n{which}: {final.failed} failed, {final.cancelled} cancelled; the errors: {errors}", file=out)
        return 4
    return 0
