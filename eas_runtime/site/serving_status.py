"""How the index site learns the state of the embedded runtime's processes: a status file.

In the embedded runtime (``eas up``) the site is one of the Services that local serving runs,
so it lives in a process of its own and cannot call ``LocalServing.status()``. The runtime runs
a :class:`StatusWriter`, which writes that status, with the runtime's pid and the time, to
``<EAS_HOME>/serving-status.json`` every ``interval_s`` seconds (a temporary file renamed over
the old one, so a reader never sees half a file), and once more, marked stopped, when the
runtime stops. :func:`read_status` reads it back; a file that is missing, marked stopped, older
than three intervals, or written by a process that no longer exists means the runtime is not
running (:class:`ServingStatusUnavailable` says which).

A file rather than a question over loopback: no port or route to add to the runtime, a page
never waits on a runtime that hangs, and any process sharing ``EAS_HOME`` can read it.
"""
from __future__ import annotations

import datetime as dt
import json
import logging
import os
import threading
import time
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)
FILENAME = "serving-status.json"
#: Seconds between two writes; a file older than STALE_INTERVALS of them is stale.
INTERVAL_S = 2.0
STALE_INTERVALS = 3


class ServingStatusUnavailable(RuntimeError):
    """No usable status of the embedded runtime; the message says why."""


def status_path(home: str | Path) -> Path:
    return Path(home) / FILENAME


def _iso(epoch: float | None) -> str | None:
    if epoch is None:
        return None
    return dt.datetime.fromtimestamp(epoch, dt.UTC).isoformat()


def pid_alive(pid: int | None) -> bool:
    """True when a process with this pid exists (on this machine)."""
    if not pid or pid < 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class StatusWriter:
    """Writes ``serving.status()`` (a :class:`~eas_runtime.serving.LocalServing`) to the
    status file every ``interval_s`` seconds from a daemon thread."""

    def __init__(self, serving, home: str | Path, interval_s: float = INTERVAL_S):
        self.serving = serving
        self.path = status_path(home)
        self.interval_s = interval_s
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def write(self, stopped: bool = False) -> None:
        doc = {"pid": os.getpid(), "written_at": time.time(), "interval_s": self.interval_s,
               "stopped": stopped, "services": [] if stopped else self.serving.status()}
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_name(f".{self.path.name}.{os.getpid()}.tmp")
        tmp.write_text(json.dumps(doc))
        os.replace(tmp, self.path)

    def start(self) -> StatusWriter:
        self.write()
        self._thread = threading.Thread(target=self._loop, name="eas-serving-status", daemon=True)
        self._thread.start()
        return self

    def _loop(self) -> None:
        while not self._stop.wait(self.interval_s):
            try:
                self.write()
            except Exception:        # keep writing; a full disk must not stop the runtime
                log.exception("cannot write %s", self.path)

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        try:
            self.write(stopped=True)
        except OSError:
            log.exception("cannot write %s", self.path)


def read_status(home: str | Path, now: float | None = None) -> dict[str, Any]:
    """The embedded runtime's services and replicas, with ``written_at`` and ``age_s``; each
    replica gets ``started`` (ISO time) and ``alive`` (its process exists)."""
    path = status_path(home)
    try:
        doc = json.loads(path.read_text())
    except FileNotFoundError:
        raise ServingStatusUnavailable(f"no embedded runtime has run with this home ({path} "
                                       "does not exist): start one with `eas up`") from None
    except (OSError, ValueError) as exc:
        raise ServingStatusUnavailable(f"{path} cannot be read: {exc}") from None
    now = time.time() if now is None else now
    age = now - float(doc.get("written_at", 0))
    limit = STALE_INTERVALS * float(doc.get("interval_s", INTERVAL_S)) + 1.0
    if doc.get("stopped"):
        raise ServingStatusUnavailable(f"the embedded runtime (pid {doc.get('pid')}) stopped "
                                       f"{age:.0f} s ago")
    if not pid_alive(doc.get("pid")):
        raise ServingStatusUnavailable(f"the embedded runtime (pid {doc.get('pid')}) that wrote "
                                       f"{path} is no longer running")
    if age > limit:
        raise ServingStatusUnavailable(f"the embedded runtime (pid {doc.get('pid')}) has not "
                                       f"reported for {age:.0f} s (it writes every "
                                       f"{doc.get('interval_s')} s): it may be hung")
    for service in doc.get("services", []):
        for replica in service.get("replicas", []):
            replica["started"] = _iso(replica.get("started_at"))
            replica["alive"] = pid_alive(replica.get("pid"))
    return {"pid": doc["pid"], "written_at": _iso(doc["written_at"]), "age_s": round(age, 1),
            "services": doc.get("services", [])}
