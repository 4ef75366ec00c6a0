"""The embedded broker: a durable delivery queue with Knative's retry and dead-letter rules.

Every accepted event becomes one ``deliveries`` row per matching Trigger, written in one
transaction (:meth:`Broker.ingest`). Worker threads take due ``pending`` rows, POST the event to
the Trigger's subscriber and judge the answer as Knative does (:func:`.dispatch.judge`):

- 2xx with an empty body: delivered. 2xx carrying a CloudEvent: delivered, and the reply is
  ingested into the same Broker in the same transaction (so a reply is never lost, and a reply
  the broker cannot store makes the delivery fail and be retried). 2xx with any other body:
  a failure reported as 502, retried.
- 5xx, 404, 408, 409, 429 and no response (network error, timeout): retried, up to
  ``delivery.retry`` times, waiting :meth:`~.config.DeliverySpec.backoff_s` between attempts
  (the row's ``due_at``; the wait survives a restart).
- Any other status: not retried.

When the attempts are spent, the original event goes to the dead-letter sink with Knative's
``knativeerrordest``, ``knativeerrorcode`` and ``knativeerrordata`` (base64 of the response
body, at most 1024 characters) extensions, itself retried under the same delivery rules, and
the row becomes ``dead``. Without a dead-letter sink, or when the sink fails too, a
``dead_letters`` row (component ``broker``) keeps the event and the reason.

Rows are durable: ``pending`` rows left by a stopped broker are delivered by the next one. Within
one broker a row is never handed to two workers.

Every attempt counts against the Trigger's budget (``1 + delivery.retry``), also one that fails
inside the broker before or after the HTTP request (an event that cannot be encoded, a reply
that cannot be stored, any bug): it is recorded as a failed attempt (``[500] attempt n failed in
the broker: ...``) and retried after the backoff; when the budget is spent the row is ``dead``
and ``dead_letters`` keeps the stored event and the reason. A row read back from the table (after
a restart) has its attempt recorded before it is made, so an event that kills the process cannot
be retried without bound either, and a restart does not reset the count. Only an unavailable
database (:class:`DatabaseUnavailable`) leaves a row pending without counting: nothing can be
recorded, and the row is retried when the database is back.

Each Trigger has its own lane of at most ``workers`` rows in flight (:class:`._queue.DueQueue`),
and the broker keeps one worker thread spare (up to ``workers`` per Trigger), so a subscriber
that holds its requests for minutes delays only its own Trigger's deliveries. The broker keeps an in-memory index of its
pending rows (:class:`._queue.DueQueue`, rebuilt from the table at start) with the events it
stored itself, so a worker neither queries for the next row nor decodes the stored JSON again.
Workers sleep on a condition variable: an insert wakes them at once; otherwise they sleep until
the earliest ``due_at``. All statements are prebuilt Core statements.

Each attempt of a row's event is recorded in ``deliveries.tries``; ``last_error`` starts with the
status Knative would report in brackets, e.g. ``[503] http://... answered 503: ...``.
"""
from __future__ import annotations

import base64
import collections
import datetime as dt
import logging
import os
import threading
import time
from typing import Any, Mapping, NamedTuple, Optional, Protocol, cast

from cloudevents.http import CloudEvent
from sqlalchemy import CursorResult, bindparam, case, delete, func, insert, select, update

from eas_runtime.db.models import DeadLetter, Delivery, utcnow
from eas_runtime.db.session import Database, DatabaseUnavailable, database
from eas_runtime.settings import Settings

from . import wire
from ._queue import DueQueue, Row
from .config import Config, DeliverySpec, TriggerConfig, load_config
from .dispatch import NO_RESPONSE, HttpDispatcher, Outcome, describe, judge, no_response

log = logging.getLogger(__name__)

PENDING, DELIVERED, DEAD = "pending", "delivered", "dead"
#: Per-attempt timeout when the delivery spec sets none. Knative sets no timeout of its own;
#: Knative Serving cuts a request at the revision's timeoutSeconds (at most 600 s by default),
#: so 10 minutes lets a long science run answer while still bounding a hung subscriber.
DEFAULT_TIMEOUT_S = 600.0
#: Pause of a worker whose row could not be processed (database outage, unexpected error).
HOLD_OFF_S = 1.0


