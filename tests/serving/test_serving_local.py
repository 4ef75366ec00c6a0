"""Local Knative Serving with real replica processes (functions-framework running the echo function)."""
from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest

from eas_runtime.serving import (ColdStartFailed, DispatchError, NoCapacity, ReplicaLost,
                                 ServiceNotFound, ServingStopped)
from eas_runtime.settings import PROJECT_ROOT
from tests.serving.serving_helpers import (SERVICE_REF, call, children_of, echo_service, process_gone,
                             replicas, wait_for, write_manifests)


def in_background(fn, *args, **kwargs):
    """Run ``fn`` in a thread; returns (thread, outcome) where outcome gets 'result'/'error'."""
    outcome: dict = {}

    def run():
        try:
            outcome["result"] = fn(*args, **kwargs)
        except BaseException as exc:  # handed to the test
            outcome["error"] = exc

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread, outcome


def busy(serving, name):
    return [r for r in replicas(serving, name) if r["busy"] and r["ready"]]


def test_cold_start_on_first_request(make_serving):
    doc = echo_service("echo", env=[
        {"name": "FOO", "value": "bar"},
        {"name": "EAS_BUCKET", "value": "cluster-bucket"},
        {"name": "SECRET", "valueFrom": {"secretKeyRef": {"name": "s", "key": "k"}}},
    ])
    serving = make_serving(doc, bucket="local-bucket")
    assert replicas(serving, "echo") == []

    answer = call(serving, "echo", path="/some/path", env=[
        "FOO", "EAS_BUCKET", "SECRET", "K_SERVICE", "K_SINK", "PYTHONPATH", "PORT", "EAS_HOME"])

    [replica] = replicas(serving, "echo")
    assert answer["pgid"] == replica["pid"]
    assert replica["requests"] == 1 and not replica["busy"] and replica["ready"]
    assert answer["path"] == "/some/path"
    env = answer["env"]
    assert env["FOO"] == "bar"
    assert env["EAS_BUCKET"] == "local-bucket"  # the runtime's settings beat the manifest
    assert env["SECRET"] is None  # valueFrom entries are skipped
    assert env["K_SERVICE"] == "echo"
    assert env["K_SINK"] == "http://127.0.0.1:1/eas/default"
    assert env["PYTHONPATH"].split(os.pathsep)[0] == str(PROJECT_ROOT)
    assert env["PORT"] == str(replica["port"])
    assert env["EAS_HOME"] == serving.settings.home
    log = Path(serving.settings.home) / "logs" / f"echo-{replica['pid']}.log"
    assert replica["log"] == str(log) and log.exists()

    again = call(serving, "echo")
    assert again["pgid"] == answer["pgid"]  # warm: no second replica
    assert replicas(serving, "echo")[0]["requests"] == 2


def test_concurrency_one_scales_out_to_two_replicas(make_serving):
    serving = make_serving(echo_service("echo", concurrency=1, max_scale=2))
    first = in_background(call, serving, "echo", sleep=3)
    second = in_background(call, serving, "echo", sleep=3)
    for thread, _ in (first, second):
        thread.join(180)
    results = [outcome.get("result") or outcome.get("error") for _, outcome in (first, second)]
    assert all(isinstance(r, dict) for r in results), results
    assert results[0]["pgid"] != results[1]["pgid"]
    status = next(s for s in serving.status() if s["name"] == "echo")
    assert status["max_scale"] == 2 and status["concurrency"] == 1
    assert sorted(r["pid"] for r in status["replicas"]) == sorted(r["pgid"] for r in results)


