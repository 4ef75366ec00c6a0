"""Readiness, the atomic claim, and the reconcile tick.

A task is ready (PARITY.md section 4) when it is waiting, fully configured, its job is not
cancelled, every input object has a QC-passed version and every task it reads metadata from is
done. Claiming is a compare-and-set on ``tasks.state`` (waiting -> queued) that also bumps
``attempt_count``; it runs inside one transaction with the new attempt row, so of any number of
concurrent claimers (threads, processes, control replicas) exactly one wins, on PostgreSQL
(row lock, WHERE re-checked after the winner commits) and SQLite (one writer at a time) alike.
``task.ready`` is sent after the commit; if sending fails the attempt stays queued and the
reconcile tick sends the same event again (same id: receivers drop duplicates).
"""
from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass
from typing import Any, Callable, Iterable, Mapping, Sequence

from sqlalchemy import and_, bindparam, exists, func, insert, or_, select, union, update

from eas_runtime import events
from eas_runtime.db.models import (A_FINISHED, A_QUEUED, A_RUNNING, DONE, FAILED, QUEUED, RUNNING,
                                   WAITING, Attempt, Job, LogMessage, Product, ProductVersion,
                                   Task, TaskInput, TaskMetadataInput, TaskOutput, utcnow)

log = logging.getLogger("eas.control")
Send = Callable[..., bool]


@dataclass(frozen=True)
class Ready:
    task_id: int
    attempt_id: int
    task_type: str
    job_id: int

    def event(self):
        return events.make_event(
            events.TASK_READY, events.SOURCE_CONTROL,
            {"task_id": self.task_id, "attempt_id": self.attempt_id, "job_id": self.job_id,
             "task_type": self.task_type},
            id=events.stable_id("task.ready", self.attempt_id), subject=str(self.task_id),
            tasktype=self.task_type, jobid=self.job_id, taskid=self.task_id, attemptid=self.attempt_id)


_T, _J, _A = Task.__table__, Job.__table__, Attempt.__table__
_TI, _TO, _TMI = TaskInput.__table__, TaskOutput.__table__, TaskMetadataInput.__table__
_P, _PV = Product.__table__, ProductVersion.__table__
#: Ready tasks claimed per write transaction (their task.ready events go out after each).
CLAIM_BATCH = 500


def _ready_filter(now):
    """SQL condition: the task row is ready to run (at ``now``, a value or a bind parameter)."""
    version_ok = exists(select(_PV.c.id).join(_P, _P.c.id == _PV.c.product_id)
                        .where(_P.c.key == _TI.c.key, _PV.c.passed_qc.is_(True)))
    missing_input = exists(select(_TI.c.id).where(_TI.c.task_id == _T.c.id, ~version_ok))
    source = _T.alias("source")
    metadata_pending = exists(select(_TMI.c.id).join(source, source.c.id == _TMI.c.source_task_id)
                              .where(_TMI.c.task_id == _T.c.id, source.c.state != DONE))
    return and_(_T.c.state == WAITING, _T.c.fully_configured.is_(True), _J.c.cancelled.is_(False),
                or_(_T.c.retry_at.is_(None), _T.c.retry_at <= now), ~missing_input, ~metadata_pending)


_READY = (select(_T.c.id).select_from(_T.join(_J, _J.c.id == _T.c.job_id))
          .where(_ready_filter(bindparam("now", type_=_T.c.retry_at.type))))
#: Candidate filters of :func:`find_ready`, each with its bind parameter.
_CANDIDATES = {
    "task_ids": _T.c.id.in_(bindparam("task_ids", expanding=True)),
    "input_keys": _T.c.id.in_(select(_TI.c.task_id).where(_TI.c.key.in_(bindparam("input_keys", expanding=True)))),
    "metadata_source": _T.c.id.in_(select(_TMI.c.task_id).where(_TMI.c.source_task_id == bindparam("metadata_source"))),
    "job_id": _T.c.job_id == bindparam("job_id"),
    # Tasks that read an output of task ``after`` or its metadata.
    "after": _T.c.id.in_(union(
        select(_TI.c.task_id).join(_TO, _TO.c.key == _TI.c.key).where(_TO.c.task_id == bindparam("after")),
        select(_TMI.c.task_id).where(_TMI.c.source_task_id == bindparam("after")))),
}
_queries: dict[tuple, object] = {}


