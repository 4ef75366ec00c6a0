"""Replica processes: command resolution, environment, launch, readiness, termination.

Every replica runs in its own session (process group), so a signal reaches the server and the
workers it forks. On Linux each replica also gets ``PR_SET_PDEATHSIG``: if the runtime dies,
even by SIGKILL, the kernel sends SIGTERM to the replica. The death signal follows the *thread*
that forked the child, so replicas must be launched from one long-lived thread (see
``LocalServing``). Replicas still alive at interpreter exit are stopped by an atexit hook.
"""
from __future__ import annotations

import atexit
import ctypes
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path
from typing import Mapping

from eas_runtime.settings import PROJECT_ROOT, Settings

from .spec import ServiceSpec

_PR_SET_PDEATHSIG = 1

#: Commands whose console script may be missing (e.g. the project is not pip-installed).
_MODULE_FALLBACKS = {
    "functions-framework": [sys.executable, "-m", "functions_framework"],
    "eas": [sys.executable, "-c", "import sys; from eas_runtime.cli import main; sys.exit(main())"],
}


def resolve_command(argv: list[str]) -> list[str]:
    """``argv`` with its program resolved: the current Python environment's scripts first
    (the folder of ``sys.executable``), then ``PATH``, then a ``python -m`` fallback."""
    program, rest = argv[0], list(argv[1:])
    if os.sep in program:
        path = Path(program)
        return [str(path if path.is_absolute() else PROJECT_ROOT / path), *rest]
    local = Path(sys.executable).parent / program
    if local.is_file() and os.access(local, os.X_OK):
        return [str(local), *rest]
    found = shutil.which(program)
    if found:
        return [found, *rest]
    if program in _MODULE_FALLBACKS:
        return [*_MODULE_FALLBACKS[program], *rest]
    raise FileNotFoundError(f"command {program!r} is neither in {local.parent} nor on PATH")


def replica_env(spec: ServiceSpec, settings: Settings, broker_url: str, port: int,
                base: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment of one replica process."""
    env = dict(os.environ if base is None else base)
    env.update(spec.env)
    # The manifests carry cluster values (MinIO/PostgreSQL service addresses, ...). Locally the
    # runtime's own settings are the truth, so its EAS_* variables override the manifest's.
    env.update(settings.to_env())
    pythonpath = [str(PROJECT_ROOT)] + [p for p in env.get("PYTHONPATH", "").split(os.pathsep)
                                         if p and p != str(PROJECT_ROOT)]
    env["PYTHONPATH"] = os.pathsep.join(pythonpath)
    env.update({
        "K_SERVICE": spec.name,
        "K_CONFIGURATION": spec.name,
        "K_REVISION": f"{spec.name}-local",
        "K_SINK": broker_url,
        "PORT": str(port),
        "HOST": "127.0.0.1",  # functions-framework binds HOST; default would be 0.0.0.0
    })
    return env


def free_port() -> int:
    """A port for a replica (see :mod:`eas_runtime._ports`: chosen outside the ephemeral range)."""
    from eas_runtime._ports import free_port as _free
    return _free()


def is_listening(port: int, timeout_s: float = 0.5) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=timeout_s):
            return True
    except OSError:
        return False


def _death_signal_hook():
    """A ``preexec_fn`` that asks the kernel to SIGTERM the child when its parent dies."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        prctl = libc.prctl
    except (OSError, AttributeError):
        return None
    parent = os.getpid()

    def hook() -> None:
        prctl(_PR_SET_PDEATHSIG, int(signal.SIGTERM), 0, 0, 0)
        if os.getppid() != parent:  # the parent died before prctl took effect
            os._exit(1)

    return hook


_LIVE: set[subprocess.Popen] = set()
_LIVE_LOCK = threading.Lock()


def spawn(argv: list[str], env: Mapping[str, str], log_dir: Path,
          service: str) -> tuple[subprocess.Popen, Path]:
    """Start a replica; its output goes to ``<log_dir>/<service>-<pid>.log``."""
    log_dir.mkdir(parents=True, exist_ok=True)
    provisional = log_dir / f"{service}-starting-{uuid.uuid4().hex[:8]}.log"
    with open(provisional, "ab") as log:
        proc = subprocess.Popen(
            argv, cwd=PROJECT_ROOT, env=dict(env), stdin=subprocess.DEVNULL, stdout=log,
            stderr=subprocess.STDOUT, start_new_session=True, preexec_fn=_death_signal_hook())
    with _LIVE_LOCK:
        _LIVE.add(proc)
    log_path = log_dir / f"{service}-{proc.pid}.log"
    os.replace(provisional, log_path)  # the child keeps writing to the same file
    return proc, log_path


def signal_group(proc: subprocess.Popen, sig: int) -> None:
    """Send ``sig`` to the replica's process group (the server and its workers)."""
    try:
        os.killpg(proc.pid, sig)  # start_new_session: the group id is the pid
    except (ProcessLookupError, PermissionError):
        pass


def terminate(procs: list[subprocess.Popen], grace_s: float) -> None:
    """SIGTERM each group, SIGKILL what is left after ``grace_s``, and reap."""
    for proc in procs:
        signal_group(proc, signal.SIGTERM)
    deadline = time.monotonic() + grace_s
    for proc in procs:
        try:
            proc.wait(max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            pass
    for proc in procs:
        # Kill the group even if the leader exited: its workers may still be alive.
        signal_group(proc, signal.SIGKILL)
        try:
            proc.wait(5.0)
        except subprocess.TimeoutExpired:
            pass
        forget(proc)


def forget(proc: subprocess.Popen) -> None:
    with _LIVE_LOCK:
        _LIVE.discard(proc)


@atexit.register
def _stop_all() -> None:
    with _LIVE_LOCK:
        procs = list(_LIVE)
    if procs:
        terminate(procs, grace_s=2.0)