def test_max_scale_one_queues_the_second_request(make_serving):
    serving = make_serving(echo_service("echo", concurrency=1, max_scale=1))
    first = in_background(call, serving, "echo", sleep=2)
    wait_for(lambda: busy(serving, "echo"), what="first request in flight")
    # While the only replica is busy, a caller with a short timeout gets no capacity.
    with pytest.raises(NoCapacity):
        call(serving, "echo", timeout=0.3)
    second = call(serving, "echo")  # waits for the replica to free up
    first[0].join(60)
    assert first[1]["result"]["pgid"] == second["pgid"]
    [replica] = replicas(serving, "echo")
    assert replica["requests"] >= 2


def test_idle_replicas_stop_but_min_scale_stays(make_serving):
    serving = make_serving(echo_service("scale-to-zero"), echo_service("always-on", min_scale=1),
                           idle_s=0.5)
    [kept] = replicas(serving, "always-on")  # started by start()
    first = call(serving, "scale-to-zero")
    call(serving, "always-on")
    assert len(replicas(serving, "scale-to-zero")) == 1
    wait_for(lambda: not replicas(serving, "scale-to-zero"), what="idle replica stopped")
    assert wait_for(lambda: process_gone(first["pgid"]), 10)
    time.sleep(2)  # several idle periods: the min-scale replica is still the same process
    [still] = replicas(serving, "always-on")
    assert still["pid"] == kept["pid"]
    assert call(serving, "scale-to-zero")["pgid"] != first["pgid"]  # cold start again


def test_replica_killed_mid_request(make_serving):
    serving = make_serving(echo_service("echo", concurrency=1, max_scale=1))
    thread, outcome = in_background(call, serving, "echo", sleep=30)
    [victim] = wait_for(lambda: busy(serving, "echo"), what="request in flight")
    assert serving.kill_replica("echo") == victim["pid"]
    thread.join(60)
    error = outcome.get("error")
    assert isinstance(error, ReplicaLost) and isinstance(error, ConnectionError), outcome
    assert replicas(serving, "echo") == []
    after = call(serving, "echo")
    assert after["pgid"] != victim["pid"]
    assert wait_for(lambda: process_gone(victim["pid"]), 10)


def test_replica_that_exits_is_noticed_and_replaced(make_serving):
    serving = make_serving(echo_service("echo"))
    pid = call(serving, "echo")["pgid"]
    serving.kill_replica("echo", signal.SIGTERM)  # gunicorn shuts down on its own
    wait_for(lambda: not replicas(serving, "echo"), what="exited replica removed")
    assert call(serving, "echo")["pgid"] != pid


def test_min_scale_replica_is_restored_after_a_crash(make_serving):
    serving = make_serving(echo_service("always-on", min_scale=1), idle_s=0.5)
    [first] = replicas(serving, "always-on")
    serving.kill_replica("always-on")
    wait_for(lambda: [r for r in replicas(serving, "always-on") if r["pid"] != first["pid"]],
             what="min-scale replica restarted")
    assert call(serving, "always-on")["pgid"] != first["pid"]


def test_stop_leaves_no_process_behind(make_serving):
    before = set(children_of(os.getpid()))   # servers of other tests (MinIO, PostgreSQL) may run
    serving = make_serving(echo_service("echo", max_scale=2), echo_service("always-on", min_scale=1))
    answers = [in_background(call, serving, "echo", sleep=1) for _ in range(2)]
    for thread, _ in answers:
        thread.join(120)
    workers = {outcome["result"]["pid"] for _, outcome in answers}
    leaders = {r["pid"] for s in serving.status() for r in s["replicas"]}
    assert len(leaders) == 3
    serving.stop()
    assert set(children_of(os.getpid())) - before == set()
    for pid in workers | leaders:
        assert wait_for(lambda: process_gone(pid), 10, f"pid {pid} gone")
    assert replicas(serving, "echo") == []
    with pytest.raises(ServingStopped):
        call(serving, "echo")


