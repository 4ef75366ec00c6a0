"""Failed attempts with their full tracebacks, dead letters, and log messages."""
from __future__ import annotations

import datetime as dt
import re

from sqlalchemy import func, select

from eas_runtime.db.models import Attempt, DeadLetter, LogMessage, Task
from eas_runtime.diagnostics._common import (DEFAULT_PAGE_SIZE, DiagnosticsError, check_id, check_page,
                                             iso, paged, parse_since)

#: Error kind of attempts ended by a cancellation: not failures, left out unless asked for.
CANCELLED_KIND = "cancelled"
SEVERITIES = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")


#: Longest cause shown above a traceback [characters]; the traceback keeps the whole text.
MAX_CAUSE = 500


#: The lines Python prints between the tracebacks of a chain, and how the cause reads each link.
_CHAIN = {"The above exception was the direct cause of the following exception:": "caused by",
          "During handling of the above exception, another exception occurred:": "while handling"}


def _exception_line(lines: list[str]) -> str:
    """The exception of one traceback: the line(s) after its last frame, the module path left out
    of the exception's name (``ParameterError: ...``, not ``eas_runtime.task_api.ParameterError``)."""
    frames = [i for i, line in enumerate(lines) if line.startswith((" ", "\t"))]
    tail = lines[frames[-1] + 1:] if frames else lines[1:]
    line = " ".join(part.strip() for part in tail) or lines[-1].strip()
    name, sep, message = line.partition(": ")
    if re.fullmatch(r"[A-Za-z_][\w.]*", name):
        name = name.rsplit(".", 1)[-1]
    return f"{name}{sep}{message}"


def error_cause(text: str | None) -> str:
    """The one-line cause of a failure from its recorded text: for a Python traceback, the
    exception line(s) after the last frame (``ValueError: flux is empty``), and for a chain of
    them the first one too (``RuntimeError: header unreadable (caused by KeyError: 'NAXIS')``);
    for a text that starts with its own summary (a timeout, an install hint, ``QC failed: ...``),
    that first line. Shortened to :data:`MAX_CAUSE` characters; ``""`` for no text."""
    lines = [line for line in (text or "").strip().splitlines() if line.strip()]
    if not lines:
        return ""
    if lines[0].startswith("Traceback (most recent call last)"):
        links: list[list[str]] = [[]]
        joins: list[str] = []
        for line in lines:
            if line.strip() in _CHAIN:
                joins.append(_CHAIN[line.strip()])
                links.append([])
            else:
                links[-1].append(line)
        cause = _exception_line(links[-1])
        if len(links) > 1 and links[0]:
            cause += f" ({joins[0]} {_exception_line(links[0])})"
    else:
        cause = lines[0].strip()
    return cause if len(cause) <= MAX_CAUSE else cause[:MAX_CAUSE - 1] + "…"


def errors(db, *, job_id: int | None = None, task_type: str | None = None,
           since: str | dt.datetime | None = None, kind: str | None = None, page: int = 0,
           page_size: int = DEFAULT_PAGE_SIZE, now: dt.datetime | None = None) -> dict:
    """Every failed attempt, newest first, with its full error text (the traceback).

    ``since``: an ISO time or an age (``2h``); attempts that ended at or after it. ``kind``:
    only this error kind (science, input, qc, parameters, timeout, infrastructure, cancelled); attempts
    ended by a cancellation are left out unless ``kind="cancelled"``.
    """
    check_id("job", job_id)
    offset, limit = check_page(page, page_size)
    after = parse_since(since, now)
    q = select(Attempt, Task.job_id, Task.task_type, Task.name, Task.path) \
        .join(Task, Task.id == Attempt.task_id).where(Attempt.error.is_(True))
    q = q.where(Attempt.error_kind == kind) if kind else q.where(Attempt.error_kind != CANCELLED_KIND)
    if job_id is not None:
        q = q.where(Task.job_id == job_id)
    if task_type:
        q = q.where(Task.task_type == task_type)
    if after is not None:
        q = q.where(Attempt.ended_at >= after)
    with db.read() as s:
        total = s.scalar(select(func.count()).select_from(q.subquery()))
        rows = s.execute(q.order_by(Attempt.ended_at.desc(), Attempt.id.desc())
                         .offset(offset).limit(limit)).all()
    items = [{"attempt_id": a.id, "task_id": a.task_id, "job_id": job, "task_type": tt, "name": name,
              "path": path, "number": a.number, "kind": a.error_kind, "cause": error_cause(a.error_text),
              "error": a.error_text,
              "host": a.host, "pid": a.pid, "started": iso(a.started_at), "ended": iso(a.ended_at)}
             for a, job, tt, name, path in rows]
    return paged(items, total, page, page_size,
                 filters={"job_id": job_id, "task_type": task_type, "since": iso(after), "kind": kind})


