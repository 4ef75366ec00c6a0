"""Pipeline overhead on the embedded default (SQLite, local store, local broker).

Three figures, each beside the prototype's polling design as the reference (the prototype
polled the task database every 5 s, so a ready task waited 2.5 s on average and up to 5 s):

* events per second through the local broker (HTTP ingress -> durable queue -> subscriber);
* latency from an upload to ``task.ready`` (the claim that sends it), median and 99th percentile;
* the function wrapper's overhead per task: a ``null`` task's HTTP round trip minus the time
  spent in the science code (its sleep).
"""
from __future__ import annotations

import concurrent.futures as cf
import statistics
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

import requests
from sqlalchemy import select
from werkzeug.serving import make_server
from werkzeug.wrappers import Request, Response

PROTOTYPE_POLL_S = 5.0          # the prototype's scheduler loop
PROTOTYPE_MEAN_WAIT_S = PROTOTYPE_POLL_S / 2


def _quantile(values, q):
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


class _Sink:
    """A subscriber that answers 202 and counts."""

    def __init__(self):
        self.count = 0
        self.lock = threading.Lock()

        @Request.application
        def app(request):
            with self.lock:
                self.count += 1
            return Response(status=202)
        self.server = make_server("127.0.0.1", 0, app, threaded=True)
        self.url = f"http://127.0.0.1:{self.server.server_port}/"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


def broker_throughput(n_events: int = 2000, clients: int = 4) -> dict:
    from eas_runtime import events
    from eas_runtime.broker import Broker, serve
    from eas_runtime.broker.config import build_config
    from eas_runtime.db.session import Database
    from eas_runtime.settings import Settings

    sink = _Sink()
    docs = [{"apiVersion": "eventing.knative.dev/v1", "kind": "Broker",
             "metadata": {"name": "default", "namespace": "eas"}},
            {"apiVersion": "eventing.knative.dev/v1", "kind": "Trigger",
             "metadata": {"name": "sink", "namespace": "eas"},
             "spec": {"broker": "default", "filter": {"attributes": {"type": "bench.event"}},
                      "subscriber": {"uri": sink.url}}}]
    with tempfile.TemporaryDirectory() as tmp:
        settings = Settings.load(home=tmp)
        db = Database(settings.db_url)
        db.create_schema()
        broker = Broker(settings, db, config=build_config(docs))
        broker.start()
        server = serve(broker, "127.0.0.1", 0)
        url = f"{server.url}/eas/default"
        session = requests.Session()
        bodies = [events.to_http(events.make_event("bench.event", "/bench", {"i": i}, id=uuid.uuid4().hex))
                  for i in range(n_events)]
        start = time.perf_counter()
        with cf.ThreadPoolExecutor(clients) as pool:
            list(pool.map(lambda hb: session.post(url, headers=hb[0], data=hb[1], timeout=30), bodies))
        accepted = time.perf_counter() - start
        broker.wait_idle(300)
        delivered = time.perf_counter() - start
        server.shutdown()
        broker.stop()
        db.dispose()
    sink.server.shutdown()
    return {"events": n_events, "ingress_per_s": n_events / accepted, "delivered_per_s": n_events / delivered,
            "delivered": sink.count}


def upload_to_ready(n_uploads: int = 100) -> dict:
    from eas_runtime.db.models import Attempt, Product, Task, TaskInput, WatchRule
    from eas_runtime.embedded import EmbeddedRuntime
    from eas_runtime.resources import Resources
    from eas_runtime.settings import Settings

    with tempfile.TemporaryDirectory() as tmp:
        settings = Settings.load(home=tmp, gateway_port=0, index_port=0, adapter_port=0, reconcile_s=0)
        runtime = EmbeddedRuntime(settings).start()
        try:
            with runtime.db.session() as s:
                s.add(WatchRule(prefix="bench/", task_types=["null"]))
            store = Resources(runtime.settings, db=runtime.db).store
            sent: dict[str, float] = {}
            payload = Path(tmp) / "payload.txt"
            payload.write_text("x")
            # Warm up: the first uploads start eas-null's replicas (cold starts are not
            # what this figure is about); then uploads arrive 50 ms apart.
            for i in range(4):
                store.put_file(f"warmup/{i}.txt", payload)
            with runtime.db.session() as s:
                s.add(WatchRule(prefix="warmup/", task_types=["null"]))
            for i in range(4):
                store.put_file(f"warmup/{i}.txt", payload)
                time.sleep(0.5)
            runtime.wait_idle(120)
            time.sleep(1.0)
            for i in range(n_uploads):
                key = f"bench/{i:05d}.txt"
                sent[key] = time.time()
                store.put_file(key, payload)
                time.sleep(0.05)
            runtime.wait_idle(120)
            deadline = time.monotonic() + 120
            while time.monotonic() < deadline:
                with runtime.db.read() as s:
                    rows = s.execute(select(TaskInput.key, Attempt.queued_at)
                                     .join(Task, Task.id == TaskInput.task_id)
                                     .join(Attempt, Attempt.task_id == Task.id)
                                     .where(Attempt.number == 1)).all()
                if sum(1 for key, _ in rows if key in sent) >= n_uploads:
                    break
                time.sleep(0.2)
        finally:
            runtime.stop()
    latencies = [(queued.timestamp() - sent[key]) * 1000 for key, queued in rows if key in sent]
    return {"n": len(latencies), "median_ms": statistics.median(latencies),
            "p99_ms": _quantile(latencies, 0.99)}