def test_replicas_die_with_a_killed_runtime(tmp_path):
    folder = write_manifests(tmp_path / "knative", echo_service("always-on", min_scale=1))
    script = textwrap.dedent(f"""
        import sys, time
        from eas_runtime.serving import LocalServing
        from eas_runtime.settings import Settings
        settings = Settings.load(environ={{}}, home={str(tmp_path / 'home')!r},
                                 knative_dir={str(folder)!r})
        serving = LocalServing(settings, "http://127.0.0.1:1/")
        serving.start()
        print(serving.status()[0]["replicas"][0]["pid"], flush=True)
        time.sleep(600)
    """)
    runtime = subprocess.Popen([sys.executable, "-c", script], cwd=PROJECT_ROOT,
                               stdout=subprocess.PIPE, text=True)
    try:
        pid = int(runtime.stdout.readline())
        assert not process_gone(pid)
        runtime.kill()
        runtime.wait(10)
        assert wait_for(lambda: process_gone(pid), 30, "orphaned replica stopped")
    finally:
        runtime.kill()
        runtime.wait(10)
        runtime.stdout.close()


def test_fixed_port_and_destination_forms(make_serving):
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    serving = make_serving(echo_service("pinned", min_scale=1, max_scale=3), ports={"pinned": port})
    assert serving.url_of("pinned") == f"http://127.0.0.1:{port}"
    status = next(s for s in serving.status() if s["name"] == "pinned")
    assert status["max_scale"] == 1 and status["replicas"][0]["port"] == port

    body = json.dumps({"env": ["K_SERVICE"]}).encode()
    code, headers, raw = serving.post({"uri": serving.url_of("pinned") + "/direct"},
                                      {"Content-Type": "application/json"}, body, 30)
    assert code == 200 and json.loads(raw)["path"] == "/direct"
    assert headers["Content-Type"] == "application/json"

    with pytest.raises(ServiceNotFound) as missing:
        serving.post({"ref": {**SERVICE_REF, "name": "nope"}}, {}, b"", 5)
    assert isinstance(missing.value, ValueError)  # unresolvable: the broker does not retry
    with pytest.raises(ValueError):
        serving.post({"ref": {"apiVersion": "eventing.knative.dev/v1", "kind": "Broker",
                              "name": "default"}}, {}, b"", 5)
    with pytest.raises(DispatchError):  # nothing listens on port 1
        serving.post({"uri": "http://127.0.0.1:1/"}, {}, b"", 5)


def test_a_failed_start_stops_everything(make_serving):
    broken = echo_service("broken", min_scale=1)
    broken["spec"]["template"]["spec"]["containers"][0]["args"][1] = "no_such_function"
    before = set(children_of(os.getpid()))   # servers of other tests (MinIO, PostgreSQL) may run
    serving = make_serving(echo_service("always-on", min_scale=1), broken, start=False)
    with pytest.raises(ColdStartFailed, match="broken"):
        serving.start()
    assert all(not s["replicas"] for s in serving.status())
    assert set(children_of(os.getpid())) - before == set()


def test_a_request_waits_for_a_busy_replica_before_scaling_out(make_serving):
    serving = make_serving(echo_service("echo", concurrency=1, max_scale=2), scale_up_delay_s=30)
    first = in_background(call, serving, "echo", sleep=1)
    wait_for(lambda: busy(serving, "echo"), what="first request in flight")
    second = call(serving, "echo")          # the replica frees up long before the delay ends
    first[0].join(60)
    assert first[1]["result"]["pgid"] == second["pgid"]
    assert len(replicas(serving, "echo")) == 1


def test_a_replica_busy_longer_than_the_delay_gets_a_second_one(make_serving):
    serving = make_serving(echo_service("echo", concurrency=1, max_scale=2), scale_up_delay_s=0.2)
    first = in_background(call, serving, "echo", sleep=5)
    wait_for(lambda: busy(serving, "echo"), what="first request in flight")
    second = call(serving, "echo")
    first[0].join(60)
    assert first[1]["result"]["pgid"] != second["pgid"]
    assert len(replicas(serving, "echo")) == 2
