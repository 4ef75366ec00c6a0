"""Cold starts of issue 12 (item 4): how long a new replica takes to start its science.

For every function with a sample (``functions/<task_type>/sample/invoke.json``; not ``error``,
whose sample fails on purpose), a replica is
started by local serving from the function's own Knative Service (``knative/base/``), exactly
as the embedded runtime scales one from zero, on a throw-away SQLite pipeline. It gets the
sample's first task twice. From the replica's process start (``/proc/<pid>/stat``):

* *to science* = first answer - process start - the science time of the second (warm) task:
  the interpreter, the imports, listening, the request and loading or compiling the kernels,
  everything a cold replica pays before its science runs at full speed (an upper bound: the
  first task's writes after the science count too);
* measured twice per function: with numba's cache filled by ``python -m eas_runtime.warmup``
  (what every image holds) and, as the reference, with an empty cache (what a replica paid
  before: it compiled every kernel it called). Target: at most 5 s.

``quick``: TLS and the detrending only.
"""
from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from eas_runtime.settings import PROJECT_ROOT

FUNCTIONS = PROJECT_ROOT / "functions"
QUICK = ("detrend", "transit_search_tls")
#: Functions whose sample fails on purpose (the error-handling test function).
FAILING = ("error",)
TARGET_S = 5.0


def _process_start(pid: int) -> float:
    """The process's start as a Unix time (clock ticks since boot + boot time)."""
    ticks = int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[19])
    with open("/proc/stat") as fh:
        boot = next(int(line.split()[1]) for line in fh if line.startswith("btime"))
    return boot + ticks / os.sysconf("SC_CLK_TCK")


def _measure(task_type: str, numba_cache: Path, home: Path) -> dict:
    """One fresh replica of ``task_type``: two tasks; times in seconds."""
    from eas_runtime import events, invoke
    from eas_runtime.db.models import Attempt
    from eas_runtime.resources import Resources
    from eas_runtime.serving import LocalServing
    from eas_runtime.settings import Settings

    os.environ["NUMBA_CACHE_DIR"] = str(numba_cache)    # replicas inherit the environment
    settings = Settings.load(environ={}, home=str(home), store="local")
    resources = Resources(settings, send=lambda event: None)
    resources.db.create_schema()
    serving = LocalServing(settings.replace(idle_s=600.0, cold_start_timeout_s=300.0),
                           "http://127.0.0.1:1/eas/default", grace_s=3.0)
    serving.start()
    sample = invoke.sample_runs(task_type)[0]
    service = f"eas-{task_type.replace('_', '-')}"
    ref = {"ref": {"apiVersion": "serving.knative.dev/v1", "kind": "Service", "name": service}}
    try:
        answers, walls = [], []
        for n in range(2):
            ready = invoke.create_task(resources, task_type, sample["inputs"], sample["params"],
                                       {}, f"cold{n}")
            headers, body = events.to_http(ready.event())
            headers["Prefer"] = "reply"
            status, _, _ = serving.post(ref, headers, body, 900)
            answers.append(time.time())
            with resources.db.read() as s:
                attempt = s.get(Attempt, ready.attempt_id)
                if status >= 300 or attempt.error_kind:
                    raise RuntimeError(f"{task_type}: {status} {attempt.error_text}")
                walls.append(attempt.wall_s)
            if n == 0:
                (replica,) = [r for svc in serving.status() if svc["name"] == service
                              for r in svc["replicas"]]
                started = _process_start(replica["pid"])
    finally:
        serving.stop()
        resources.db.dispose()
    return {"to_science": answers[0] - started - walls[1], "first_wall": walls[0],
            "warm_wall": walls[1]}


def _warm(task_type: str, numba_cache: Path) -> None:
    subprocess.run([sys.executable, "-m", "eas_runtime.warmup", task_type], check=True,
                   cwd=PROJECT_ROOT, capture_output=True, timeout=900,
                   env={**os.environ, "NUMBA_CACHE_DIR": str(numba_cache)})


def run(quick: bool = False) -> list[tuple[str, str, str, str]]:
    folders = sorted(p.parent.parent.name for p in FUNCTIONS.glob("*/sample/invoke.json")
                     if p.parent.parent.name not in FAILING)
    wanted = [f for f in folders if f in QUICK] if quick else folders
    saved = os.environ.get("NUMBA_CACHE_DIR")
    rows, worst = [], 0.0
    try:
        with tempfile.TemporaryDirectory(prefix="eas-coldstart-") as tmp:
            for task_type in wanted:
                warm_cache, empty_cache = Path(tmp, task_type, "warm"), Path(tmp, task_type, "empty")
                _warm(task_type, warm_cache)
                warm = _measure(task_type, warm_cache, Path(tmp, task_type, "home-warm"))
                cold = _measure(task_type, empty_cache, Path(tmp, task_type, "home-cold"))
                worst = max(worst, warm["to_science"])
                rows.append((f"cold start to science, {task_type} (warm task {warm['warm_wall']:.2f} s) "
                             f"[s], image cache vs empty cache",
                             f"{warm['to_science']:.2f}", f"{cold['to_science']:.2f}",
                             f"{cold['to_science'] / max(warm['to_science'], 1e-3):.1f}x faster"))
    finally:
        if saved is None:
            os.environ.pop("NUMBA_CACHE_DIR", None)
        else:
            os.environ["NUMBA_CACHE_DIR"] = saved
    rows.append(("cold start to science, slowest function [s]", f"{worst:.2f}",
                 f"target {TARGET_S:g}", f"{worst / TARGET_S:.2f}"))
    return rows
