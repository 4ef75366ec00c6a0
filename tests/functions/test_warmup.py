"""Cold starts (issue 12, item 4): ``python -m eas_runtime.warmup`` (run by every function image
when it is built) leaves numba's cache holding every kernel the function's sample tasks call, so
that a new process running them compiles nothing. Checked with numba's own compile events in
fresh processes over an empty ``NUMBA_CACHE_DIR``."""
from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from eas_runtime.settings import PROJECT_ROOT
from eas_runtime.warmup import function_types

#: The functions with compiled kernels, hence a ``warm_up()`` hook.
COMPILED = ("detrend", "transit_search_bls_kovacs", "transit_search_bls_reference",
            "transit_search_tls")

# Runs a function's sample tasks (as `eas invoke` does) and counts numba compilations.
CHECK = r"""
import json, os, sys
# one CPU: TLS then searches in this process, where the compile events are seen
os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})
from numba.core import event
compiled = []
class Listener(event.Listener):
    def on_start(self, ev):
        compiled.append(str(ev.data["dispatcher"].py_func.__qualname__))
    def on_end(self, ev):
        pass
event.register("numba:compile", Listener())
from eas_runtime import invoke
states = []
for run in invoke.sample_runs(sys.argv[1]):
    result = invoke.run_local(sys.argv[1], run["inputs"], run["params"], {}, None)
    states.append(result["state"])
print(json.dumps({"compiled": compiled, "states": states}))
"""


def _env(cache) -> dict:
    return {**os.environ, "NUMBA_CACHE_DIR": str(cache), "PYTHONPATH": str(PROJECT_ROOT)}


def test_every_function_with_a_hook_is_the_list_above():
    """A new compiled function gets a hook (and joins this test)."""
    import importlib
    hooked = {t for t in function_types()
              if hasattr(importlib.import_module(f"functions.{t}.science"), "warm_up")}
    assert hooked == set(COMPILED)


def test_unknown_function_is_a_usage_error():
    out = subprocess.run([sys.executable, "-m", "eas_runtime.warmup", "no_such_function"],
                         capture_output=True, text=True, cwd=PROJECT_ROOT, timeout=120)
    assert out.returncode == 2 and "unknown function(s) no_such_function" in out.stderr


@pytest.mark.timeout(900)
def test_after_warm_up_the_sample_tasks_compile_nothing(tmp_path):
    cache = tmp_path / "numba"
    # Reference: on an empty cache the same tasks compile (so the check below can fail).
    cold = subprocess.run([sys.executable, "-c", CHECK, "transit_search_bls_kovacs"],
                          capture_output=True, text=True, cwd=PROJECT_ROOT, timeout=300,
                          env=_env(tmp_path / "empty"))
    assert cold.returncode == 0, cold.stderr[-3000:]
    assert json.loads(cold.stdout.splitlines()[-1])["compiled"], "an empty cache compiles"

    warm = subprocess.run([sys.executable, "-m", "eas_runtime.warmup", *COMPILED],
                          capture_output=True, text=True, cwd=PROJECT_ROOT, timeout=600,
                          env=_env(cache))
    assert warm.returncode == 0, warm.stderr[-3000:]
    reports = [json.loads(line) for line in warm.stdout.splitlines()]
    assert [r["task_type"] for r in reports] == list(COMPILED) and all(r["hook"] for r in reports)
    for task_type in COMPILED:
        out = subprocess.run([sys.executable, "-c", CHECK, task_type], capture_output=True,
                             text=True, cwd=PROJECT_ROOT, timeout=300, env=_env(cache))
        assert out.returncode == 0, out.stderr[-3000:]
        found = json.loads(out.stdout.splitlines()[-1])
        assert set(found["states"]) == {"done"}, (task_type, found)
        assert found["compiled"] == [], f"{task_type} compiled {found['compiled']} after warm-up"
