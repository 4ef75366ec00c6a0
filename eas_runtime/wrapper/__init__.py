"""The function wrapper: turns a plain science function into a Knative event handler.

A function folder's ``main.py`` does::

    from eas_runtime.wrapper import cloud_task

    @cloud_task("verify")
    def handle(ctx: TaskContext) -> TaskResult: ...

and functions-framework serves ``handle`` with ``--signature-type http``. The wrapper parses the
CloudEvent itself because functions-framework's ``@cloud_event`` handlers always answer "OK",
which a Knative Broker counts as a failed delivery. Answers, as Knative expects them:

* 202, empty body: the attempt ran (successfully or with a recorded science failure), or the
  event was a duplicate (its attempt already started or finished: nothing is done again);
* 200 with the attempt's ``task.finished``/``task.failed`` event as the reply, instead of the
  202, when the request says ``Prefer: reply`` (a Knative Broker does): the broker stores the
  reply with the delivery, which spares the function a request to the broker and frees the
  replica before the next task is sent to it. Without it the event is posted to the broker;
* 400: the event is invalid or the parameters are unusable (never retried; recorded);
* 503: the database or the object store is down (the broker retries).
"""
from __future__ import annotations

import logging
import os
import socket
import threading
import time
import traceback
from pathlib import Path
from typing import Callable, Sequence

from cloudevents.http import CloudEvent

from eas_runtime import events, internal_auth, qc
from eas_runtime.db.models import DeadLetter
from eas_runtime.db.session import DatabaseUnavailable
from eas_runtime.resources import Resources, default_resources
from eas_runtime.store import ObjectNotFound, StoreUnavailable
from eas_runtime.task_api import InputError, ParameterError, TaskContext, TaskResult
from eas_runtime.wrapper import _attempt, _isolation
from eas_runtime.wrapper._capture import Heartbeat, LogCapture, ScratchDirs, Stopwatch
from eas_runtime.wrapper._deadline import Deadline, TaskTimeout, science_limit_s

log = logging.getLogger("eas.wrapper")
_SCRATCH = ScratchDirs()
TaskFunction = Callable[[TaskContext], TaskResult]
__all__ = ["cloud_task", "TaskRunner", "TaskContext", "TaskResult", "ParameterError", "InputError"]


def cloud_task(task_types: str | Sequence[str], *, resources: Resources | None = None):
    """Decorate a science entry point; the result is a functions-framework HTTP target."""
    types = (task_types,) if isinstance(task_types, str) else tuple(task_types)

    def decorate(fn: TaskFunction):
        runner = TaskRunner(types, fn, resources)

        def handle(request):
            status, body, headers = runner.handle_http(request.method, request.headers, request.get_data())
            return body, status, headers

        setattr(handle, "runner", runner)  # eas_runtime.invoke and the tests reach the runner here
        handle.__name__ = getattr(fn, "__name__", "handle")
        handle.__doc__ = fn.__doc__
        return handle
    return decorate


