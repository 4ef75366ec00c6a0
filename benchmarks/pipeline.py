"""Pipeline overhead on the embedded default (SQLite, local store, local broker).

Each figure stands beside a reference measured elsewhere and stated as a constant (the same
machine cannot run the prototype or other workflow engines), with the ratio. The prototype
polled the task database every 5 s, so a ready task waited 2.5 s on average and up to 5 s, and
every task of a chain paid that wait. Figures:

* events per second through the local broker (HTTP ingress -> durable queue -> subscriber);
* latency from an upload to ``task.ready`` (the claim that sends it), median and 99th percentile;
* a chain of 40 ``null`` tasks of zero duration (each reads the previous one's output),
  submitted to the broker ingress as ``job.submitted``: wall time from the submission to the
  end of the last attempt, all of it overhead (the tasks sleep 0 s), in total and per task;
  compared with the prototype's 5 s poll per task and with the overhead other engines report
  per chained task (Airflow 1.3-3 s, Argo about 10 s per step, Prefect 0.4-3 s, Celery about
  0.6 ms amortised) and with Knative's own broker hops (0.5-5 ms each, two per task: task.ready
  and task.finished);
* the function wrapper's overhead per task: a ``null`` task's HTTP round trip to a real
  functions-framework replica, through local serving with the broker's headers, minus the time
  spent in the science code.

Figures that vary from run to run on a shared machine are medians over repetitions.
"""
from __future__ import annotations

import concurrent.futures as cf
import statistics
import tempfile
import threading
import time
import uuid
from pathlib import Path

import requests
from sqlalchemy import func, select
from werkzeug.serving import make_server
from werkzeug.wrappers import Request, Response

PROTOTYPE_POLL_S = 5.0          # the prototype's scheduler loop
PROTOTYPE_MEAN_WAIT_S = PROTOTYPE_POLL_S / 2
CHAIN_TASKS = 40
#: Overhead per chained task [s] that other engines report (low, high).
ENGINE_ANCHORS_S = {"Airflow": (1.3, 3.0), "Argo (per step)": (10.0, 10.0), "Prefect": (0.4, 3.0),
                    "Celery (amortised)": (0.0006, 0.0006)}
#: One Knative Broker hop [s] (low, high); a task needs two: task.ready and task.finished.
KNATIVE_HOP_S = (0.0005, 0.005)


def _quantile(values, q):
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


class _Sink:
    """A subscriber that answers 202 and counts, on a keep-alive server as Knative's functions
    have (werkzeug's, which closes every connection, where that server does not exist)."""

    def __init__(self):
        self.count = 0
        self.lock = threading.Lock()

        @Request.application
        def app(request):
            request.get_data()
            with self.lock:
                self.count += 1
            return Response(status=202)
        try:
            from eas_runtime.serving.http import make_server as make_keepalive_server
            self.server = make_keepalive_server("127.0.0.1", 0, app)
        except ImportError:
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
        local = threading.local()

        def post(hb):
            session = getattr(local, "session", None) or requests.Session()
            local.session = session
            return session.post(url, headers=hb[0], data=hb[1], timeout=30)

        bodies = [events.to_http(events.make_event("bench.event", "/bench", {"i": i}, id=uuid.uuid4().hex))
                  for i in range(n_events)]
        start = time.perf_counter()
        with cf.ThreadPoolExecutor(clients) as pool:
            list(pool.map(post, bodies))
        accepted = time.perf_counter() - start
        broker.wait_idle(300)
        delivered = time.perf_counter() - start
        server.shutdown()
        broker.stop()
        db.dispose()
    sink.server.shutdown()
    return {"events": n_events, "ingress_per_s": n_events / accepted, "delivered_per_s": n_events / delivered,
            "delivered": sink.count}


def _chain_spec(tag: str, n: int) -> dict:
    tasks = []
    for i in range(n):
        task = {"task": "null", "name": f"c{i}", "outputs": {"receipt": f"c{i}.json"}}
        if i:
            task["inputs"] = {"previous": f"c{i - 1}.json"}
        tasks.append(task)
    return {"job_name": tag, "working_directory": f"bench/{tag}", "task_list": tasks}


