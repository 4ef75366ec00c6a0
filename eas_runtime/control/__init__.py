"""eas-control: the trigger filter that decides which tasks are ready.

It subscribes to ``product.created``, ``job.submitted``, ``task.finished``/``task.failed`` and
the reconcile tick (PingSource). Every handler tolerates duplicate delivery: uploads and
submissions are remembered by event ``source`` + ``id``, and scheduling is a claim that only
one caller can win.
"""
from __future__ import annotations

import functools
import hashlib
import json
import logging
import threading

from sqlalchemy import bindparam, exists, insert, select, update
from sqlalchemy.exc import IntegrityError

from eas_runtime import events
from eas_runtime.manifests.serving_rules import TIMEOUT_SECONDS_DEFAULT
from eas_runtime.control import flow, scheduler, watch
from eas_runtime.db.models import (A_FINISHED, A_RUNNING, Attempt, DeadLetter, Job, ProcessedEvent, ProductVersion,
                                   Task, TaskInput, TaskOutput, utcnow)
from eas_runtime.db.products import ensure_product_id
from eas_runtime.jobs import JobError, admit, insert_job, reject_job, served_task_types
from eas_runtime.jobs.served import check_served
from eas_runtime.resources import Resources
from eas_runtime.store.base import MAX_OBJECT_SIZE, InvalidKey, check_key

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
_TI, _T = TaskInput.__table__, Task.__table__
_A, _TO = Attempt.__table__, TaskOutput.__table__
_OUTPUT_CLAIM = (select(_A.c.task_id, _A.c.state, _T.c.working_directory,
                        exists(select(_TO.c.id).where(_TO.c.task_id == _T.c.id, _TO.c.key == bindparam("key")))
                        .label("declared"))
                 .select_from(_A.join(_T, _T.c.id == _A.c.task_id)).where(_A.c.id == bindparam("attempt_id")))
_SEEN = select(_PE.c.handler).where(_PE.c.handler == bindparam("handler"), _PE.c.event_key == bindparam("event_key"))
_REMEMBER = insert(_PE)
_UPLOADED = insert(_PV).returning(_PV.c.id)
_PIN = (update(_TI).where(_TI.c.key == bindparam("pin_key"), _TI.c.version_id.is_(None),
                          _TI.c.task_id.in_(select(_T.c.id).where(_T.c.job_id == bindparam("job_id"))))
        .values(version_id=bindparam("version_id")))


def _bounded(text: str, limit: int) -> str:
    """``text`` when it fits a column of ``limit`` characters, else a stable digest of it (two
    deliveries of the same event still give the same value)."""
    return text if len(text) <= limit else "sha256:" + hashlib.sha256(text.encode("utf-8", "replace")).hexdigest()