class TaskRunner:
    def __init__(self, task_types: Sequence[str], fn: TaskFunction, resources: Resources | None = None):
        self.task_types = tuple(task_types)
        self.fn = fn
        self._resources = resources
        self.host = socket.gethostname()

    @property
    def resources(self) -> Resources:
        if self._resources is None:
            self._resources = default_resources()
        return self._resources

    # ------------------------------------------------------------------ HTTP
    def handle_http(self, method: str, headers, body: bytes) -> tuple[int, str | bytes, dict[str, str]]:
        """Status, body and headers of the answer to one request."""
        if method != "POST":
            return 405, "POST a CloudEvent\n", {}
        refused = internal_auth.refusal(headers, self.resources.settings.internal_token)
        if refused is not None:
            return refused[0], refused[1] + "\n", refused[2]
        try:
            event = events.parse(headers, body)
            if event["type"] != events.TASK_READY:
                raise events.EventError(
                    f"event type {event['type']!r} is not handled here; expected {events.TASK_READY!r}")
            task_type = events.require(event, "tasktype")
            if task_type not in self.task_types:
                raise events.EventError(
                    f"tasktype {task_type!r} is not served by this function; it serves {list(self.task_types)}")
            task_id = _int_attr(event, "taskid")
            attempt_id = _int_attr(event, "attemptid")
        except events.EventError as exc:
            self._dead_letter(str(exc), headers, body)
            return 400, f"{exc}\n", {}
        try:
            status, text, ended = self._run(task_id, attempt_id)
        except (DatabaseUnavailable, StoreUnavailable) as exc:
            log.warning("infrastructure unavailable, asking for redelivery: %s", exc)
            return 503, f"{exc}\n", {}
        if ended is not None:
            if status == 202 and events.prefers_reply(headers):
                reply_headers, reply_body = events.to_http(ended)
                return 200, reply_body, reply_headers
            self.resources.try_send(ended)
        return status, text, {}

    def _dead_letter(self, reason: str, headers, body: bytes) -> None:
        try:
            with self.resources.db.session() as s:
                s.add(DeadLetter(component=f"function:{','.join(self.task_types)}", reason=reason,
                                 event_id=str(headers.get("ce-id", ""))[:200],
                                 event_type=str(headers.get("ce-type", ""))[:200],
                                 payload=body.decode("utf-8", "replace")[:100_000]))
        except Exception as exc:  # noqa: BLE001 - the 400 answer still tells the sender
            log.error("could not record rejected event (%s): %s", reason, exc)

    # ------------------------------------------------------------------ one attempt
    def run(self, task_id: int, attempt_id: int) -> tuple[int, str]:
        """Run one claimed attempt and post its end event to the broker: (status, text)."""
        status, text, ended = self._run(task_id, attempt_id)
        if ended is not None:
            self.resources.try_send(ended)
        return status, text

    def _run(self, task_id: int, attempt_id: int) -> tuple[int, str, CloudEvent | None]:
        """Status and text of the answer, and the attempt's end event (not sent yet)."""
        began = time.monotonic()           # the request limit counts from here
        _isolation.install()               # before any science code can fork
        res = self.resources
        try:
            verdict, snap = _attempt.start(res.db, task_id, attempt_id, self.host, os.getpid())
        except _attempt.UnknownAttempt as exc:
            self._dead_letter(str(exc), {}, b"")
            return 400, f"{exc}\n", None
        if verdict != "run":
            log.info("attempt %s: %s, nothing to do", attempt_id, verdict)
            return 202, "", None
        with _SCRATCH.folder() as workdir:
            try:
                local_inputs = self._fetch_inputs(snap, workdir)
            except StoreUnavailable:
                _attempt.revert(res.db, attempt_id)
                raise
            except ObjectNotFound as exc:
                outcome = _attempt.Outcome(error_kind="input", error_text=f"input missing: {exc}")
                return self._conclude(snap, outcome, status=202)
            try:
                with Heartbeat(res.db, attempt_id, res.settings.heartbeat_s):
                    outcome, status = self._execute(snap, local_inputs, workdir, began)
            except StoreUnavailable:
                _attempt.revert(res.db, attempt_id)   # nothing was recorded: run it again later
                raise
            return self._conclude(snap, outcome, status)

    def _fetch_inputs(self, snap, workdir: Path) -> dict[str, Path]:
        """Copy each input's recorded version (:attr:`TaskSnapshot.input_versions`) to the
        scratch folder. Without a store version id (a file dropped into the store by hand) the
        latest content is read, and its ETag must be the recorded one: content written to the
        key since is another product, not this task's input."""
        out = {}
        for name, key in snap.inputs.items():
            version, etag = snap.input_versions.get(name, (None, ""))
            dest = workdir / "inputs" / name / Path(key).name
            info = self.resources.store.get_file(key, dest, version_id=version)
            if version is None and etag and info.etag.strip('"') != etag.strip('"'):
                raise ObjectNotFound(f"{key!r} holds other content (ETag {info.etag}) than the version this "
                                     f"task reads (ETag {etag}), and the store keeps no earlier versions")
            out[name] = dest
        return out

    def _execute(self, snap, local_inputs, workdir: Path, began: float | None = None
                 ) -> tuple[_attempt.Outcome, int]:
        ctx = TaskContext(task_type=snap.task_type, params=snap.params, inputs=local_inputs,
                          workdir=workdir, input_metadata=snap.input_metadata,
                          requested_metadata=snap.requested_metadata, output_names=snap.outputs,
                          log=logging.getLogger(f"eas.task.{snap.task_type}"),
                          cpus=max(1, len(os.sched_getaffinity(0))), pipeline=self.resources)
        outcome, status = _attempt.Outcome(), 202
        request_limit_s = self.resources.settings.timeout_s
        deadline = Deadline(science_limit_s(request_limit_s), began)
        with LogCapture(threading.get_ident()) as capture, Stopwatch() as watch:
            try:
                with deadline:
                    result = self.fn(ctx)
                if not isinstance(result, TaskResult):
                    raise TypeError(f"task function returned {type(result).__name__}, not TaskResult")
                outcome = self._store_outputs(snap, result)
            except TaskTimeout as exc:
                outcome = _attempt.Outcome(error_kind="timeout", error_text=_timeout_text(
                    exc, deadline, request_limit_s))
                ctx.log.error("task timed out after %.1f s", deadline.elapsed_s)
            except ParameterError as exc:
                outcome = _attempt.Outcome(error_kind="parameters", error_text=_traceback_text(exc))
                status = 400
            except (StoreUnavailable, DatabaseUnavailable):
                raise
            except InputError as exc:
                outcome = _attempt.Outcome(error_kind="input", error_text=_traceback_text(exc))
                ctx.log.error("bad input: %s", exc)
            except ModuleNotFoundError as exc:
                hint = missing_package_hint(exc)
                kind = "environment" if hint else "science"
                outcome = _attempt.Outcome(error_kind=kind, error_text=(hint + "\n" if hint else "")
                                           + _traceback_text(exc))
                ctx.log.error("task failed: %s", hint or exc)
            except Exception as exc:  # noqa: BLE001 - a science failure is a result, not a crash
                outcome = _attempt.Outcome(error_kind="science", error_text=_traceback_text(exc))
                ctx.log.error("task failed: %s", exc)
        # Name inputs by their object keys, not by the attempt's scratch copies.
        for name, path in local_inputs.items():
            outcome.error_text = outcome.error_text.replace(str(path), snap.inputs[name])
        outcome.logs = capture.records
        outcome.wall_s, outcome.cpu_s = watch.timings.wall_s, watch.timings.cpu_s
        outcome.cpu_children_s = watch.timings.cpu_children_s
        return outcome, status

    def _store_outputs(self, snap, result: TaskResult) -> _attempt.Outcome:
        outcome = _attempt.Outcome(metadata=dict(result.metadata), units=dict(result.units),
                                   candidates=result.candidates)
        problems = qc.check_result(snap.task_type, result.metadata)
        missing = sorted(set(snap.outputs) - set(result.outputs))
        if missing:
            problems.append(f"declared outputs not produced: {missing}")
        for name, path in result.outputs.items():
            key = snap.outputs.get(name) or _default_key(snap, name, Path(path))
            semantic_type = result.output_types.get(name, name)
            output_problems = qc.check_output(semantic_type, Path(path))
            info = self.resources.store.put_file(key, Path(path), metadata={
                "eas-task-id": str(snap.task_id), "eas-attempt-id": str(snap.attempt_id),
                "eas-semantic-type": semantic_type})
            meta = dict(result.output_metadata.get(name, {}))
            if output_problems:
                meta["qc_problems"] = output_problems
                problems.extend(f"{name}: {p}" for p in output_problems)
            outcome.outputs.append(_attempt.StoredOutput(
                name=name, key=key, semantic_type=semantic_type, etag=info.etag, size=info.size,
                object_version=info.version_id, passed_qc=not output_problems, metadata=meta))
        if problems:
            outcome.error_kind = "qc"
            outcome.error_text = "QC failed: " + "; ".join(problems)
        return outcome

    def _conclude(self, snap, outcome: _attempt.Outcome, status: int) -> tuple[int, str, CloudEvent]:
        new_state = _attempt.finish(self.resources.db, snap, outcome)
        kind = events.TASK_FAILED if outcome.error_kind else events.TASK_FINISHED
        event = events.make_event(
            kind, f"/eas/functions/{snap.task_type}",
            {"task_id": snap.task_id, "attempt_id": snap.attempt_id, "job_id": snap.job_id,
             "task_type": snap.task_type, "state": new_state, "error_kind": outcome.error_kind,
             "outputs": [o.key for o in outcome.outputs]},
            id=events.stable_id(kind, snap.attempt_id), subject=str(snap.task_id),
            tasktype=snap.task_type, jobid=snap.job_id, taskid=snap.task_id, attemptid=snap.attempt_id)
        if status == 400:
            return 400, outcome.error_text.strip().splitlines()[-1] + "\n", event
        return status, "", event