def _ready_query(names: tuple[str, ...], limit: int):
    """The find-ready statement for a combination of candidate filters, built once."""
    query = _queries.get((names, limit))
    if query is None:
        query = _READY.where(*(_CANDIDATES[n] for n in names)).order_by(_T.c.id).limit(limit)
        _queries[(names, limit)] = query
    return query


def find_ready(session, *, task_ids: Iterable[int] | None = None, input_keys: Iterable[str] | None = None,
               metadata_source: int | None = None, job_id: int | None = None, after: int | None = None,
               limit: int = 5000) -> list[int]:
    """Ids of ready tasks among the candidates named (all waiting tasks when none is named);
    ``after``: the tasks that read an output or the metadata of that task. ``session`` is an
    ORM session or a Core connection."""
    given = {"task_ids": None if task_ids is None else list(task_ids),
             "input_keys": None if input_keys is None else list(input_keys),
             "metadata_source": metadata_source, "job_id": job_id, "after": after}
    params: dict[str, Any] = {k: v for k, v in given.items() if v is not None}
    if any(isinstance(v, list) and not v for v in params.values()):
        return []                                       # an empty candidate list names no task
    params["now"] = utcnow()
    return list(session.execute(_ready_query(tuple(n for n in _CANDIDATES if n in params), limit),
                                params).scalars())


_CLAIM = (update(_T).where(_T.c.id.in_(bindparam("ids", expanding=True)),
                          _T.c.state.in_(bindparam("from_states", expanding=True)))
          .values(state=QUEUED, attempt_count=_T.c.attempt_count + 1, retry_at=None)
          .returning(_T.c.id, _T.c.attempt_count, _T.c.task_type, _T.c.job_id))
_CLAIM_EXPECTED = _CLAIM.where(_T.c.attempt_count == bindparam("expected"))
# PostgreSQL: lock the candidates in id order first, so two claimers of overlapping batches
# queue behind each other instead of deadlocking (SQLite has one writer and ignores this).
_LOCK = (select(_T.c.id).where(_T.c.id.in_(bindparam("ids", expanding=True)),
                               _T.c.state.in_(bindparam("from_states", expanding=True)))
         .order_by(_T.c.id).with_for_update())
_NEW_ATTEMPTS = insert(_A).returning(_A.c.id, _A.c.task_id, sort_by_parameter_order=True)


def claim_in(conn, task_ids: Iterable[int], *, from_states: tuple[str, ...] = (WAITING,),
             expected_attempts: int | None = None) -> list[Ready]:
    """Create the next attempt of every task in ``task_ids`` that nobody else claimed, inside
    the open write transaction ``conn`` (a Core connection): a conditional UPDATE (``state`` in
    ``from_states`` -> queued, ``attempt_count`` + 1) whose RETURNING names the rows this caller
    won, and one INSERT of their attempts. Send their events only after the commit."""
    ids = sorted(set(task_ids))
    if not ids:
        return []
    params = {"ids": ids, "from_states": list(from_states)}
    if expected_attempts is not None:
        params["expected"] = expected_attempts
    if conn.dialect.name != "sqlite" and len(ids) > 1:
        conn.execute(_LOCK, params)
    won = conn.execute(_CLAIM if expected_attempts is None else _CLAIM_EXPECTED, params).all()
    if not won:
        return []
    won.sort()
    now = utcnow()
    made = dict((task_id, attempt_id) for attempt_id, task_id in conn.execute(_NEW_ATTEMPTS, [
        {"task_id": w.id, "number": w.attempt_count, "state": A_QUEUED, "queued_at": now, "sent_at": now}
        for w in won]))
    return [Ready(w.id, made[w.id], w.task_type, w.job_id) for w in won]


def claim_many(db, task_ids: Iterable[int], *, from_states: tuple[str, ...] = (WAITING,),
               expected_attempts: int | None = None) -> list[Ready]:
    """:func:`claim_in` in a transaction of its own."""
    ids = list(task_ids)
    if not ids:
        return []
    with db.begin() as conn:
        return claim_in(conn, ids, from_states=from_states, expected_attempts=expected_attempts)


