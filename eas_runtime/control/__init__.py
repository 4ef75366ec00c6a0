"""eas-control: the trigger filter that decides which tasks are ready.

It subscribes to ``product.created``, ``job.submitted``, ``task.finished``/``task.failed`` and
the reconcile tick (PingSource). Every handler tolerates duplicate delivery: uploads and
submissions are remembered by event ``source`` + ``id``, and scheduling is a claim that only
one caller can win.
"""
from __future__ import annotations

import functools
import json
import logging
import threading

from sqlalchemy import bindparam, insert, select
from sqlalchemy.exc import IntegrityError

from eas_runtime import events
from eas_runtime._serving import TIMEOUT_SECONDS_DEFAULT
from eas_runtime.control import flow, scheduler, watch
from eas_runtime.db.models import DeadLetter, Job, ProcessedEvent, ProductVersion, Task, utcnow
from eas_runtime.db.products import ensure_product_id
from eas_runtime.jobs import JobError, compile_job, insert_job
from eas_runtime.resources import Resources

log = logging.getLogger("eas.control")


@functools.lru_cache(maxsize=1)
def request_limits() -> dict[str, float]:
    """Request limit [s] of each task type's Service, from the function descriptors when this
    installation has them (the embedded runtime; a cluster's eas-control image has none and
    falls back to ``EAS_TIMEOUT_S`` or Knative's largest default)."""
    from eas_runtime.deploy.descriptor import function_descriptor_paths, load_function
    from eas_runtime.settings import PROJECT_ROOT
    limits: dict[str, float] = {}
    try:
        paths = function_descriptor_paths(PROJECT_ROOT)
    except OSError:
        return limits
    for path in paths:
        try:
            desc = load_function(path, PROJECT_ROOT)
        except Exception as exc:  # noqa: BLE001 - one bad descriptor must not stop reconciling
            log.warning("descriptor %s not read: %s", path, exc)
            continue
        for task_type in desc.task_types:
            limits[task_type] = float(desc.timeout_s or TIMEOUT_SECONDS_DEFAULT)
    return limits
_PE, _PV = ProcessedEvent.__table__, ProductVersion.__table__
_SEEN = select(_PE.c.handler).where(_PE.c.handler == bindparam("handler"), _PE.c.event_key == bindparam("event_key"))
_REMEMBER = insert(_PE)
_UPLOADED = insert(_PV)


