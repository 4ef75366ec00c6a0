"""Replica processes: command resolution, environment, launch, readiness, termination.

Every replica runs in its own session (process group), so a signal reaches the server and the
workers it forks. On Linux each replica also gets ``PR_SET_PDEATHSIG``: if the runtime dies,
even by SIGKILL, the kernel sends SIGTERM to the replica. The death signal follows the *thread*
that forked the child, so replicas must be launched from one long-lived thread (see
``LocalServing``). Replicas still alive at interpreter exit are stopped by an atexit hook.

A replica gets the memory limit of its Service (``resources.limits.memory``, from the function's
descriptor) twice: as ``EAS_MEMORY_LIMIT_BYTES`` in its environment, so that readers can refuse
an input that would not fit with a clear message (:mod:`eas_runtime.memory`), and as its
``RLIMIT_DATA``, so that an allocation beyond it fails (``MemoryError``: that task fails and is
recorded) instead of exhausting the machine. Why ``RLIMIT_DATA`` and not ``RLIMIT_AS``: the
address space counts reservations that are never used (64 MiB malloc arenas per thread,
OpenBLAS buffers, shared libraries, numba's LLVM), so it is 3.5 to 5 times the memory in use.
Measured on the gunicorn worker of a replica serving its sample task (``eas invoke --url``):
``null`` peaks at 282 MiB of address space (VmPeak) for 57 MiB resident (VmHWM) and 74 MiB of
data (VmData): ``RLIMIT_AS`` at its 256 MiB limit would fail every task;
``transit_search_tls`` (2 threads) 1005 MiB address space, 339 MiB data, 222 MiB resident;
``transit_search_bls_kovacs`` (numba) 763 MiB, 284 MiB, 212 MiB; during ``eas demo``,
eas-control 543 MiB, 166 MiB, 79 MiB (limit 512 MiB). ``RLIMIT_DATA`` (Linux >= 4.7)
counts the heap and private writable mappings (numpy arrays, thread stacks), close to what a
cgroup would charge. It is per process: TLS's forked pool workers each get the same limit, where
a cgroup (the cluster) bounds their sum.
"""
from __future__ import annotations

import atexit
import ctypes
import os
import resource
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

from eas_runtime.memory import ENV_VAR as ENV_MEMORY_LIMIT
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
    env.pop(ENV_MEMORY_LIMIT, None)
    if spec.memory_limit_bytes:
        env[ENV_MEMORY_LIMIT] = str(spec.memory_limit_bytes)
    env.update({
        "K_SERVICE": spec.name,
        "K_CONFIGURATION": spec.name,
        "K_REVISION": f"{spec.name}-local",
        "K_SINK": broker_url,
        "PORT": str(port),
        "HOST": "127.0.0.1",  # functions-framework binds HOST; default would be 0.0.0.0
    })
    # eas serve's own server here unless told otherwise: no queue-proxy in front of it locally.
    env["EAS_HTTP_SERVER"] = settings.http_server or "builtin"
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


def _memory_limit_hook(limit_bytes: int | None):
    """A ``preexec_fn`` that sets the child's ``RLIMIT_DATA`` (see the module docstring).

    Soft and hard alike, so the replica cannot raise it again; never above an existing hard
    limit (which an unprivileged process could not raise anyway).
    """
    if not limit_bytes:
        return None
    _soft, hard = resource.getrlimit(resource.RLIMIT_DATA)
    limit = limit_bytes if hard == resource.RLIM_INFINITY else min(limit_bytes, hard)

    def hook() -> None:
        resource.setrlimit(resource.RLIMIT_DATA, (limit, limit))

    return hook


def _preexec(*hooks):
    hooks = [hook for hook in hooks if hook is not None]
    if not hooks:
        return None

    def run() -> None:
        for hook in hooks:
            hook()

    return run


_LIVE: set[subprocess.Popen] = set()
_LIVE_LOCK = threading.Lock()


def spawn(argv: list[str], env: Mapping[str, str], log_dir: Path,
          service: str, memory_limit_bytes: int | None = None) -> tuple[subprocess.Popen, Path]:
    """Start a replica; its output goes to ``<log_dir>/<service>-<pid>.log``.

    ``memory_limit_bytes`` becomes its ``RLIMIT_DATA`` (see the module docstring)."""
    log_dir.mkdir(parents=True, exist_ok=True)
    provisional = log_dir / f"{service}-starting-{uuid.uuid4().hex[:8]}.log"
    with open(provisional, "ab") as log:
        proc = subprocess.Popen(
            argv, cwd=PROJECT_ROOT, env=dict(env), stdin=subprocess.DEVNULL, stdout=log,
            stderr=subprocess.STDOUT, start_new_session=True,
            preexec_fn=_preexec(_death_signal_hook(), _memory_limit_hook(memory_limit_bytes)))
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