def claim(db, task_id: int, *, from_states: tuple[str, ...] = (WAITING,),
          expected_attempts: int | None = None) -> Ready | None:
    """Create the next attempt of ``task_id`` if nobody else did; None when another claimer won."""
    won = claim_many(db, [task_id], from_states=from_states, expected_attempts=expected_attempts)
    return won[0] if won else None


def claim_ready_in(conn, **candidates) -> tuple[list[Ready], list[int]]:
    """Find the ready tasks among the candidates and claim the first :data:`CLAIM_BATCH` of
    them in the open write transaction ``conn``; (claimed, ids left for later batches)."""
    ids = find_ready(conn, **candidates)
    return claim_in(conn, ids[:CLAIM_BATCH]), ids[CLAIM_BATCH:]


def schedule(db, send: Send, **candidates) -> list[Ready]:
    """Claim every ready task among the candidates (:func:`find_ready`) and send its
    ``task.ready``. With candidates named, finding and claiming the first batch is one write
    transaction; without (a scan of every waiting task), the scan is a read of its own. Then
    one write transaction per further :data:`CLAIM_BATCH` tasks; events go after each commit."""
    if candidates:
        with db.begin() as conn:
            claimed, rest = claim_ready_in(conn, **candidates)
    else:
        with db.connect() as conn:
            claimed, rest = [], find_ready(conn)
    return send_claimed(db, send, claimed, rest)


def send_claimed(db, send: Send, claimed: list[Ready], rest: Sequence[int] = ()) -> list[Ready]:
    """Send the ``task.ready`` of claimed tasks, then claim and send ``rest`` batch by batch."""
    for ready in claimed:
        send(ready.event())
    claimed = list(claimed)
    for i in range(0, len(rest), CLAIM_BATCH):
        batch = claim_many(db, rest[i:i + CLAIM_BATCH])
        for ready in batch:
            send(ready.event())
        claimed += batch
    return claimed


def after_task(db, send: Send, task_id: int) -> list[Ready]:
    """A task ended: schedule what waited on its outputs or its metadata."""
    return schedule(db, send, after=task_id)


# ---------------------------------------------------------------------- reconcile
def backoff_s(base_s: float, attempts_made: int) -> float:
    """Wait before the retry that follows attempt ``attempts_made`` (1, 2, ...): exponential."""
    return base_s * 2 ** max(0, attempts_made - 1)


def schedule_retry(session, task_id: int, attempts_made: int, *, max_attempts: int,
                   backoff_base_s: float) -> bool:
    """Put a task whose latest attempt was lost back to waiting, due after the backoff; or fail
    it when it had ``max_attempts`` already. Returns True when a retry was scheduled."""
    if attempts_made >= max_attempts:
        session.execute(update(Task).where(Task.id == task_id, Task.attempt_count == attempts_made)
                        .values(state=FAILED))
        return False
    due = utcnow() + dt.timedelta(seconds=backoff_s(backoff_base_s, attempts_made))
    done = session.execute(update(Task).where(Task.id == task_id, Task.attempt_count == attempts_made,
                                              Task.state.in_((RUNNING, QUEUED, FAILED)))
                           .values(state=WAITING, retry_at=due))
    return done.rowcount == 1


#: Request limit [s] assumed for a task type whose Service's limit is not known: the largest a
#: default Knative install allows.
DEFAULT_REQUEST_LIMIT_S = 600.0


def _lost_text(number: int, task_id: int, started, beat, limit_s: float, stall_s: float,
               heartbeat_s: float) -> tuple[str, str]:
    """(error kind, error text) of an attempt given up by the reconcile tick.

    The heartbeat beats every ``heartbeat_s`` while the science runs; when it was still alive at
    the Service's request limit (its last beat less than two intervals before it), the request
    was cut there (the replica stopped with it): the attempt timed out, and would again.
    Otherwise it was lost (killed, frozen, the node gone).
    """
    ran_s = (beat - started).total_seconds() if started is not None and beat is not None else 0.0
    if limit_s > 0 and ran_s >= limit_s - 2 * heartbeat_s:
        return "timeout", (f"timeout: attempt {number} of task {task_id} ran {ran_s:.1f} s (heartbeat alive from "
                           f"{started.isoformat()} to {beat.isoformat()}), up to the request limit of "
                           f"{limit_s:g} s, and was then cut off with the request")
    return "infrastructure", (f"stalled: no heartbeat since {beat.isoformat()} (limit {stall_s:g} s); "
                              "the attempt is presumed lost")


