"""``eas serve`` on gunicorn (the images) beside the built-in server (the embedded runtime).

For each server, eas-index runs as its own process on a fresh SQLite database and is asked
for ``/api/summary`` (a page with a database query) and for ``/healthz`` (the server and the
framework alone): over one kept-alive connection one request after another (latency), then
from 8 threads with a connection each (throughput). The process's resident memory after the
load is read from /proc. Figures are medians over the requests; ratios are gunicorn / built-in
in the same run. Why the embedded runtime keeps its own server: in a cluster Knative's
queue-proxy stands in front of every replica and shields gunicorn from slow clients; locally
nothing does, and the built-in server bounds slow request bodies itself (408) and the size of
bodies (413) before a thread is given to them.
"""
from __future__ import annotations

import http.client
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from eas_runtime import devservers

SERVERS = ("gunicorn", "builtin")
THREADS = 8


def _start(home: Path, server: str) -> tuple[subprocess.Popen, int]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("EAS_")}
    env.update(EAS_HOME=str(home), EAS_HTTP_SERVER=server, EAS_LOG_LEVEL="WARNING")
    port = devservers.free_port()
    proc = subprocess.Popen([sys.executable, "-m", "eas_runtime.cli", "serve", "index", "--host", "127.0.0.1",
                             "--port", str(port)], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            conn.request("GET", "/healthz")
            if conn.getresponse().status == 200:
                conn.close()
                return proc, port
        except OSError:
            time.sleep(0.1)
    proc.kill()
    raise RuntimeError(f"eas serve index ({server}) did not answer within 60 s")


def _latencies(port: int, path: str, n: int) -> list[float]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    out = []
    for _ in range(n):
        start = time.perf_counter()
        conn.request("GET", path)
        answer = conn.getresponse()
        answer.read()
        out.append(time.perf_counter() - start)
        if answer.status != 200:
            raise RuntimeError(f"{path}: {answer.status}")
    conn.close()
    return out


def _throughput(port: int, path: str, per_thread: int) -> float:
    def work():
        _latencies(port, path, per_thread)
    threads = [threading.Thread(target=work) for _ in range(THREADS)]
    start = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return THREADS * per_thread / (time.perf_counter() - start)


def _rss_mib(pid: int) -> float:
    """Resident memory of the process and its children [MiB] (gunicorn: arbiter + worker)."""
    total, todo = 0, [pid]
    while todo:
        p = todo.pop()
        try:
            for line in Path(f"/proc/{p}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
            for task in Path(f"/proc/{p}/task").iterdir():
                children = (task / "children").read_text().split()
                todo += [int(c) for c in children]
        except OSError:
            continue
    return total / 1024


def measure(quick: bool = False) -> dict[str, dict[str, float]]:
    n = 100 if quick else 400
    figures: dict[str, dict[str, float]] = {}
    with tempfile.TemporaryDirectory(prefix="eas-bench-servers-") as tmp:
        home = Path(tmp) / "home"
        subprocess.run([sys.executable, "-m", "eas_runtime.cli", "--home", str(home), "db", "upgrade"],
                       check=True, capture_output=True)
        for server in SERVERS:
            proc, port = _start(home, server)
            try:
                _latencies(port, "/api/summary", 20)          # warm-up
                figures[server] = {
                    "healthz_ms": 1e3 * statistics.median(_latencies(port, "/healthz", n)),
                    "summary_ms": 1e3 * statistics.median(_latencies(port, "/api/summary", n)),
                    "summary_rps": _throughput(port, "/api/summary", n // 4),
                    "rss_mib": _rss_mib(proc.pid),
                }
            finally:
                proc.send_signal(signal.SIGTERM)
                proc.wait(timeout=60)
    return figures


def run(quick: bool = False) -> list[tuple[str, str, str, str]]:
    f = measure(quick)
    g, b = f["gunicorn"], f["builtin"]
    return [
        ("eas-index /healthz, one kept-alive connection: gunicorn vs built-in [ms, median]",
         f"{g['healthz_ms']:.2f} ms", f"{b['healthz_ms']:.2f} ms", f"{g['healthz_ms'] / b['healthz_ms']:.2f}"),
        ("eas-index /api/summary, one kept-alive connection [ms, median]",
         f"{g['summary_ms']:.2f} ms", f"{b['summary_ms']:.2f} ms", f"{g['summary_ms'] / b['summary_ms']:.2f}"),
        (f"eas-index /api/summary, {THREADS} connections at once [requests/s]",
         f"{g['summary_rps']:.0f}/s", f"{b['summary_rps']:.0f}/s", f"{g['summary_rps'] / b['summary_rps']:.2f}"),
        ("eas-index resident memory after the load (processes together) [MiB]",
         f"{g['rss_mib']:.0f} MiB", f"{b['rss_mib']:.0f} MiB", f"{g['rss_mib'] / b['rss_mib']:.2f}"),
    ]