_D, _DL = Delivery.__table__, DeadLetter.__table__
_INSERT = insert(_D).returning(_D.c.id, sort_by_parameter_order=True)
_LETTER = insert(_DL)
_PENDING = select(_D.c.id, _D.c.due_at, _D.c.trigger).where(_D.c.state == PENDING)
_ROW = select(_D.c.id, _D.c.trigger, _D.c.tries, _D.c.last_error, _D.c.event_type, _D.c.payload,
              _D.c.state).where(_D.c.id == bindparam("row_id"))
_DELIVERED = update(_D).where(_D.c.id == bindparam("row_id")).values(
    state=DELIVERED, tries=bindparam("tries"), last_error="", due_at=bindparam("now"))
_FAILED = update(_D).where(_D.c.id == bindparam("row_id")).values(
    tries=bindparam("tries"), last_error=bindparam("error"), due_at=bindparam("due"))
_STARTED = update(_D).where(_D.c.id == bindparam("row_id"), _D.c.state == PENDING).values(
    tries=bindparam("tries"), last_error=bindparam("error"))
_FAILED_FINALLY = update(_D).where(_D.c.id == bindparam("row_id")).values(
    tries=bindparam("tries"), last_error=bindparam("error"))
_DEAD = update(_D).where(_D.c.id == bindparam("row_id")).values(
    state=DEAD, last_error=bindparam("error"), due_at=bindparam("now"),
    tries=case((_D.c.tries > bindparam("tries"), _D.c.tries), else_=bindparam("tries")))


class Dispatcher(Protocol):
    def post(self, destination: Mapping[str, Any], headers: Mapping[str, str], body: bytes,
             timeout: float | None) -> tuple[int, Mapping[str, str], bytes]: ...


class Attempt(NamedTuple):
    """One attempt to a subscriber, as recorded in :attr:`Broker.attempts` (newest last)."""
    delivery_id: int
    trigger: str
    event_id: str
    #: 1 for the first attempt, 2 for the first retry, ...
    number: int
    #: The status Knative would report (see :class:`.dispatch.Outcome`).
    status: int
    #: ``delivered``, ``retry`` or ``fail``.
    verdict: str
    #: Seconds the broker scheduled before the next attempt; ``None`` when none follows.
    next_delay_s: Optional[float]


