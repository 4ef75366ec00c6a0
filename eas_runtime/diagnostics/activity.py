"""Activity: the attempts each worker (host and process) ran in a time window.

One lane per (host, pid), sorted by host then pid; each lane holds the attempts that overlap
the window, oldest first. Bounded twice, so a page stays small and quick whatever the window
and however many workers: the ``limit`` most recent attempts of the window are read (newest
ids first: attempt ids grow with the time they were queued, so this walks the primary key
and stops early instead of sorting the window), and of the workers that ran them at most
``lanes`` are kept, the busiest. The answer counts what was left out.

The default window (neither ``since`` nor ``until`` given) is the most recent activity, not
the last hour (which showed slivers of a long job, or nothing after a quiet hour): from the
first attempt's start to the last attempt's end (now while one runs) of the newest job (the
job of the most recently queued attempt that started), widened by 2 % on each side (at least
30 s) so no bar touches an edge, at most :data:`MAX_DEFAULT_SPAN` (24 h, ending at its end),
and never past now. With no attempt at all, the last 24 h. ``since`` alone still ends at now;
``until`` alone starts 1 h before it. The answer's ``window`` says which it was.
"""
from __future__ import annotations

import datetime as dt

from sqlalchemy import func, select

from eas_runtime.db.models import Attempt, Task, utcnow
from eas_runtime.diagnostics._common import DiagnosticsError, iso, parse_since, shown

DEFAULT_WINDOW = "1h"
#: Longest default window, and the window when no attempt has run.
MAX_DEFAULT_SPAN = dt.timedelta(hours=24)
#: Margin on each side of the default window: a fraction of it, at least MIN_PAD.
PAD_FRACTION, MIN_PAD = 0.02, dt.timedelta(seconds=30)
MAX_LANES = 200
MAX_ATTEMPTS = 10_000


def _bounded(name: str, value: int, high: int) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or not 1 <= value <= high:
        raise DiagnosticsError(f"{name} must be a whole number from 1 to {high}, got {shown(value)}")
    return value


def _naive(moment: dt.datetime) -> dt.datetime:
    return moment.replace(tzinfo=None) if moment.tzinfo else moment


def default_window(s, now: dt.datetime) -> tuple[dt.datetime, dt.datetime, dict]:
    """(start, end, description) of the default window (see the module docstring)."""
    newest = s.scalar(select(Task.job_id).join(Attempt, Attempt.task_id == Task.id)
                      .where(Attempt.started_at.is_not(None)).order_by(Attempt.id.desc()).limit(1))
    if newest is None:
        return now - MAX_DEFAULT_SPAN, now, {"default": True, "job_id": None,
                                             "reason": "no attempt has run: the last 24 h"}
    first, last, running = s.execute(
        select(func.min(Attempt.started_at), func.max(Attempt.ended_at),
               func.count().filter(Attempt.ended_at.is_(None)))
        .join(Task, Task.id == Attempt.task_id)
        .where(Task.job_id == newest, Attempt.started_at.is_not(None))).one()
    tz = now.tzinfo
    first = _naive(first).replace(tzinfo=tz)
    end = now if running or last is None else min(now, _naive(last).replace(tzinfo=tz))
    start = max(first, end - MAX_DEFAULT_SPAN)
    pad = max(MIN_PAD, (end - start) * PAD_FRACTION)
    start, end = start - pad, min(now, end + pad)
    reason = (f"the attempts of job {newest}, the newest"
              + (" (its last 24 h)" if first < end - MAX_DEFAULT_SPAN - pad else ""))
    return start, end, {"default": True, "job_id": newest, "reason": reason}


def _at(value: str | dt.datetime, now: dt.datetime, name: str = "since") -> dt.datetime:
    """:func:`parse_since` of a given value (it answers None only for None or "")."""
    at = parse_since(value, now, name=name)
    assert at is not None
    return at