#: What installs a module a function may miss: the pip requirement of each third-party module
#: the functions import whose name differs from its distribution, and the optional extras.
REQUIREMENTS = {"batman": "batman-package", "psycopg2": "'plato-eas[postgres]'",
                "yaml": "PyYAML", "cloudevents": "cloudevents"}
#: Modules of the default install (pyproject.toml ``dependencies``): reinstalling the project
#: installs them too.
DEFAULT_INSTALL = {"wotan", "transitleastsquares", "psls", "scipy", "batman", "numba", "numpy",
                   "astropy", "matplotlib", "minio", "sqlalchemy", "flask", "yaml", "cloudevents",
                   "functions_framework", "requests", "jsonschema", "alembic", "kubernetes"}


def missing_package_hint(exc: ModuleNotFoundError) -> str:
    """The one line an environment error starts with: which package is missing and the command
    that installs it; '' when the missing module is the project's own (a bug, not the
    environment)."""
    name = (exc.name or "").split(".")[0]
    if not name or name in ("eas_runtime", "functions"):
        return ""
    command = f"pip install {REQUIREMENTS.get(name, name)}"
    where = (" (it is part of plato-eas's default install: `python3 -m pip install -e .` in the "
             "checkout installs it)" if name.lower() in DEFAULT_INSTALL else "")
    return (f"environment: this function needs the Python package {name!r}, which is not "
            f"installed where it runs; install it with `{command}`{where} or the image's "
            f"requirements.txt, then `eas retry` the job")


def _int_attr(event, name: str) -> int:
    return events.int_attribute(event, name)


def _default_key(snap, name: str, path: Path) -> str:
    stem = snap.name or snap.task_type
    filename = f"{stem}_{snap.task_id}_{path.name}" if path.name else f"{stem}_{snap.task_id}_{name}"
    return f"{snap.working_directory}/{filename}" if snap.working_directory else filename


def _timeout_text(exc: TaskTimeout, deadline: Deadline, request_limit_s: float) -> str:
    """What a timeout records: the elapsed time, the limits, and where the run was stopped."""
    fired = deadline.fired_at if deadline.fired_at is not None else time.monotonic()
    return (f"timeout: the science run was stopped after {fired - deadline.started:.1f} s "
            f"(limit {deadline.limit_s:.1f} s: the Service's request limit of {request_limit_s:g} s "
            f"less the time kept to record the result); it was ended "
            f"{deadline.elapsed_s:.1f} s after the request began, here:\n" + _traceback_text(exc))


def _traceback_text(exc: BaseException) -> str:
    return "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
