"""Run the benchmarks and print one table.

Every figure is measured in this run, beside its reference, and reported with the ratio:
timings on a shared, noisy machine are only comparable within one run. Sections: ``pipeline``
(broker, upload -> task.ready, wrapper overhead), ``jobs`` (submitting a 20,000-task job),
``diagnostics`` (page queries on a large database), ``site`` (the index site's slowest pages),
``science`` (transit searches as the functions run them), ``search`` (the BLS kernel and the
full search of a PLATO-length light curve), ``tls`` (TLS binned beside TLS on every sample),
``detrend`` (the fast biweight beside wotan), ``coldstart`` (a new replica to its science, per
function), ``chain`` (a PLATO star and 200 TESS-like stars through the standard chain),
``planets`` (the multi-planet search and vetting beside one search, per star), ``servers``
(``eas serve`` on gunicorn beside the built-in server).
"""
from __future__ import annotations

import argparse
import importlib
import logging
import os
import platform
import sys

SECTIONS = ("pipeline", "jobs", "diagnostics", "site", "science", "search", "tls", "detrend",
            "coldstart", "chain", "planets", "servers")


def _machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return f"{cpu}, {os.cpu_count()} cores, Python {platform.python_version()}"


def print_table(rows, out=sys.stdout) -> None:
    header = ("figure", "measured", "reference", "ratio")
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(4)]
    for row in [header, tuple("-" * w for w in widths), *rows]:
        print("  ".join(str(cell).ljust(width) for cell, width in zip(row, widths)).rstrip(), file=out)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks")
    parser.add_argument("--quick", action="store_true", help="smaller inputs, fewer repetitions")
    parser.add_argument("--only", choices=SECTIONS, action="append", help="run only these sections")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    rows = []
    for section in args.only or SECTIONS:
        try:
            module = importlib.import_module(f"benchmarks.{section}")
        except ModuleNotFoundError as exc:
            if exc.name != f"benchmarks.{section}":
                raise
            continue
        print(f"running {section} ...", file=sys.stderr, flush=True)
        try:
            rows += module.run(args.quick)
        except BaseException:
            if rows:            # keep what the sections before it measured
                print(f"machine: {_machine()}\nsections before {section} (it failed):")
                print_table(rows)
            raise
    print(f"machine: {_machine()}")
    print_table(rows)
    return 0


if __name__ == "__main__":
    sys.exit(main())