def activity(db, *, since: str | dt.datetime | None = None, until: str | dt.datetime | None = None,
             lanes: int = 40, limit: int = 2000, now: dt.datetime | None = None) -> dict:
    """Attempts that ran (started, and not ended before ``since``) between ``since`` (an ISO
    time or an age such as ``2h``) and ``until`` (default now); with neither, the span of the
    newest job's attempts (module docstring; ``window`` describes it).

    Each attempt: attempt_id, task_id, job_id, task_type, number, outcome (running, done,
    failed, cancelled), started, ended (None while running), seconds (its length within the
    window's end, in s). Each lane: host, pid, attempts, busy_s (seconds of the window it
    spent running attempts). Counts: ``attempts_total`` in the window, ``attempts_read`` (at
    most ``limit``), ``lanes_total`` (workers among those read), ``attempts_shown`` (those of
    the lanes kept).
    """
    now = now or utcnow()
    lanes, limit = _bounded("lanes", lanes, MAX_LANES), _bounded("limit", limit, MAX_ATTEMPTS)
    window: dict = {"default": False, "job_id": None, "reason": "as asked"}
    if since is None and until is None:
        with db.read() as s:
            start, end, window = default_window(s, now)
    else:
        end = _at(until, now, "until") if until else now
        start = _at(since, now) if since else end - (now - _at(DEFAULT_WINDOW, now))
    if start >= end:
        raise DiagnosticsError(f"since ({iso(start)}) must be before until ({iso(end)})")
    overlap = [Attempt.started_at.is_not(None), Attempt.started_at < end,
               (Attempt.ended_at.is_(None)) | (Attempt.ended_at >= start)]
    with db.read() as s:
        total = s.scalar(select(func.count()).select_from(Attempt).where(*overlap))
        rows = s.execute(select(Attempt.id, Attempt.task_id, Attempt.number, Attempt.host,
                                Attempt.pid, Attempt.started_at, Attempt.ended_at, Attempt.error,
                                Attempt.error_kind, Task.job_id, Task.task_type)
                         .join(Task, Task.id == Attempt.task_id).where(*overlap)
                         .order_by(Attempt.id.desc()).limit(limit)).all()
    per_lane: dict[tuple, int] = {}
    for r in rows:
        per_lane[(r.host, r.pid)] = per_lane.get((r.host, r.pid), 0) + 1
    # The busiest lanes first (ties: by name), at most ``lanes`` of them.
    keys = set(sorted(per_lane, key=lambda k: (-per_lane[k], k[0] or "", k[1] or 0))[:lanes])
    shown = [r for r in rows if (r.host, r.pid) in keys]
    by_lane: dict[tuple, list] = {k: [] for k in keys}
    busy: dict[tuple, float] = {k: 0.0 for k in keys}
    for r in sorted(shown, key=lambda r: (r.started_at, r.id)):   # oldest first in a lane
        finished = r.ended_at
        outcome = ("running" if finished is None else
                   "cancelled" if r.error and r.error_kind == "cancelled" else
                   "failed" if r.error else "done")
        stop = min(finished or end, end)
        seconds = max(0.0, (stop - r.started_at).total_seconds())
        busy[(r.host, r.pid)] += max(0.0, (stop - max(r.started_at, start)).total_seconds())
        by_lane[(r.host, r.pid)].append({
            "attempt_id": r.id, "task_id": r.task_id, "job_id": r.job_id, "task_type": r.task_type,
            "number": r.number, "outcome": outcome, "error_kind": r.error_kind or None,
            "started": iso(r.started_at), "ended": iso(r.ended_at), "seconds": round(seconds, 3)})
    out_lanes = [{"host": h, "pid": p, "attempts": by_lane[(h, p)], "busy_s": round(busy[(h, p)], 3)}
                 for h, p in sorted(keys, key=lambda k: (k[0] or "", k[1] or 0))]
    return {"since": iso(start), "until": iso(end), "now": iso(now), "window": window, "lanes": out_lanes,
            "lanes_total": len(per_lane), "attempts_total": total, "attempts_read": len(rows),
            "attempts_shown": len(shown), "limits": {"lanes": lanes, "attempts": limit}}