def recover_stalled(db, *, stall_s: float, max_attempts: int, backoff_base_s: float,
                    request_limits: Mapping[str, float] | None = None,
                    default_limit_s: float = DEFAULT_REQUEST_LIMIT_S, heartbeat_s: float = 30.0) -> int:
    """Give up attempts whose heartbeat is older than ``stall_s``; their tasks are retried after
    a backoff (claimed by :func:`schedule` once due) up to ``max_attempts`` attempts in all.

    An attempt whose heartbeat lived until the request limit of its task type
    (``request_limits``, else ``default_limit_s``) is recorded as a ``timeout`` instead, and its
    task fails without a retry unless the task asks for one (``retry_timeouts: true``): a
    deterministic timeout would only time out again.
    """
    limits = request_limits or {}
    cutoff = utcnow() - dt.timedelta(seconds=stall_s)
    with db.read() as s:
        stale = s.execute(select(Attempt.id, Attempt.task_id, Attempt.number, Attempt.started_at,
                                 Attempt.heartbeat_at, Task.task_type, Task.params)
                          .join(Task, Task.id == Attempt.task_id)
                          .where(Attempt.state == A_RUNNING, Attempt.heartbeat_at < cutoff)).all()
    retried = 0
    for attempt_id, task_id, number, started, beat, task_type, params in stale:
        kind, text = _lost_text(number, task_id, started, beat, limits.get(task_type, default_limit_s), stall_s,
                               heartbeat_s)
        with db.session() as s:
            gone = s.execute(update(Attempt).where(Attempt.id == attempt_id, Attempt.state == A_RUNNING,
                                                   Attempt.heartbeat_at < cutoff)
                             .values(state=A_FINISHED, ended_at=utcnow(), error=True,
                                     error_kind=kind, error_text=text))
            if gone.rowcount != 1:
                continue
            if kind == "timeout" and not retry_timeouts(params):
                s.execute(update(Task).where(Task.id == task_id, Task.attempt_count == number,
                                             Task.state.in_((RUNNING, QUEUED))).values(state=FAILED))
                again, what = False, "timed out; not retried (the task does not set retry_timeouts)"
            else:
                again = schedule_retry(s, task_id, number, max_attempts=max_attempts, backoff_base_s=backoff_base_s)
                what = ("timed out" if kind == "timeout" else "stalled") + "; " + (
                    "retrying after backoff" if again else "no attempts left")
            s.add(LogMessage(attempt_id=attempt_id, severity="ERROR",
                             text=f"attempt {number} of task {task_id} {what}"))
            retried += int(again)
    return retried


def retry_timeouts(params) -> bool:
    """Whether a task asks for its timed-out attempts to be retried (task key ``retry_timeouts``)."""
    return isinstance(params, dict) and params.get("retry_timeouts") is True


