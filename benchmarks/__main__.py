"""Run the benchmarks and print one table.

Every figure is measured in this run, beside its reference, and reported with the ratio:
timings on a shared, noisy machine are only comparable within one run.
"""
from __future__ import annotations

import argparse
import os
import platform
import sys


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


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks")
    parser.add_argument("--quick", action="store_true", help="fewer repetitions")
    parser.add_argument("--only", choices=["pipeline"], default=None)
    args = parser.parse_args(argv)
    import logging
    logging.basicConfig(level=logging.WARNING)
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    from benchmarks import pipeline

    scale = 0.25 if args.quick else 1.0
    rows = []
    b = pipeline.broker_throughput(int(2000 * scale))
    rows.append(("broker: events/s accepted at the ingress", f"{b['ingress_per_s']:.0f}", "", ""))
    rows.append(("broker: events/s delivered to a subscriber", f"{b['delivered_per_s']:.0f}",
                 f"{1 / pipeline.PROTOTYPE_POLL_S:.1f} (one task per 5 s poll)",
                 f"{b['delivered_per_s'] * pipeline.PROTOTYPE_POLL_S:.0f}x"))
    u = pipeline.upload_to_ready(int(100 * scale))
    ref_ms = pipeline.PROTOTYPE_MEAN_WAIT_S * 1000
    rows.append(("upload -> task.ready, median [ms]", f"{u['median_ms']:.1f}", f"{ref_ms:.0f} (mean poll wait)",
                 f"{ref_ms / u['median_ms']:.0f}x faster"))
    rows.append(("upload -> task.ready, 99th percentile [ms]", f"{u['p99_ms']:.1f}",
                 f"{pipeline.PROTOTYPE_POLL_S * 1000:.0f} (worst poll wait)",
                 f"{pipeline.PROTOTYPE_POLL_S * 1000 / u['p99_ms']:.0f}x faster"))
    w = pipeline.wrapper_overhead(int(200 * scale))
    rows.append(("wrapper overhead per null task, median [ms]", f"{w['median_ms']:.1f}",
                 f"{ref_ms:.0f} (mean poll wait)", f"{ref_ms / w['median_ms']:.0f}x less"))
    rows.append(("wrapper overhead per null task, p99 [ms]", f"{w['p99_ms']:.1f}", "", ""))
    print(f"machine: {_machine()}")
    widths = [max(len(r[i]) for r in rows + [("figure", "measured", "reference", "ratio")]) for i in range(4)]
    header = ("figure", "measured", "reference", "ratio")
    for row in [header, tuple("-" * w for w in widths)] + rows:
        print("  ".join(cell.ljust(width) for cell, width in zip(row, widths)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