def dead_letters(db, *, since: str | dt.datetime | None = None, component: str | None = None,
                 page: int = 0, page_size: int = DEFAULT_PAGE_SIZE, payload: bool = True,
                 now: dt.datetime | None = None) -> dict:
    """Events and records that could not be processed, newest first, with the reason (and the
    event itself unless ``payload=False``)."""
    offset, limit = check_page(page, page_size)
    after = parse_since(since, now)
    q = select(DeadLetter)
    if after is not None:
        q = q.where(DeadLetter.time >= after)
    if component:
        q = q.where(DeadLetter.component == component)
    with db.read() as s:
        total = s.scalar(select(func.count()).select_from(q.subquery()))
        rows = s.scalars(q.order_by(DeadLetter.time.desc(), DeadLetter.id.desc())
                         .offset(offset).limit(limit)).all()
    items = []
    for d in rows:
        item = {"id": d.id, "time": iso(d.time), "component": d.component, "reason": d.reason,
                "event_id": d.event_id, "event_type": d.event_type}
        if payload:
            item["payload"] = d.payload
        items.append(item)
    return paged(items, total, page, page_size, filters={"since": iso(after), "component": component})


def severities_from(severity: str | None) -> tuple[str, ...] | None:
    """``WARNING`` -> (WARNING, ERROR, CRITICAL); None -> None (every severity)."""
    if not severity:
        return None
    name = severity.upper()
    if name == "WARN":
        name = "WARNING"
    if name not in SEVERITIES:
        raise DiagnosticsError(f"severity {severity!r} is not one of {', '.join(SEVERITIES)}")
    return SEVERITIES[SEVERITIES.index(name):]


def logs(db, *, attempt_id: int | None = None, task_id: int | None = None, job_id: int | None = None,
         severity: str | None = None, page: int = 0, page_size: int = DEFAULT_PAGE_SIZE,
         newest_first: bool = False) -> dict:
    """Log messages of an attempt, a task (all its attempts) or a job, or of everything, in
    time order (oldest first unless ``newest_first``); ``severity``: that level and above."""
    check_id("attempt", attempt_id), check_id("task", task_id), check_id("job", job_id)
    offset, limit = check_page(page, page_size)
    levels = severities_from(severity)
    cond = []
    if attempt_id is not None:
        cond.append(LogMessage.attempt_id == attempt_id)
    if task_id is not None:
        cond.append(Attempt.task_id == task_id)
    if job_id is not None:
        cond.append(Task.job_id == job_id)
    if levels is not None:
        cond.append(LogMessage.severity.in_(levels))
    ids = select(LogMessage.id).where(*cond)
    if task_id is not None or job_id is not None:   # join only when a filter needs it
        ids = ids.join(Attempt, Attempt.id == LogMessage.attempt_id)
        if job_id is not None:
            ids = ids.join(Task, Task.id == Attempt.task_id)
    order = (LogMessage.time.desc(), LogMessage.id.desc()) if newest_first \
        else (LogMessage.time, LogMessage.id)
    with db.read() as s:
        total = s.scalar(select(func.count()).select_from(ids.subquery()))
        # The page's ids first (an index walk), then those rows with their attempt and task:
        # skipping to a deep page never joins the rows it skips.
        page_ids = list(s.scalars(ids.order_by(*order).offset(offset).limit(limit)))
        found = {m.id: (m, number, task, job, tt) for m, number, task, job, tt in s.execute(
            select(LogMessage, Attempt.number, Attempt.task_id, Task.job_id, Task.task_type)
            .outerjoin(Attempt, Attempt.id == LogMessage.attempt_id)
            .outerjoin(Task, Task.id == Attempt.task_id).where(LogMessage.id.in_(page_ids)))}
    rows = [found[i] for i in page_ids if i in found]
    items = [{"id": m.id, "time": iso(m.time), "severity": m.severity, "text": m.text,
              "attempt_id": m.attempt_id, "attempt": number, "task_id": task, "job_id": job,
              "task_type": tt} for m, number, task, job, tt in rows]
    return paged(items, total, page, page_size,
                 filters={"attempt_id": attempt_id, "task_id": task_id, "job_id": job_id,
                          "severity": levels[0] if levels else None, "newest_first": newest_first})