def product_fields(event, data: dict) -> tuple[str, int, str, str | None, dict]:
    """Key, size, ETag, store version id and user metadata of a ``product.created`` event;
    :class:`events.EventError` naming the field when one is missing or of the wrong kind."""
    def bad(field: str, why: str) -> events.EventError:
        return events.EventError(f"product.created event {event['id']!r}: data field {field!r} {why}")
    key = data.get("key")
    if not isinstance(key, str) or not key:
        raise bad("key", "must be a non-empty string (the object key)")
    try:
        check_key(key)
    except InvalidKey as exc:
        raise bad("key", f"is not a usable object key: {exc}") from None
    size = data.get("size") or 0          # absent or null: unknown, recorded as 0
    if isinstance(size, bool) or not isinstance(size, int) or not 0 <= size <= MAX_OBJECT_SIZE:
        raise bad("size", f"must be an integer number of bytes in 0..{MAX_OBJECT_SIZE}, got {size!r:.60}")
    etag = data.get("etag", "")
    if not isinstance(etag, str) or len(etag) > 100:
        raise bad("etag", "must be a string of at most 100 characters")
    version = data.get("version_id")
    if version is not None and (not isinstance(version, str) or len(version) > 200):
        raise bad("version_id", "must be null or a string of at most 200 characters")
    meta = data.get("metadata") or {}
    if not isinstance(meta, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in meta.items()):
        raise bad("metadata", "must map strings to strings (S3 user metadata)")
    return key, size, etag, version or None, meta


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
        task_id, attempt_id = events.int_attribute(event, "taskid"), events.int_attribute(event, "attemptid")
        return flow.execute(self.db, self.send, task_id, attempt_id, stat=self.res.store.stat)

    # ------------------------------------------------------------------ product.created
    def on_product(self, event) -> dict:
        data = events.data_of(event)
        key, size, etag, version, meta = product_fields(event, data)
        jobs_created, recorded = 0, None
        if "eas-attempt-id" in meta:            # claims to be a pipeline output: check the claim
            problem, declared = self._output_claim(key, meta)
            if problem:
                self.dead_letter("control", f"object {key!r} not processed: {problem}", event)
                return {"key": key, "refused": problem}
            if declared:
                # A declared output's version is recorded with its attempt's end, in the same
                # transaction; that end's task.finished/failed schedules every task reading it
                # (scheduler "after"). Scheduling here would find nothing it does not.
                return {"key": key, "jobs": 0, "claimed": 0}
        else:                                   # an upload from outside, not a pipeline output
            jobs_created, recorded = self._record_upload(event, key, size, etag, version)
        if recorded is None:                    # an undeclared output, or an upload recorded before
            claimed = scheduler.schedule(self.db, self.send, input_keys=[key])
        else:
            claimed = scheduler.send_claimed(self.db, self.send, *recorded)
        return {"key": key, "jobs": jobs_created, "claimed": len(claimed)}

    def _output_claim(self, key: str, meta: dict) -> tuple[str, bool]:
        """Check an object whose metadata names an attempt (``eas-attempt-id``, as the function
        wrapper writes its outputs): ("", declared) when it is that attempt's output (the
        attempt exists, runs or ran, belongs to the task of ``eas-task-id``, and ``key`` is one
        of the task's declared outputs or lies in its working directory); (why not, False)
        otherwise. Anything else is an upload dressed as an output, which would otherwise be
        neither processed nor an error. One query."""
        try:
            attempt_id = int(meta["eas-attempt-id"])
            task_id = int(meta.get("eas-task-id", "0") or 0)
        except ValueError:
            return "its metadata eas-attempt-id/eas-task-id are not integer ids", False
        if not 0 < attempt_id <= events.MAX_ID or not 0 <= task_id <= events.MAX_ID:
            return "its metadata eas-attempt-id/eas-task-id are out of range", False
        with self.db.connect() as conn:
            row = conn.execute(_OUTPUT_CLAIM, {"attempt_id": attempt_id, "key": key}).first()
        if row is None:
            return f"its metadata names attempt {attempt_id}, which does not exist", False
        if task_id and row.task_id != task_id:
            return (f"its metadata names attempt {attempt_id} of task {task_id}, but that attempt is of task "
                    f"{row.task_id}"), False
        if row.state not in (A_RUNNING, A_FINISHED):
            return f"its metadata names attempt {attempt_id}, which has not started", False
        folder = row.working_directory.rstrip("/")
        if not row.declared and folder and not key.startswith(folder + "/"):
            return (f"its metadata names attempt {attempt_id} of task {row.task_id}, which neither declares it "
                    f"as an output nor works in its folder ({folder}/)"), False
        return "", bool(row.declared)

    def _record_upload(self, event, key: str, size: int, etag: str, version: str | None
                       ) -> tuple[int, tuple | None]:
        """Record the upload and make its watch rules' jobs, their inputs pinned to this very
        version of the object (a later write to the key does not change what they read);
        claim what it made ready in the same transaction. (jobs created, (claimed, ids left)
        or None for a repeated event)."""
        event_key = _bounded(f"{event['source']} {event['id']}", 300)
        created = 0
        with self.db.session() as s:
            conn = s.connection()       # prebuilt Core statements in the session's transaction
            if conn.execute(_SEEN, {"handler": "product", "event_key": event_key}).first() is not None:
                return 0, None
            now = utcnow()
            conn.execute(_REMEMBER, {"handler": "product", "event_key": event_key, "time": now})
            product_id, _ = ensure_product_id(conn, key, semantic_type="upload")
            version_row = conn.execute(_UPLOADED, {
                "product_id": product_id, "attempt_id": None, "event_id": _bounded(str(event["id"]), 100),
                "etag": etag, "size": size, "object_version": version, "passed_qc": True,
                "created_at": now}).scalar_one()
            for rule in watch.matching_rules(conn, key):
                try:
                    compiled = watch.job_for_upload(rule, key, etag)
                    check_served(compiled, served_task_types(self.res.settings.broker_config_dir))
                    with s.begin_nested():
                        job, made = insert_job(s, compiled, source_event=_bounded(
                            f"watch:{rule.id}:{compiled.working_directory}", 300),
                            spec={"watch_rule": rule.prefix, "object": key, "etag": etag, "object_version": version},
                            stat=self.res.store.stat)
                        if made:
                            s.flush()
                            conn.execute(_PIN, {"pin_key": key, "job_id": job.id, "version_id": version_row})
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
        """Compile, check and insert a submitted job. A refused job (a task type no function
        serves, outputs another job plans, a defective description) is kept as a rejected job
        row with the reason, shown by ``eas jobs`` and ``/jobs``, and as a dead letter; a
        duplicate delivery finds that row and adds nothing."""
        spec = events.data_of(event)
        source_event = f"{event['source']} {event['id']}"
        with self.db.read() as s:        # a duplicate delivery: schedule, but do not compile again
            known = s.execute(select(Job.id, Job.rejection).where(Job.source_event == source_event)).first()
        if known is not None:
            if known.rejection is not None:
                return {"job_id": known.id, "created": False, "rejected": known.rejection}
            claimed = scheduler.schedule(self.db, self.send, job_id=known.id)
            return {"job_id": known.id, "created": False, "claimed": len(claimed)}
        try:
            compiled = admit(spec, served=served_task_types(self.res.settings.broker_config_dir))
            with self.db.session() as s:
                job, created = insert_job(s, compiled, source_event=source_event, spec=spec,
                                          stat=self.res.store.stat)
                job_id, rejection = job.id, job.rejection
        except JobError as exc:
            return self._reject(event, spec, source_event, str(exc))
        if rejection is not None:        # a concurrent duplicate delivery was refused first
            return {"job_id": job_id, "created": False, "rejected": rejection}
        claimed = scheduler.schedule(self.db, self.send, job_id=job_id)
        return {"job_id": job_id, "created": created, "tasks": len(compiled.tasks), "claimed": len(claimed)}

    def _reject(self, event, spec, source_event: str, reason: str) -> dict:
        with self.db.session() as s:
            job, created = reject_job(s, spec, source_event=source_event, reason=reason)
            job_id, reason = job.id, job.rejection or reason
        if created:
            log.info("job.submitted %s rejected as job %s: %s", event["id"], job_id, reason)
            self.dead_letter("control", f"job {job_id} rejected: {reason}", event)
        return {"job_id": job_id, "created": False, "rejected": reason}

    # ------------------------------------------------------------------ task.finished / failed
    def on_task_end(self, event) -> dict:
        task_id = events.int_attribute(event, "taskid")
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
                                      default_limit_s=st.timeout_s or scheduler.DEFAULT_REQUEST_LIMIT_S,
                                      max_unanswered_sends=st.max_unanswered_sends)
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