def resend_unstarted(db, send: Send, *, redeliver_s: float, max_unanswered: int = 0,
                     max_attempts: int = 3, backoff_base_s: float = 30.0) -> int:
    """Send ``task.ready`` again for attempts queued longer than ``redeliver_s`` (lost events).

    Bounded: a send counts as *unanswered* when, since it, no attempt at all started or
    heartbeat: nothing ran, so the attempt's function is not taking work (not deployed, failing
    to start, refusing every request) and nothing else holds the CPU or the replicas it waits
    for. A queued attempt that waits while others run (a long queue behind one TLS replica, or
    behind other functions' requests for the node's CPU) is resent with its count reset; the
    wait ends as the work ahead of it ends. At ``max_unanswered`` unanswered sends (0 = no
    bound) the attempt is given up as an infrastructure failure naming the sends and the time,
    and its task is retried after the backoff up to ``max_attempts`` attempts in all, like a
    stalled one. So a function that cannot start is resent while other work runs, and given up
    within ``max_unanswered`` sends once nothing else does.

    Why not judge by the task type alone: the embedded runtime admits requests by node CPU,
    first come first served across functions, so a QATS request may rightly wait behind an hour
    of syntheses and TLS searches while no QATS attempt starts.
    """
    now = utcnow()
    cutoff = now - dt.timedelta(seconds=redeliver_s)
    with db.read() as s:
        rows = s.execute(select(Attempt.id, Attempt.task_id, Attempt.number, Task.task_type, Task.job_id,
                                Attempt.sent_at, Attempt.unanswered_sends, Attempt.queued_at)
                         .join(Task, Task.id == Attempt.task_id)
                         .where(Attempt.state == A_QUEUED, Attempt.sent_at < cutoff)).all()
        if not rows:
            return 0
        # the last sign of any attempt running: a start, or a running attempt's heartbeat (a
        # queued attempt has neither, so the attempt judged is never its own answer)
        started, beat = s.execute(select(func.max(Attempt.started_at),
                                         select(func.max(Attempt.heartbeat_at))
                                         .where(Attempt.state == A_RUNNING).scalar_subquery())).one()
    last_run = max((t for t in (started, beat) if t is not None), default=None)
    sent = 0
    for attempt_id, task_id, number, task_type, job_id, sent_at, unanswered, queued_at in rows:
        answered = last_run is not None and last_run >= sent_at
        unanswered = 0 if answered else (unanswered or 0) + 1
        if max_unanswered and unanswered >= max_unanswered:
            _give_up_unstarted(db, attempt_id, task_id, number, task_type, unanswered,
                               (now - (queued_at or sent_at)).total_seconds(), max_attempts, backoff_base_s)
            continue
        if send(Ready(task_id, attempt_id, task_type, job_id).event()):
            with db.session() as s:
                s.execute(update(Attempt).where(Attempt.id == attempt_id, Attempt.state == A_QUEUED)
                          .values(sent_at=utcnow(), unanswered_sends=unanswered))
            sent += 1
    return sent


def _give_up_unstarted(db, attempt_id: int, task_id: int, number: int, task_type: str, sends: int,
                       waited_s: float, max_attempts: int, backoff_base_s: float) -> None:
    text = (f"never started: {sends} sends of task.ready over {waited_s:.0f} s went unanswered, with "
            f"no attempt started or running meanwhile; the function of task type {task_type!r} takes "
            "nothing (is its Service deployed and ready? its delivery failures are in the dead letters)")
    with db.session() as s:
        gone = s.execute(update(Attempt).where(Attempt.id == attempt_id, Attempt.state == A_QUEUED)
                         .values(state=A_FINISHED, ended_at=utcnow(), error=True,
                                 error_kind="infrastructure", error_text=text, unanswered_sends=sends))
        if gone.rowcount != 1:
            return          # it started meanwhile
        again = schedule_retry(s, task_id, number, max_attempts=max_attempts, backoff_base_s=backoff_base_s)
        s.add(LogMessage(attempt_id=attempt_id, severity="ERROR",
                         text=f"attempt {number} of task {task_id} never started; "
                              + ("retrying after backoff" if again else "no attempts left")))


def reconcile(db, send: Send, *, stall_s: float, redeliver_s: float, max_attempts: int,
              backoff_base_s: float, request_limits: Mapping[str, float] | None = None,
              default_limit_s: float = DEFAULT_REQUEST_LIMIT_S, heartbeat_s: float = 30.0,
              max_unanswered_sends: int = 0) -> dict:
    retried = recover_stalled(db, stall_s=stall_s, max_attempts=max_attempts, backoff_base_s=backoff_base_s,
                              request_limits=request_limits, default_limit_s=default_limit_s,
                              heartbeat_s=heartbeat_s)
    resent = resend_unstarted(db, send, redeliver_s=redeliver_s, max_unanswered=max_unanswered_sends,
                              max_attempts=max_attempts, backoff_base_s=backoff_base_s)
    claimed = schedule(db, send)
    return {"retried": retried, "resent": resent, "claimed": len(claimed)}