class Control:
    def __init__(self, resources: Resources):
        self.res = resources
        self.db = resources.db
        self._reply = threading.local()

    def handle_with_reply(self, event) -> tuple[dict, object | None]:
        """:meth:`handle`, keeping the first event it would send as the reply to answer with
        (the rest are sent); ``(summary, reply or None)``. Used when the broker asks for a
        reply (``Prefer: reply``): it stores the reply with the delivery, one request fewer."""
        slot: list = []
        self._reply.slot = slot
        try:
            summary = self.handle(event)
        except BaseException:
            if slot:            # the claim is committed: its task.ready must not be lost
                self.res.try_send(slot[0])
            raise
        finally:
            self._reply.slot = None
        return summary, (slot[0] if slot else None)

    # ------------------------------------------------------------------ dispatch
    def handle(self, event) -> dict:
        kind = event["type"]
        if kind == events.PRODUCT_CREATED:
            return self.on_product(event)
        if kind == events.JOB_SUBMITTED:
            return self.on_job(event)
        if kind in (events.TASK_FINISHED, events.TASK_FAILED):
            return self.on_task_end(event)
        if kind in (events.RECONCILE, events.PING):
            return self.reconcile()
        if flow.is_control_ready(event):        # a control-flow task: eas-control runs it
            return {"task_id": event.get("taskid"), "claimed": len(self._run_control(event))}
        raise events.EventError(f"eas-control does not handle events of type {kind!r}")

    def send(self, event) -> bool:
        """Post ``event`` to the broker; ``task.ready`` of a control-flow task is run here
        instead (no function serves those types; see :mod:`eas_runtime.control.flow`)."""
        if flow.is_control_ready(event):
            self._run_control(event)
            return True
        slot = getattr(self._reply, "slot", None)
        if slot is not None and not slot:
            slot.append(event)
            return True
        return self.res.try_send(event)

    def _run_control(self, event) -> list:
        try:
            task_id, attempt_id = int(event["taskid"]), int(event["attemptid"])
        except (KeyError, TypeError, ValueError):
            raise events.EventError(f"task.ready event {event['id']!r} needs integer taskid and attemptid") from None
        return flow.execute(self.db, self.send, task_id, attempt_id, stat=self.res.store.stat)

    # ------------------------------------------------------------------ product.created
    def on_product(self, event) -> dict:
        data = events.data_of(event)
        key = data.get("key")
        if not isinstance(key, str) or not key:
            raise events.EventError(f"product.created event {event['id']!r} has no object key in its data")
        meta = data.get("metadata") or {}
        jobs_created, recorded = 0, None
        if "eas-attempt-id" not in meta:        # an upload from outside, not a pipeline output
            jobs_created, recorded = self._record_upload(event, key, data)
        if recorded is None:                    # an output, or an upload recorded before
            claimed = scheduler.schedule(self.db, self.send, input_keys=[key])
        else:
            claimed = scheduler.send_claimed(self.db, self.send, *recorded)
        return {"key": key, "jobs": jobs_created, "claimed": len(claimed)}

    def _record_upload(self, event, key: str, data: dict) -> tuple[int, tuple | None]:
        """Record the upload and make its watch rules' jobs; claim what it made ready in the
        same transaction. (jobs created, (claimed, ids left) or None for a repeated event)."""
        event_key = f"{event['source']} {event['id']}"
        created = 0
        with self.db.session() as s:
            conn = s.connection()       # prebuilt Core statements in the session's transaction
            if conn.execute(_SEEN, {"handler": "product", "event_key": event_key}).first() is not None:
                return 0, None
            now = utcnow()
            conn.execute(_REMEMBER, {"handler": "product", "event_key": event_key, "time": now})
            product_id, _ = ensure_product_id(conn, key, semantic_type="upload")
            conn.execute(_UPLOADED, {"product_id": product_id, "attempt_id": None, "event_id": event["id"],
                                     "etag": str(data.get("etag", "")), "size": int(data.get("size") or 0),
                                     "object_version": data.get("version_id"), "passed_qc": True,
                                     "created_at": now})
            for rule in watch.matching_rules(conn, key):
                try:
                    compiled = watch.job_for_upload(rule, key, str(data.get("etag", "")))
                    with s.begin_nested():
                        _, made = insert_job(s, compiled, source_event=f"watch:{rule.id}:{compiled.working_directory}",
                                             spec={"watch_rule": rule.prefix, "object": key},
                                             stat=self.res.store.stat)
                    created += int(made)
                except (JobError, IntegrityError) as exc:
                    # Kept, not retried: the same upload would be refused again (e.g. a template
                    # expression that fails for this object, or outputs another job plans).
                    log.warning("upload %s: no job from watch rule %r: %s", key, rule.prefix, exc)
                    s.add(DeadLetter(component="control", reason=f"upload {key}: no job from watch rule "
                                     f"{rule.prefix!r}: {exc}"[:10_000], event_id=str(event["id"]),
                                     event_type=str(event["type"])))
            s.flush()
            recorded = scheduler.claim_ready_in(conn, input_keys=[key])
        return created, recorded

    # ------------------------------------------------------------------ job.submitted
    def on_job(self, event) -> dict:
        spec = events.data_of(event)
        source_event = f"{event['source']} {event['id']}"
        with self.db.read() as s:        # a duplicate delivery: schedule, but do not compile again
            known = s.scalar(select(Job.id).where(Job.source_event == source_event))
        if known is not None:
            claimed = scheduler.schedule(self.db, self.send, job_id=known)
            return {"job_id": known, "created": False, "claimed": len(claimed)}
        try:
            compiled = compile_job(spec)
            with self.db.session() as s:
                job, created = insert_job(s, compiled, source_event=source_event, spec=spec,
                                          stat=self.res.store.stat)
                job_id = job.id
        except JobError as exc:
            self.dead_letter("control", f"job rejected: {exc}", event)
            return {"rejected": str(exc)}
        claimed = scheduler.schedule(self.db, self.send, job_id=job_id)
        return {"job_id": job_id, "created": created, "tasks": len(compiled.tasks), "claimed": len(claimed)}

    # ------------------------------------------------------------------ task.finished / failed
    def on_task_end(self, event) -> dict:
        task_id = event.get("taskid")
        try:
            task_id = int(task_id)
        except (TypeError, ValueError):
            raise events.EventError(f"{event['type']} event {event['id']!r} needs an integer 'taskid'") from None
        retried = False
        if event["type"] == events.TASK_FAILED:
            retried = self._retry_science_failure(task_id, event)
        claimed = flow.release(self.db, self.send, task_id)
        return {"task_id": task_id, "claimed": len(claimed), "retried": retried}

    def _retry_science_failure(self, task_id: int, event) -> bool:
        """A science failure is retried only when the job asks for it (task key
        ``retry_science_failures: true``), a timeout likewise (``retry_timeouts: true``: the
        same input would run as long again); a lost attempt is retried by the reconcile tick."""
        kind = events.data_of(event).get("error_kind")
        if kind not in ("science", "timeout"):
            return False
        st = self.res.settings
        with self.db.session() as s:
            task = s.get(Task, task_id)
            if task is None:
                return False
            if kind == "timeout" and not scheduler.retry_timeouts(task.params):
                return False
            if kind == "science" and not (task.retry_science_failures
                                          or (task.params or {}).get("retry_science_failures")):
                return False
            return scheduler.schedule_retry(s, task_id, task.attempt_count, max_attempts=st.max_attempts,
                                            backoff_base_s=st.retry_backoff_s)

    # ------------------------------------------------------------------ reconcile
    def reconcile(self) -> dict:
        st = self.res.settings
        flushed = 0
        store = self.res.store
        if hasattr(store, "flush_events"):
            flushed = store.flush_events()
        flow.configure(self.db)                 # tasks whose parameters read metadata of finished tasks
        summary = scheduler.reconcile(self.db, self.send, stall_s=st.stall_s, redeliver_s=st.redeliver_s,
                                      max_attempts=st.max_attempts, backoff_base_s=st.retry_backoff_s,
                                      request_limits=request_limits(), heartbeat_s=st.heartbeat_s,
                                      default_limit_s=st.timeout_s or scheduler.DEFAULT_REQUEST_LIMIT_S)
        summary["store_events_flushed"] = flushed
        return summary

    # ------------------------------------------------------------------ dead letters
    def dead_letter(self, component: str, reason: str, event=None, payload: str = "") -> None:
        if event is not None and not payload:
            try:
                payload = json.dumps({"attributes": dict(event.get_attributes()), "data": event.data},
                                     default=str)
            except Exception:  # noqa: BLE001
                payload = repr(event)
        with self.db.session() as s:
            s.add(DeadLetter(component=component, reason=reason[:10_000],
                             event_id=str(event["id"]) if event is not None else "",
                             event_type=str(event["type"]) if event is not None else "",
                             payload=payload[:100_000]))