def _run_chain(runtime, tag: str, n: int, timeout_s: float = 300.0) -> dict:
    """Submit a chain of ``n`` null tasks and wait for it; its overhead [s]."""
    from eas_runtime import events
    from eas_runtime.db.models import DONE, Attempt, Job, Task

    event = events.make_event(events.JOB_SUBMITTED, events.SOURCE_CLI, _chain_spec(tag, n), id=uuid.uuid4().hex)
    submitted = time.time()
    events.send(event, runtime.broker_url, token=runtime.settings.internal_token)
    deadline = time.monotonic() + timeout_s
    while True:
        with runtime.db.read() as s:
            job_id = s.scalar(select(Job.id).where(Job.name == tag))
            done = 0 if job_id is None else s.scalar(
                select(func.count()).select_from(Task).where(Task.job_id == job_id, Task.state == DONE))
        if done == n:
            break
        if time.monotonic() > deadline:
            raise RuntimeError(f"chain {tag}: {done}/{n} tasks done after {timeout_s} s")
        time.sleep(0.05)
    with runtime.db.read() as s:
        ended, run_s = s.execute(select(func.max(Attempt.ended_at), func.sum(Attempt.wall_s))
                                 .join(Task, Task.id == Attempt.task_id).where(Task.job_id == job_id)).one()
    # The tasks sleep 0 s: all of the wall time is overhead, including the part inside the
    # attempts (``wall_s``: the null code plus storing its output and announcing the product).
    total = ended.timestamp() - submitted
    return {"total_s": total, "run_s": run_s or 0.0, "overhead_s": total}


def embedded_figures(n_uploads: int = 100, rounds: int = 3, chain_tasks: int = CHAIN_TASKS,
                     chains: int = 3) -> dict:
    """Upload -> task.ready latencies and chain overheads on one embedded runtime; per round
    or chain, so that the caller can take medians."""
    from eas_runtime.db.models import Attempt, Task, TaskInput, WatchRule
    from eas_runtime.embedded import EmbeddedRuntime
    from eas_runtime.resources import Resources
    from eas_runtime.settings import Settings

    out = {"upload_p50_ms": [], "upload_p99_ms": [], "chain_overhead_s": [], "chain_run_s": []}
    with tempfile.TemporaryDirectory() as tmp:
        settings = Settings.load(home=tmp, gateway_port=0, index_port=0, adapter_port=0, reconcile_s=0)
        runtime = EmbeddedRuntime(settings).start()
        try:
            store = Resources(runtime.settings, db=runtime.db).store
            payload = Path(tmp) / "payload.txt"
            payload.write_text("x")
            # Warm up: the first events start eas-control's and eas-null's replicas (cold starts
            # are not what these figures are about).
            with runtime.db.session() as s:
                s.add(WatchRule(prefix="warmup/", task_types=["null"]))
                s.add(WatchRule(prefix="bench/up/", task_types=["null"]))
            for i in range(4):
                store.put_file(f"warmup/{i}.txt", payload)
                time.sleep(0.3)
            _run_chain(runtime, "warmup-chain", 3)
            runtime.wait_idle(120)
            time.sleep(1.0)
            for r in range(rounds):
                sent: dict[str, float] = {}
                for i in range(n_uploads):
                    # A job's folder is named after the file's stem and content: distinct stems.
                    key = f"bench/up/r{r}-{i:05d}.txt"
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
                                         .where(Attempt.number == 1, TaskInput.key.in_(list(sent)))).all()
                    if len(rows) >= n_uploads:
                        break
                    time.sleep(0.2)
                latencies = [(queued.timestamp() - sent[key]) * 1000 for key, queued in rows]
                out["upload_p50_ms"].append(statistics.median(latencies))
                out["upload_p99_ms"].append(_quantile(latencies, 0.99))
            for c in range(chains):
                runtime.wait_idle(120)
                chain = _run_chain(runtime, f"chain-{c}", chain_tasks)
                out["chain_overhead_s"].append(chain["overhead_s"])
                out["chain_run_s"].append(chain["run_s"])
        finally:
            runtime.stop()
    return out


def wrapper_overhead(n_tasks: int = 200) -> dict:
    """Null tasks posted one after the other to a real ``eas-null`` replica (functions-framework
    under gunicorn, as ``eas up`` and Knative run it) through local serving, with the broker's
    headers (``Prefer: reply``): the round trip minus the attempt's own run time (``wall_s``)."""
    import yaml

    from eas_runtime import events
    from eas_runtime.control import scheduler
    from eas_runtime.db.models import Attempt
    from eas_runtime.db.session import Database
    from eas_runtime.jobs import compile_job, insert_job
    from eas_runtime.serving import LocalServing
    from eas_runtime.settings import PROJECT_ROOT, Settings

    sink = _Sink()                     # K_SINK of the replica: events it posts are counted
    with tempfile.TemporaryDirectory() as tmp:
        settings = Settings.load(home=tmp, reconcile_s=0)
        db = Database(settings.db_url)
        db.create_schema()
        manifest = yaml.safe_load((PROJECT_ROOT / "knative/base/eas-null.yaml").read_text())
        serving = LocalServing(settings, broker_url=sink.url, services=[manifest])
        serving.start()
        try:
            spec = {"job_name": "bench", "task_list": [{"task": "null", "name": f"n{i}"}
                                                       for i in range(n_tasks + 5)]}
            with db.session() as s:
                insert_job(s, compile_job(spec), source_event=None)
            readies = scheduler.schedule(db, lambda e: True)
            destination = {"ref": {"apiVersion": "serving.knative.dev/v1", "kind": "Service", "name": "eas-null"}}
            overheads, round_trips = [], []
            for i, ready in enumerate(readies):
                headers, body = events.to_http(ready.event())
                headers["Prefer"] = "reply"
                t0 = time.perf_counter()
                status, _, answer = serving.post(destination, headers, body, 60)
                rt = time.perf_counter() - t0
                assert status in (200, 202), answer
                if i < 5:
                    continue               # the cold start and the first requests warm up
                with db.read() as s:
                    wall = s.scalar(select(Attempt.wall_s).where(Attempt.id == ready.attempt_id))
                round_trips.append(rt * 1000)
                overheads.append((rt - wall) * 1000)
        finally:
            serving.stop()
            db.dispose()
    sink.server.shutdown()
    return {"n": len(overheads), "median_ms": statistics.median(overheads), "p99_ms": _quantile(overheads, 0.99),
            "round_trip_median_ms": statistics.median(round_trips)}


