"""/functions: the descriptors, and the state of what runs them: a real LocalServing whose
status file the site reads (the embedded runtime), a Kubernetes API over real HTTP (a cluster),
or neither (the page says why)."""
from __future__ import annotations

import json
import os
import time

import pytest

from eas_runtime.serving import LocalServing
from eas_runtime.settings import Settings
from eas_runtime.site import create_app
from eas_runtime.site.serving_status import StatusWriter, status_path
from tests.deploy.test_status import PODS, SERVICES, FakeApiServer, _kubeconfig
from tests.serving.serving_helpers import call, echo_service, wait_for, write_manifests


@pytest.fixture(autouse=True)
def no_cluster(monkeypatch, tmp_path):
    """No kubeconfig unless a test points KUBECONFIG at one."""
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    monkeypatch.setenv("KUBECONFIG", str(tmp_path / "no-kubeconfig"))


@pytest.fixture
def client(resources):
    return create_app(resources).test_client()


@pytest.fixture
def serving(settings, tmp_path):
    """A started LocalServing with an always-on echo Service and a scale-to-zero one, and the
    status writer the embedded runtime runs, writing into the site's EAS_HOME."""
    folder = write_manifests(tmp_path / "knative", echo_service("echo-on", min_scale=1, max_scale=2),
                             echo_service("echo-zero", max_scale=2))
    st = Settings.load(environ={}, home=settings.home, knative_dir=str(folder), max_replicas=2,
                       idle_s=60.0, cold_start_timeout_s=60.0)
    local = LocalServing(st, "http://127.0.0.1:1/eas/default", grace_s=3.0)
    local.start()
    writer = StatusWriter(local, settings.home, interval_s=0.2).start()
    yield local, writer
    writer.stop()
    local.stop()


def by_name(data):
    return {f["name"]: f for f in data["functions"]}


def test_descriptors_without_any_runtime(client):
    data = client.get("/api/functions").get_json()
    assert data["mode"] is None
    assert "does not exist" in data["unavailable"]["embedded"]
    assert "no kubeconfig at" in data["unavailable"]["cluster"]
    rows = by_name(data)
    verify = rows["eas-verify"]["descriptor"]
    assert verify["task_types"] == ["verify"] and verify["component"] == "function"
    assert (verify["cpu_request"], verify["memory_limit"], verify["min_scale"]) == ("250m", "1Gi", 0)
    assert rows["eas-index"]["descriptor"]["component"] == "index"
    assert rows["eas-verify"]["embedded"] is None and rows["eas-verify"]["cluster"] is None
    page = client.get("/functions")
    text = page.get_data(as_text=True)
    assert page.status_code == 200 and "No running state is available" in text
    assert 'id="fn-eas-verify"' in text and "CPU 250m / 1" in text


def test_embedded_runtime_processes(client, serving):
    local, _ = serving
    data = client.get("/api/functions").get_json()
    assert data["mode"] == "embedded" and data["runtime"]["pid"] == os.getpid()
    on = by_name(data)["echo-on"]["embedded"]
    [replica] = on["replicas"]
    [actual] = next(s for s in local.status() if s["name"] == "echo-on")["replicas"]
    assert replica["pid"] == actual["pid"] and replica["alive"] and replica["ready"]
    assert (on["min_scale"], on["max_scale"]) == (1, 2)
    assert by_name(data)["echo-zero"]["embedded"]["replicas"] == []
    assert by_name(data)["eas-verify"]["descriptor"] is not None      # descriptors still listed
    # a request scales echo-zero up; the page shows the new process once the runtime reports it
    answer = call(local, "echo-zero")
    def served():
        replicas = by_name(client.get("/api/functions").get_json())["echo-zero"]["embedded"]["replicas"]
        return replicas if replicas and replicas[0]["requests"] == 1 else None
    zero = wait_for(served, timeout_s=30, what="the new replica and its request in the status file")
    assert [r["pid"] for r in zero] == [answer["pgid"]] and not zero[0]["busy"]   # the replica's group
    page = client.get("/functions").get_data(as_text=True)
    assert f"pid {answer['pgid']}" in page and "Embedded runtime" in page and "scaled to zero" not in page.split('id="fn-echo-zero"')[1].split("</tr>")[0]


def test_stopped_runtime(client, serving):
    _, writer = serving
    writer.stop()
    data = client.get("/api/functions").get_json()
    assert data["mode"] is None and "stopped" in data["unavailable"]["embedded"]


def test_stale_or_orphaned_status_file(client, settings, serving):
    _, writer = serving
    writer.stop()
    writer.write()                                           # fresh, but nobody keeps it fresh
    path = status_path(settings.home)
    doc = json.loads(path.read_text())
    path.write_text(json.dumps({**doc, "written_at": time.time() - 60}))
    assert "has not reported for 60 s" in client.get("/api/functions").get_json()["unavailable"]["embedded"]
    path.write_text(json.dumps({**doc, "pid": 2 ** 22 + 12345}))
    assert "is no longer running" in client.get("/api/functions").get_json()["unavailable"]["embedded"]
    path.write_text("{half a fi")
    assert "cannot be read" in client.get("/api/functions").get_json()["unavailable"]["embedded"]
    assert client.get("/functions").status_code == 200


def test_cluster_through_the_kubernetes_api(client, tmp_path, monkeypatch):
    server = FakeApiServer({SERVICES: (200, "ksvc_list.json"), PODS: (200, "pod_list.json")})
    try:
        monkeypatch.setenv("KUBECONFIG", str(_kubeconfig(tmp_path, server.url)))
        data = client.get("/api/functions").get_json()
        assert data["mode"] == "cluster" and "embedded" in data["unavailable"]
        rows = by_name(data)
        control = rows["eas-control"]["cluster"]
        assert control["state"] == "Ready" and control["latest_ready_revision"] == "eas-control-00001"
        assert (control["replicas"], control["min_scale"], control["max_scale"]) == (1, 1, 4)
        assert rows["eas-null"]["cluster"]["state"] == "Missing"          # described, not deployed
        assert rows["eas-transit-search-bls-reference"]["cluster"]["reason"] == "RevisionFailed"
        page = client.get("/functions").get_data(as_text=True)
        assert "Knative Services in namespace" in page and "Unable to fetch image" in page
    finally:
        server.close()


def test_cluster_that_does_not_answer(client, tmp_path, monkeypatch):
    server = FakeApiServer({SERVICES: (403, "status_403.json")})
    try:
        monkeypatch.setenv("KUBECONFIG", str(_kubeconfig(tmp_path, server.url)))
        data = client.get("/api/functions").get_json()
        assert data["mode"] is None and "refused the request (403" in data["unavailable"]["cluster"]
        assert client.get("/functions").status_code == 200
    finally:
        server.close()