def wrapper_overhead(n_tasks: int = 200) -> dict:
    import functions_framework

    from eas_runtime.control import scheduler
    from eas_runtime.db.models import Attempt
    from eas_runtime.db.session import Database
    from eas_runtime.jobs import compile_job, insert_job
    from eas_runtime.resources import Resources
    from eas_runtime.settings import PROJECT_ROOT, Settings
    from eas_runtime.store.local import LocalStore

    with tempfile.TemporaryDirectory() as tmp:
        settings = Settings.load(home=tmp)
        db = Database(settings.db_url)
        db.create_schema()
        res = Resources(settings, db=db, send=lambda e: None, store=LocalStore(settings.store_path))
        app = functions_framework.create_app(target="handle", source=str(PROJECT_ROOT / "functions/null/main.py"),
                                             signature_type="http")
        sys.modules["main"].handle.runner._resources = res
        server = make_server("127.0.0.1", 0, app, threaded=True)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        url = f"http://127.0.0.1:{server.server_port}/"
        spec = {"job_name": "bench", "task_list": [{"task": "null", "name": f"n{i}"} for i in range(n_tasks)]}
        with db.session() as s:
            insert_job(s, compile_job(spec), source_event=None)
        readies = scheduler.schedule(db, lambda e: True)
        from eas_runtime import events
        session = requests.Session()
        overheads, round_trips = [], []
        for ready in readies:
            headers, body = events.to_http(ready.event())
            t0 = time.perf_counter()
            r = session.post(url, headers=headers, data=body, timeout=30)
            rt = time.perf_counter() - t0
            assert r.status_code == 202, r.text
            with db.read() as s:
                wall = s.scalar(select(Attempt.wall_s).where(Attempt.id == ready.attempt_id))
            round_trips.append(rt * 1000)
            overheads.append((rt - wall) * 1000)
        server.shutdown()
        db.dispose()
    return {"n": len(overheads), "median_ms": statistics.median(overheads), "p99_ms": _quantile(overheads, 0.99),
            "round_trip_median_ms": statistics.median(round_trips)}


def run(quick: bool = False) -> list[tuple[str, str, str, str]]:
    """Rows (figure, measured, reference, ratio) for the benchmark table."""
    scale = 0.25 if quick else 1.0
    rows = []
    b = broker_throughput(int(2000 * scale))
    rows.append(("broker: events/s accepted at the ingress", f"{b['ingress_per_s']:.0f}", "", ""))
    rows.append(("broker: events/s delivered to a subscriber", f"{b['delivered_per_s']:.0f}",
                 f"{1 / PROTOTYPE_POLL_S:.1f} (one task per 5 s poll)",
                 f"{b['delivered_per_s'] * PROTOTYPE_POLL_S:.0f}x"))
    u = upload_to_ready(int(100 * scale))
    ref_ms = PROTOTYPE_MEAN_WAIT_S * 1000
    rows.append(("upload -> task.ready, median [ms]", f"{u['median_ms']:.1f}", f"{ref_ms:.0f} (mean poll wait)",
                 f"{ref_ms / u['median_ms']:.0f}x faster"))
    rows.append(("upload -> task.ready, 99th percentile [ms]", f"{u['p99_ms']:.1f}",
                 f"{PROTOTYPE_POLL_S * 1000:.0f} (worst poll wait)",
                 f"{PROTOTYPE_POLL_S * 1000 / u['p99_ms']:.0f}x faster"))
    w = wrapper_overhead(int(200 * scale))
    rows.append(("wrapper overhead per null task, median [ms]", f"{w['median_ms']:.1f}",
                 f"{ref_ms:.0f} (mean poll wait)", f"{ref_ms / w['median_ms']:.0f}x less"))
    rows.append(("wrapper overhead per null task, p99 [ms]", f"{w['p99_ms']:.1f}", "", ""))
    return rows