def _range(low: float, high: float, unit: float = 1000.0) -> str:
    return f"{low * unit:g}" if low == high else f"{low * unit:g}-{high * unit:g}"


def run(quick: bool = False) -> list[tuple[str, str, str, str]]:
    """Rows (figure, measured, reference, ratio) for the benchmark table."""
    scale = 0.25 if quick else 1.0
    repeats = 1 if quick else 3
    rows = []
    b = broker_throughput(int(2000 * scale))
    rows.append(("broker: events/s accepted at the ingress", f"{b['ingress_per_s']:.0f}", "", ""))
    rows.append(("broker: events/s delivered to a subscriber", f"{b['delivered_per_s']:.0f}",
                 f"{1 / PROTOTYPE_POLL_S:.1f} (one task per 5 s poll)",
                 f"{b['delivered_per_s'] * PROTOTYPE_POLL_S:.0f}x"))

    e = embedded_figures(int(100 * scale), rounds=repeats, chains=repeats)
    ref_ms = PROTOTYPE_MEAN_WAIT_S * 1000
    p50, p99 = statistics.median(e["upload_p50_ms"]), statistics.median(e["upload_p99_ms"])
    rows.append((f"upload -> task.ready, median [ms] (median of {repeats})", f"{p50:.1f}",
                 f"{ref_ms:.0f} (mean poll wait)", f"{ref_ms / p50:.0f}x faster"))
    rows.append((f"upload -> task.ready, 99th percentile [ms] (median of {repeats})", f"{p99:.1f}",
                 f"{PROTOTYPE_POLL_S * 1000:.0f} (worst poll wait)", f"{PROTOTYPE_POLL_S * 1000 / p99:.0f}x faster"))

    overhead = statistics.median(e["chain_overhead_s"])
    per_task = overhead / CHAIN_TASKS
    prototype = CHAIN_TASKS * PROTOTYPE_POLL_S
    rows.append((f"{CHAIN_TASKS} null tasks chain, total overhead [s] (median of {repeats})", f"{overhead:.2f}",
                 f"{prototype:.0f} (prototype: 5 s poll per task)", f"{prototype / overhead:.0f}x less"))
    rows.append(("  of which inside the attempts (null code, storing its output) [s]",
                 f"{statistics.median(e['chain_run_s']):.3f}", "", ""))
    for engine, (low, high) in ENGINE_ANCHORS_S.items():
        ratio = (f"{low / per_task:.3g}x" if low == high else f"{low / per_task:.3g}-{high / per_task:.3g}x")
        rows.append((f"chain overhead per task [ms] vs {engine}", f"{per_task * 1000:.1f}",
                     f"{_range(low, high)} (reported)", ratio))
    hops = tuple(2 * h for h in KNATIVE_HOP_S)
    rows.append(("chain overhead per task [ms] vs two Knative broker hops", f"{per_task * 1000:.1f}",
                 f"{_range(*hops)} (0.5-5 ms per hop)",
                 f"{hops[0] / per_task:.2g}-{hops[1] / per_task:.2g}x"))

    w = [wrapper_overhead(int(200 * scale)) for _ in range(repeats)]
    w50 = statistics.median(x["median_ms"] for x in w)
    w99 = statistics.median(x["p99_ms"] for x in w)
    rows.append((f"wrapper overhead per null task, median [ms] (median of {repeats})", f"{w50:.1f}",
                 f"{ref_ms:.0f} (mean poll wait)", f"{ref_ms / w50:.0f}x less"))
    rows.append((f"wrapper overhead per null task, p99 [ms] (median of {repeats})", f"{w99:.1f}", "", ""))
    return rows
