"""Compile a science function's machine code before a replica needs it.

    python -m eas_runtime.warmup transit_search_tls detrend     # or: all

Several functions run numba kernels (TLS, wotan, the fast biweight, both BLS searches). numba
compiles a kernel on its first call and, with ``cache=True``, keeps the machine code on disk
(``NUMBA_CACHE_DIR``; the images set it to ``/home/eas/.cache/numba``). Without that cache a
replica scaled from zero compiles before its first search: 15 s on a quiet 2-core machine for
TLS, 90-120 s on a loaded one, paid again at every cold start. Each function image therefore
runs this module when it is built (the generated ``Containerfile``), as the user the replica
runs as, so the cache is in the image and a new replica only loads it (see
``python -m benchmarks --only coldstart`` for the figures per function).

A function opts in by defining ``warm_up()`` in its ``science.py``: a small run that reaches
every compiled kernel its tasks can call. Every function, with or without a hook, has its
entry point imported here, so that a missing package fails the image build rather than the
first task.

numba keys its cache by CPU model and features: a node of another CPU model compiles again on
its first call (slower, never wrong). ``NUMBA_CPU_NAME=generic`` would make the cache portable
at the price of slower kernels; we keep native code.
"""
from __future__ import annotations

import argparse
import importlib
import importlib.util
import json
import sys
import time
from pathlib import Path


def function_types() -> list[str]:
    """Task types with a function folder (``functions/<task_type>/main.py``) on the import path:
    the checkout's, or ``/app/functions/`` in an image (``PYTHONPATH=/app``)."""
    spec = importlib.util.find_spec("functions")
    folders = list(spec.submodule_search_locations or []) if spec else []
    return sorted({p.parent.name for folder in folders for p in Path(folder).glob("*/main.py")})


def warm_up(task_type: str) -> dict:
    """Import ``task_type``'s entry point and run its ``warm_up()`` hook when it has one;
    returns the seconds each step took."""
    if task_type not in function_types():
        raise ValueError(f"no function {task_type!r} under functions/ "
                         f"(there are: {', '.join(function_types())})")
    start = time.perf_counter()
    importlib.import_module(f"functions.{task_type}.main")
    science = importlib.import_module(f"functions.{task_type}.science")
    imported = time.perf_counter()
    hook = getattr(science, "warm_up", None)
    if hook is not None:
        hook()
    done = time.perf_counter()
    return {"task_type": task_type, "import_s": round(imported - start, 3),
            "warm_up_s": round(done - imported, 3), "hook": hook is not None}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m eas_runtime.warmup", description=__doc__.split("\n\n")[0])
    parser.add_argument("task_types", nargs="+", metavar="TASK_TYPE",
                        help="function folders under functions/, or 'all'")
    args = parser.parse_args(argv)
    known = function_types()
    wanted = known if args.task_types == ["all"] else args.task_types
    unknown = sorted(set(wanted) - set(known))
    if unknown:
        print(f"unknown function(s) {', '.join(unknown)}; there are: {', '.join(known)}",
              file=sys.stderr)
        return 2
    for task_type in wanted:
        print(json.dumps(warm_up(task_type)), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