class Broker:
    """A Knative-like Broker over the task database's ``deliveries`` table.

    ``config`` defaults to :func:`.config.load_config` of ``settings.broker_config_dir``;
    ``dispatcher`` to :class:`.dispatch.HttpDispatcher`; ``workers``, the rows each Trigger may
    have in flight at once, to 4 x cores (deliveries mostly wait on functions). Worker threads
    are started as needed, one kept spare, up to ``workers`` per Trigger. The schema must exist
    (``Database.create_schema``).
    """

    def __init__(self, settings: Settings, db: Database | None = None, config: Config | None = None,
                 dispatcher: Dispatcher | None = None, *, workers: int | None = None,
                 default_timeout_s: float = DEFAULT_TIMEOUT_S, history: int = 10000):
        self.settings = settings
        self.db = db or database(settings.db_url)
        self.config = config if config is not None else load_config(settings.broker_config_dir)
        self.dispatcher = dispatcher or HttpDispatcher()
        self.workers = workers or 4 * (os.cpu_count() or 1)
        self.default_timeout_s = default_timeout_s
        #: Recent attempts to subscribers, oldest first (bounded).
        self.attempts: collections.deque[Attempt] = collections.deque(maxlen=history)
        self._queue = DueQueue(self.workers)
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._threads_lock = threading.Lock()

    # ------------------------------------------------------------------ brokers
    @property
    def default_broker(self) -> str:
        """Key of the Broker in-process producers send to: ``eas/default`` when defined, else
        the only Broker."""
        if "eas/default" in self.config.brokers or not self.config.brokers:
            return "eas/default"
        return next(iter(self.config.brokers))

    def has_broker(self, namespace: str, name: str) -> bool:
        return f"{namespace}/{name}" in self.config.brokers

    # ------------------------------------------------------------------ ingest
    def ingest(self, event: CloudEvent, broker: str | None = None) -> int:
        """Accept an event into a Broker (``namespace/name``; default :attr:`default_broker`):
        one ``pending`` row per matching Trigger, in one transaction. Returns the number of rows.
        Raises ``DatabaseUnavailable`` (callers answer 503) and ``KeyError`` for an unknown
        Broker."""
        key = broker or self.default_broker
        if key not in self.config.brokers:
            raise KeyError(f"no Broker {key!r} (known: {', '.join(self.config.brokers) or 'none'})")
        with self.db.begin() as conn:
            rows = self._ingest_in(conn, event, key)
        self._queue.push(((r.id, time.time(), r.trigger) for r in rows), rows)
        return len(rows)

    def _ingest_in(self, conn, event: CloudEvent, broker_key: str) -> list[Row]:
        """Add the delivery rows of ``event`` in an open write transaction (a Core connection);
        the caller queues them once committed."""
        raw_ttl = event.get(wire.TTL_EXTENSION)
        try:
            ttl = wire.DEFAULT_TTL if raw_ttl is None else int(raw_ttl)
        except (TypeError, ValueError):
            ttl = wire.DEFAULT_TTL
        ttl -= 1
        if ttl <= 0:
            reason = (f"event {event['id']!r} of type {event['type']!r} reached Broker {broker_key} "
                      f"with its hop limit spent ({wire.TTL_EXTENSION}, {wire.DEFAULT_TTL} at the "
                      "first pass): probably a reply loop; dropped")
            log.error(reason)
            conn.execute(_LETTER, {"time": utcnow(), "component": "broker", "reason": reason,
                                   "event_id": str(event["id"]), "event_type": str(event["type"]),
                                   "payload": wire.to_payload(wire.replace(event, drop=(wire.TTL_EXTENSION,)))})
            return []
        hops: dict[str, Any] = {wire.TTL_EXTENSION: str(ttl)}
        stored = wire.replace(event, **hops)
        attrs = wire.attributes(event)
        attrs.pop(wire.TTL_EXTENSION, None)
        triggers = self.config.matching(broker_key, attrs)
        if not triggers:
            log.debug("event %s (%s): no Trigger of %s matches", event["id"], event["type"], broker_key)
            return []
        payload, key, now = wire.to_payload(stored), wire.event_key(event), utcnow()
        event_type = str(event["type"])[:200]
        ids = conn.execute(_INSERT, [
            {"event_key": key, "event_type": event_type, "trigger": t.name, "payload": payload,
             "state": PENDING, "tries": 0, "due_at": now, "last_error": "", "created_at": now}
            for t in triggers]).scalars().all()
        log.debug("event %s (%s) -> %s", event["id"], event["type"], ", ".join(t.name for t in triggers))
        return [Row(row_id, t.name, 0, "", event_type, payload, stored) for row_id, t in zip(ids, triggers)]

    # ------------------------------------------------------------------ lifecycle
    def start(self) -> "Broker":
        """Start the worker threads (pending rows left by an earlier run are picked up)."""
        if any(t.is_alive() for t in self._threads):
            raise RuntimeError("broker already running (or its workers have not stopped yet)")
        self._stop.clear()
        with self.db.connect() as conn:
            self._queue.push((row_id, _epoch(due), trigger) for row_id, due, trigger in conn.execute(_PENDING))
        with self._threads_lock:
            self._threads = []
        for _ in range(min(self.workers, self._max_threads())):
            self._add_worker()
        log.info("broker started: %d workers per Trigger, brokers %s, %d triggers", self.workers,
                 ", ".join(self.config.brokers), len(self.config.triggers))
        return self

    def _max_threads(self) -> int:
        # Enough that every Trigger can fill its lane while the others fill theirs (+1: rows of
        # a Trigger no longer configured, which are dead-lettered).
        return self.workers * max(1, len(self.config.triggers)) + 1

    def _add_worker(self) -> None:
        with self._threads_lock:
            if self._stop.is_set() or len(self._threads) >= self._max_threads():
                return
            thread = threading.Thread(target=self._work, name=f"broker-worker-{len(self._threads)}",
                                      daemon=True)
            self._threads.append(thread)
        thread.start()

    def _keep_one_spare(self) -> None:
        """Start a worker when none is waiting: a row of another Trigger never waits for one."""
        if self._queue.waiting() == 0:
            self._add_worker()

    def stop(self, timeout: float = 10.0) -> None:
        """Stop the workers. A worker busy with a request finishes it (up to ``timeout`` in
        total); a row it could not finish stays ``pending`` for the next start."""
        self._stop.set()
        self._queue.wake_all()
        deadline = time.monotonic() + timeout
        with self._threads_lock:
            threads = list(self._threads)
        for thread in threads:
            thread.join(max(0.0, deadline - time.monotonic()))
        alive = [t.name for t in threads if t.is_alive()]
        if alive:
            log.warning("broker stopped with %d worker(s) still waiting on a subscriber", len(alive))

    def __enter__(self) -> "Broker":
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    # ------------------------------------------------------------------ inspection
    def pending(self, trigger: str | None = None) -> int:
        """Rows not yet delivered or dead-lettered (in flight or waiting for a retry)."""
        query = select(func.count()).select_from(Delivery).where(Delivery.state == PENDING)
        if trigger is not None:
            query = query.where(Delivery.trigger == trigger)
        with self.db.read() as session:
            return int(session.execute(query).scalar_one())

    def counts(self) -> dict[str, int]:
        """Number of rows per state."""
        query = select(Delivery.state, func.count()).group_by(Delivery.state)
        with self.db.read() as session:
            return {state: int(n) for state, n in session.execute(query)}

    def wait_idle(self, timeout: float = 10.0) -> bool:
        """Wait until no row is pending and no worker is busy; False on timeout (for tests and
        the demo). Waits on a condition variable the workers notify, then checks the table."""
        deadline = time.monotonic() + timeout
        while True:
            if not self._queue.wait_idle(max(0.0, deadline - time.monotonic())):
                return False
            if self.pending() == 0:
                return True
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return False
            # Rows in the table that this broker has not indexed: it is not started.
            time.sleep(min(0.05, remaining))

    def prune(self, older_than_s: float) -> int:
        """Delete ``delivered`` rows finished more than ``older_than_s`` seconds ago (their
        ``due_at`` holds the time of delivery). Dead rows are kept. Returns the number deleted."""
        cutoff = utcnow() - dt.timedelta(seconds=older_than_s)
        with self.db.session() as session:
            result = session.execute(delete(Delivery).where(Delivery.state == DELIVERED,
                                                            Delivery.due_at < cutoff))
            return int(cast(CursorResult[Any], result).rowcount or 0)   # a DELETE's result

    # ------------------------------------------------------------------ workers
    def _work(self) -> None:
        while not self._stop.is_set():
            row_id = self._queue.take(self._stop)
            if row_id is None:
                continue
            self._keep_one_spare()
            again_at, row = None, None
            try:
                again_at, row = self._process(row_id)
            except DatabaseUnavailable as exc:
                log.warning("delivery %d could not be recorded (%s); it stays pending", row_id, exc)
                again_at, row = time.time() + HOLD_OFF_S, self._queue.row(row_id)
                self._stop.wait(HOLD_OFF_S)
            except Exception as exc:  # noqa: BLE001 - a worker must survive anything
                log.exception("delivery %d failed in the broker", row_id)
                again_at, row = self._crashed(row_id, exc)
            finally:
                self._queue.done(row_id, again_at=again_at, row=row)

    def _crashed(self, row_id: int, exc: Exception) -> tuple[float | None, Row | None]:
        """Count an attempt that raised inside the broker against the Trigger's budget: retry
        it after the backoff, or give the row up once the budget is spent. The count is kept
        in memory too, so the budget holds while the table cannot be written."""
        row = self._queue.row(row_id)
        try:
            row = row or self._load(row_id)
            if row is None:
                return None, None
            number = row.attempt or row.tries + 1
            trigger = self.config.triggers.get(row.trigger)
            budget = trigger.delivery.attempts if trigger is not None else 1
            error = f"[{NO_RESPONSE}] attempt {number} failed in the broker: {type(exc).__name__}: {exc}"[:2000]
            row.tries, row.attempt, row.last_error = number, 0, error
            event_id = str(row.event["id"]) if row.event is not None else ""
            if number >= budget:
                self.attempts.append(Attempt(row.id, row.trigger, event_id, number, NO_RESPONSE, "fail", None))
                self._give_up(row, f"{error} (attempt {number} of {budget}: the retry budget is spent)")
                return None, None
            assert trigger is not None      # without one the budget is 1, spent above
            delay = trigger.delivery.backoff_s(number - 1)
            self.attempts.append(Attempt(row.id, row.trigger, event_id, number, NO_RESPONSE, "retry", delay))
            with self.db.begin() as conn:
                conn.execute(_FAILED, {"row_id": row.id, "tries": number, "error": error,
                                       "due": utcnow() + dt.timedelta(seconds=delay)})
            return time.time() + delay, row
        except Exception as again:  # noqa: BLE001 - e.g. the database went away meanwhile
            log.error("delivery %d: the failed attempt could not be recorded (%s); it stays pending",
                      row_id, again)
            self._stop.wait(HOLD_OFF_S)
            return time.time() + HOLD_OFF_S, row

    def _give_up(self, row: Row, reason: str) -> None:
        """Mark a row dead and keep its stored event in ``dead_letters`` as it is (not encoded
        again: encoding may be what failed)."""
        event_id = event_type = ""
        if row.event is not None:
            event_id, event_type = str(row.event.get("id"))[:200], str(row.event.get("type"))[:200]
        log.error("delivery %d (%s -> %s) given up: %s", row.id, event_type or row.event_type, row.trigger, reason)
        with self.db.begin() as conn:
            conn.execute(_DEAD, {"row_id": row.id, "error": reason, "now": utcnow(), "tries": row.tries})
            conn.execute(_LETTER, {"time": utcnow(), "component": "broker",
                                   "reason": f"Trigger {row.trigger}: {reason}", "event_id": event_id,
                                   "event_type": event_type or row.event_type, "payload": row.payload})

    def _load(self, row_id: int) -> Row | None:
        """The row as the table has it, when still pending (after a restart)."""
        with self.db.connect() as conn:
            found = conn.execute(_ROW, {"row_id": row_id}).first()
        if found is None or found.state != PENDING:
            return None
        return Row(found.id, found.trigger, found.tries, found.last_error, found.event_type, found.payload)

    def _process(self, row_id: int) -> tuple[float | None, Row | None]:
        """Make one attempt; returns when to try again (``None``: finished) and the row."""
        row = self._queue.row(row_id)
        from_table = row is None
        if row is None:
            row = self._load(row_id)
            if row is None:
                return None, None
            self._queue.keep(row)       # for _crashed, which counts the attempt begun here
        row.attempt = row.tries + 1
        if row.event is None:
            try:
                row.event = wire.from_payload(row.payload)
            except Exception as exc:  # noqa: BLE001 - a row written by something else
                reason = f"stored event cannot be read: {type(exc).__name__}: {exc}"
                log.error("delivery %d: %s", row.id, reason)
                with self.db.begin() as conn:
                    conn.execute(_DEAD, {"row_id": row.id, "error": reason, "now": utcnow(), "tries": row.tries})
                    conn.execute(_LETTER, {"time": utcnow(), "component": "broker",
                                           "reason": f"Trigger {row.trigger}: {reason}", "event_id": "",
                                           "event_type": row.event_type, "payload": row.payload})
                return None, None
        event = row.event
        trigger = self.config.triggers.get(row.trigger)
        if trigger is None:
            self._finish_dead(row, event, f"Trigger {row.trigger!r} is no longer configured",
                              keep=True)
            return None, None
        spec = trigger.delivery
        target = describe(trigger.subscriber, trigger.namespace)
        if row.tries >= spec.attempts:
            # The attempts were spent by an earlier run that stopped before the dead-letter step.
            return self._dead_letter(row, trigger, event, _outcome_from_text(row.last_error), target), row
        tries = row.attempt
        if from_table:
            # Recorded before it is made: an attempt that kills the process still counts.
            with self.db.begin() as conn:
                conn.execute(_STARTED, {"row_id": row.id, "tries": tries, "error":
                                        f"[{NO_RESPONSE}] attempt {tries} has no recorded outcome "
                                        "(the broker stopped during it)"})
        outgoing = wire.replace(event, drop=(wire.TTL_EXTENSION,))
        headers, body = wire.encode(outgoing, spec.format)
        headers["Prefer"] = "reply"
        outcome = self._send(trigger.subscriber, headers, body, self._timeout(spec), target)
        if outcome.delivered:
            self._record(row, event, tries, outcome, None)
            self._finish_delivered(row, trigger, event, tries, outcome.reply)
            return None, None
        retry = outcome.verdict == "retry" and tries < spec.attempts
        delay = spec.backoff_s(tries - 1) if retry else None
        self._record(row, event, tries, outcome, delay)
        error = f"[{outcome.status}] {outcome.error}"
        with self.db.begin() as conn:
            if retry:
                assert delay is not None
                due = utcnow() + dt.timedelta(seconds=delay)
                conn.execute(_FAILED, {"row_id": row.id, "tries": tries, "error": error, "due": due})
            else:
                conn.execute(_FAILED_FINALLY, {"row_id": row.id, "tries": tries, "error": error})
        row.tries, row.last_error, row.attempt = tries, error, 0
        if retry:
            log.info("delivery %d (%s -> %s) attempt %d/%d failed, retry in %.3g s: %s", row.id,
                     event["type"], trigger.name, tries, spec.attempts, delay, outcome.error)
            return _epoch(due), row
        return self._dead_letter(row, trigger, event, outcome, target), row

    def _timeout(self, spec: DeliverySpec) -> float:
        return spec.timeout_s if spec.timeout_s is not None else self.default_timeout_s

    def _send(self, destination: Mapping[str, Any], headers: Mapping[str, str], body: bytes,
              timeout: float, target: str) -> Outcome:
        try:
            status, reply_headers, reply_body = self.dispatcher.post(destination, headers, body, timeout)
        except OSError as exc:  # ConnectionError, TimeoutError, requests.RequestException
            return no_response(target, f"{type(exc).__name__}: {exc}")
        except ValueError as exc:
            return Outcome("fail", NO_RESPONSE, f"cannot send to {target}: {exc}",
                           f"dispatch error: {exc}".encode())
        except Exception as exc:  # noqa: BLE001 - a broken dispatcher counts as no response
            log.exception("dispatcher failed on %s", target)
            return no_response(target, f"{type(exc).__name__}: {exc}")
        return judge(status, reply_headers or {}, reply_body or b"", target)

    def _record(self, row: Row, event: CloudEvent, number: int, outcome: Outcome,
                delay: float | None) -> None:
        self.attempts.append(Attempt(row.id, row.trigger, str(event["id"]), number, outcome.status,
                                     outcome.verdict, delay))

    def _finish_delivered(self, row: Row, trigger: TriggerConfig, event: CloudEvent,
                          tries: int, reply: CloudEvent | None) -> None:
        added: list[Row] = []
        with self.db.begin() as conn:
            conn.execute(_DELIVERED, {"row_id": row.id, "tries": tries, "now": utcnow()})
            if reply is not None:
                # The reply keeps the hop counter of the event it answers (Knative's filter does
                # the same), and the ingress decrements it.
                hops: dict[str, Any] = {wire.TTL_EXTENSION: event.get(wire.TTL_EXTENSION)}
                reply = wire.replace(reply, **hops)
                added = self._ingest_in(conn, reply, trigger.broker)
        if reply is not None:
            log.debug("delivery %d: reply %s (%s) -> %d deliveries", row.id, reply["id"],
                      reply["type"], len(added))
            self._queue.push(((r.id, time.time(), r.trigger) for r in added), added)

    # ------------------------------------------------------------------ dead letters
    def _dead_letter(self, row: Row, trigger: TriggerConfig, event: CloudEvent,
                     failure: Outcome, target: str) -> float | None:
        """Send the event to the dead-letter sink and mark the row dead. Returns ``None``, or
        when to try again if the broker stopped during the sink's backoff."""
        spec = trigger.delivery
        sink = spec.dead_letter_sink
        reason = row.last_error or f"[{failure.status}] {failure.error}"
        if not sink:
            log.error("delivery %d (%s -> %s) failed after %d attempt(s), no dead-letter sink: %s",
                      row.id, event["type"], trigger.name, row.tries, reason)
            self._finish_dead(row, event, f"{reason} (no dead-letter sink)", keep=True)
            return None
        sink_target = describe(sink, trigger.namespace)
        data = base64.b64encode(failure.body).decode("ascii")[:wire.ERROR_DATA_MAX]
        letter = wire.replace(event, drop=(wire.TTL_EXTENSION,), **{
            wire.ERROR_DEST: target, wire.ERROR_CODE: str(failure.status), wire.ERROR_DATA: data})
        headers, body = wire.encode(letter, spec.format)
        problem = ""
        for attempt in range(spec.attempts):
            result = self._send(sink, headers, body, self._timeout(spec), sink_target)
            if 200 <= result.status < 300:
                problem = ""
                break
            problem = f"[{result.status}] {result.error}"
            if result.verdict != "retry" or attempt + 1 >= spec.attempts:
                break
            if self._stop.wait(spec.backoff_s(attempt)):
                return time.time()  # stopping: the row stays pending and the next run dead-letters it
        if problem:
            log.error("delivery %d (%s -> %s) failed and the dead-letter sink %s failed too: %s; %s",
                      row.id, event["type"], trigger.name, sink_target, reason, problem)
            self._finish_dead(row, event, f"{reason}; dead-letter sink {sink_target} failed: {problem}",
                              keep=True)
        else:
            log.warning("delivery %d (%s -> %s) dead-lettered to %s after %d attempt(s): %s",
                        row.id, event["type"], trigger.name, sink_target, row.tries, reason)
            self._finish_dead(row, event, f"{reason} (sent to dead-letter sink {sink_target})",
                              keep=False)
        return None

    def _finish_dead(self, row: Row, event: CloudEvent, reason: str, keep: bool) -> None:
        """Mark a row dead; with ``keep``, also keep the event in ``dead_letters``."""
        with self.db.begin() as conn:
            conn.execute(_DEAD, {"row_id": row.id, "error": reason, "now": utcnow(), "tries": row.tries})
            if keep:
                conn.execute(_LETTER, {
                    "time": utcnow(), "component": "broker", "reason": f"Trigger {row.trigger}: {reason}",
                    "event_id": str(event["id"])[:200], "event_type": str(event["type"])[:200],
                    "payload": wire.to_payload(wire.replace(event, drop=(wire.TTL_EXTENSION,)))})


def _epoch(when: dt.datetime) -> float:
    """Seconds since the epoch of a stored (UTC) time."""
    return when.timestamp()


def _outcome_from_text(last_error: str) -> Outcome:
    """Rebuild a failure from ``last_error`` (``[status] message``) after a restart."""
    status, message = NO_RESPONSE, last_error or "unknown failure"
    if message.startswith("[") and "] " in message:
        code, rest = message[1:].split("] ", 1)
        if code.isdigit():
            status, message = int(code), rest
    return Outcome("fail", status, message, message.encode("utf-8"))
