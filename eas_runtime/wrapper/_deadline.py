"""End a science run before the request limit of its Service.

Knative gives up on a request after the Service's ``timeoutSeconds``; a science run that went
on past it used to be found later by the reconcile tick as "stalled: no heartbeat" and retried,
to time out again (issue 11, defect 9). The wrapper knows the limit (``EAS_TIMEOUT_S``) and
ends the run itself, early enough to record the attempt and answer the broker.

The request runs in a server thread (gunicorn's gthread worker), not the main thread, so no
signal can interrupt it. :class:`Deadline` raises :class:`TaskTimeout` in that thread instead
(``PyThreadState_SetAsyncExc``, as functions-framework's own request timeout does): it takes
effect at the next Python instruction the thread runs, so a run blocked in compiled code ends
when that call returns; it is raised again every :data:`REPEAT_S` seconds until the run is
over, so a science ``except`` that swallows it does not keep the run going. ``TaskTimeout`` is
a ``BaseException``: ``except Exception`` in science code does not catch it.
"""
from __future__ import annotations

import ctypes
import threading
import time

#: Time [s] kept free before the request limit to record the result and answer: a tenth of
#: the limit, at least 0.5 s and at most 30 s.
MARGIN_FRACTION, MARGIN_MIN_S, MARGIN_MAX_S = 0.1, 0.5, 30.0
#: Seconds between repeated raises; long enough for the cleanup a raise starts (a pool
#: terminating its workers in a ``finally``) not to be cut short by the next one.
REPEAT_S = 5.0


class TaskTimeout(BaseException):
    """The science run passed its time limit (raised inside it by :class:`Deadline`)."""


def science_limit_s(request_limit_s: float) -> float:
    """Seconds a science run may take within a request limit of ``request_limit_s`` (0: none)."""
    if request_limit_s <= 0:
        return 0.0
    margin = min(MARGIN_MAX_S, max(MARGIN_MIN_S, MARGIN_FRACTION * request_limit_s))
    return max(request_limit_s - margin, request_limit_s / 2)


def _raise_in(thread_id: int, exc_type: type[BaseException] | None) -> None:
    ctypes.pythonapi.PyThreadState_SetAsyncExc(ctypes.c_ulong(thread_id),
                                               ctypes.py_object(exc_type) if exc_type else None)


class Deadline:
    """``with Deadline(limit_s):`` raises :class:`TaskTimeout` in the calling thread once
    ``limit_s`` seconds have passed since the ``with`` began (``limit_s`` 0: never)."""

    def __init__(self, limit_s: float, started: float | None = None):
        self.limit_s = limit_s
        self.started = time.monotonic() if started is None else started
        self.fired_at: float | None = None
        self._done = threading.Event()
        self._lock = threading.Lock()
        self._thread_id = 0

    @property
    def elapsed_s(self) -> float:
        return time.monotonic() - self.started

    def __enter__(self) -> "Deadline":
        self._thread_id = threading.get_ident()
        if self.limit_s > 0:
            threading.Thread(target=self._watch, name="eas-deadline", daemon=True).start()
        return self

    def _watch(self) -> None:
        wait = self.started + self.limit_s - time.monotonic()
        while not self._done.wait(max(0.0, wait)):
            with self._lock:
                if self._done.is_set():
                    return
                if self.fired_at is None:
                    self.fired_at = time.monotonic()
                _raise_in(self._thread_id, TaskTimeout)
            wait = REPEAT_S

    def __exit__(self, *exc) -> None:
        with self._lock:
            self._done.set()
            if self.fired_at is not None:
                _raise_in(self._thread_id, None)     # a raise still pending must not land later
