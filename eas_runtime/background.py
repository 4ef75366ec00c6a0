"""``eas up --detach`` and ``eas down``: the embedded pipeline as a background process.

``eas up --detach`` starts ``eas up`` in a new session (so a closed terminal or Ctrl-C in the
shell does not stop it), its output in ``<home>/up.log``, and returns once its record
(eas_runtime.discovery) is written and its gateway answers; when it fails to start, the end of
its log is printed. A pipeline already running in the same home is not started twice: the
command says where it is and exits 0. ``eas down`` sends SIGTERM to the running ``eas up``
(found as every other command finds it, or the one in ``--home``) and waits for it to end,
which stops its function processes too.
"""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from eas_runtime import discovery
from eas_runtime.settings import Settings

LOG_NAME = "up.log"
#: Lines of the log shown when the background pipeline fails to start.
LOG_TAIL = 20


def _banner(found: discovery.Running) -> str:
    st = found.settings
    return (f"Broker ingress: http://127.0.0.1:{st['gateway_port']}/eas/default\n"
            f"Index site: http://127.0.0.1:{st['index_port']}/\nHome: {found.home}")


def start(settings: Settings, *, argv: list[str], timeout_s: float = 120.0) -> int:
    home = settings.home_path.resolve()
    already = discovery.pick(discovery.running(), home)
    if already is not None:
        print(f"EAS is already up (pid {already.pid}).\n{_banner(already)}\nStop it with `eas down`.")
        return 0
    home.mkdir(parents=True, exist_ok=True)
    log_path = home / LOG_NAME
    env = {**os.environ, "EAS_HOME": str(home)}
    with open(log_path, "ab") as log:
        child = subprocess.Popen([sys.executable, "-m", "eas_runtime.cli", *argv], stdin=subprocess.DEVNULL,
                                 stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True)
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if child.poll() is not None:
            print(f"eas up: the pipeline stopped while starting (exit {child.returncode}); the end of "
                  f"{log_path}:\n{_tail(log_path)}", file=sys.stderr)
            return 1
        found = discovery.pick(discovery.running(), home)
        if found is not None and found.pid == child.pid:
            print(f"EAS is up in the background (pid {child.pid}, log {log_path}).\n{_banner(found)}\n"
                  f"Stop it with `eas down`.")
            return 0
        time.sleep(0.2)
    child.terminate()
    print(f"eas up: the pipeline did not answer within {timeout_s:g} s and was stopped; the end of "
          f"{log_path}:\n{_tail(log_path)}", file=sys.stderr)
    return 1


def stop(*, home: str | None = None, timeout_s: float = 60.0) -> int:
    found = discovery.pick(discovery.running(), home)
    if found is None:
        where = f" in {Path(home).resolve()}" if home else ""
        print(f"eas down: no `eas up` is running{where}; nothing to stop")
        return 0
    try:
        os.kill(found.pid, signal.SIGTERM)
    except ProcessLookupError:
        discovery.forget(found.path)
        return 0
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if not found.path.exists() and not discovery.alive(found.pid):
            print(f"stopped eas up (pid {found.pid}) in {found.home}")
            return 0
        time.sleep(0.2)
    print(f"eas down: eas up (pid {found.pid}) did not stop within {timeout_s:g} s", file=sys.stderr)
    return 1


def _tail(path: Path) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-LOG_TAIL:])
    except OSError as exc:
        return f"(cannot read it: {exc})"
