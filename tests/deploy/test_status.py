"""``knative_service_status`` and ``eas cluster status`` against a Kubernetes API over real HTTP:
a werkzeug server on loopback answers with the JSON in fixtures/, and a
``kubernetes.client.ApiClient`` whose configuration's host points at it asks."""
from __future__ import annotations

import json
import socket
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from kubernetes import client
from werkzeug.serving import make_server
from werkzeug.wrappers import Request, Response

from eas_runtime.deploy.status import (
    ClusterUnavailable,
    api_client_from_config,
    format_status,
    knative_service_status,
)

FIXTURES = Path(__file__).parent / "fixtures"
REPO = Path(__file__).resolve().parents[2]
SERVICES = "/apis/serving.knative.dev/v1/namespaces/eas/services"
PODS = "/api/v1/namespaces/eas/pods"


class FakeApiServer:
    """Answers the two list calls from fixture files; anything else is a 404 Status."""

    def __init__(self, routes: dict[str, tuple[int, str]]):
        self.routes = routes
        self.requests: list[tuple[str, str, dict]] = []
        self.server = make_server("127.0.0.1", 0, self.app, threaded=True)
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @Request.application
    def app(self, request: Request) -> Response:
        self.requests.append((request.method, request.path, dict(request.args)))
        status, name = self.routes.get(request.path, (404, "status_404.json"))
        return Response((FIXTURES / name).read_bytes(), status=status,
                        content_type="application/json")

    def api_client(self) -> client.ApiClient:
        return client.ApiClient(client.Configuration(host=self.url))

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def api_server():
    servers: list[FakeApiServer] = []

    def start(routes: dict[str, tuple[int, str]] | None = None) -> FakeApiServer:
        """A server answering the recorded lists; ``routes`` replaces some answers."""
        default = {SERVICES: (200, "ksvc_list.json"), PODS: (200, "pod_list.json")}
        server = FakeApiServer({**default, **(routes or {})})
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.close()


def by_name(rows):
    return {r["name"]: r for r in rows}


def test_ready_service(api_server):
    server = api_server()
    rows = by_name(knative_service_status(server.api_client(), "eas"))
    control = rows["eas-control"]
    assert control["ready"] is True and control["state"] == "Ready"
    assert control["latest_ready_revision"] == "eas-control-00001"
    assert control["url"] == "http://eas-control.eas.svc.cluster.local"
    assert (control["replicas"], control["ready_replicas"]) == (1, 1)
    assert (control["min_scale"], control["max_scale"]) == (1, 4)
    index = rows["eas-index"]
    assert index["url"] == "http://eas-index.eas.127.0.0.1.sslip.io"
    assert (index["replicas"], index["ready_replicas"]) == (2, 1)
    # the list calls the client made: Knative Services, and pods by the Knative label
    assert ("GET", SERVICES, {}) in server.requests
    assert ("GET", PODS, {"labelSelector": "serving.knative.dev/service"}) in server.requests


def test_scaled_to_zero_is_ready_with_no_replicas(api_server):
    verify = by_name(knative_service_status(api_server().api_client()))["eas-verify"]
    assert verify["ready"] is True and verify["task_type"] == "verify"
    assert verify["replicas"] == 0          # its only pod is terminating
    assert (verify["min_scale"], verify["max_scale"]) == (0, 10)


def test_not_ready_service_keeps_serving_its_last_ready_revision(api_server):
    bls = by_name(knative_service_status(api_server().api_client()))[
        "eas-transit-search-bls-reference"]
    assert bls["ready"] is False and bls["state"] == "NotReady"
    assert bls["reason"] == "RevisionFailed" and "Unable to fetch image" in bls["message"]
    assert bls["latest_ready_revision"] == "eas-transit-search-bls-reference-00001"
    assert bls["latest_created_revision"] == "eas-transit-search-bls-reference-00002"
    assert bls["replicas"] == 1             # the pending pod of the new revision does not count


def test_unknown_service_waiting_for_its_first_revision(api_server):
    ingest = by_name(knative_service_status(api_server().api_client()))["eas-ingest-external-lcs"]
    assert ingest["ready"] is None and ingest["state"] == "Unknown"
    assert ingest["reason"] == "RevisionMissing"
    assert ingest["latest_ready_revision"] == "" and ingest["url"] == ""


def test_missing_services_are_reported(api_server):
    rows = by_name(knative_service_status(api_server().api_client(),
                                          expected=["eas-null", "eas-verify"]))
    assert rows["eas-null"]["state"] == "Missing" and rows["eas-null"]["present"] is False
    assert rows["eas-verify"]["state"] == "Ready"
    empty = knative_service_status(api_server({SERVICES: (200, "ksvc_list_empty.json")})
                                   .api_client(), expected=["eas-control"])
    assert [(r["name"], r["state"]) for r in empty] == [("eas-control", "Missing")]


def test_format_status_table(api_server):
    text = format_status(knative_service_status(api_server().api_client(),
                                                expected=["eas-null"]))
    lines = text.splitlines()
    assert lines[0].split() == ["SERVICE", "READY", "REVISION", "REPLICAS", "SCALE", "URL"]
    control = next(line for line in lines if line.startswith("eas-control "))
    assert control.split() == ["eas-control", "True", "eas-control-00001", "1", "1..4",
                               "http://eas-control.eas.svc.cluster.local"]
    assert any(line.startswith("eas-null ") and "Missing" in line for line in lines)
    assert "eas-transit-search-bls-reference: RevisionFailed: Revision" in text
    assert "eas-index-00002" in text and "2 (1 ready)" in text


def test_knative_not_installed(api_server):
    server = api_server({SERVICES: (404, "status_404.json")})
    with pytest.raises(ClusterUnavailable, match="Knative Serving installed"):
        knative_service_status(server.api_client())


def test_forbidden(api_server):
    server = api_server({SERVICES: (403, "status_403.json")})
    with pytest.raises(ClusterUnavailable, match="refused the request \\(403"):
        knative_service_status(server.api_client())


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_nothing_listening():
    api = client.ApiClient(client.Configuration(host=f"http://127.0.0.1:{_closed_port()}"))
    with pytest.raises(ClusterUnavailable, match="no cluster reachable at http://127.0.0.1"):
        knative_service_status(api)


def test_no_kubeconfig(tmp_path, monkeypatch):
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    monkeypatch.setenv("KUBECONFIG", str(tmp_path / "missing"))
    with pytest.raises(ClusterUnavailable, match="no kubeconfig at .*missing"):
        api_client_from_config()


# --------------------------------------------------------------------------- the command
def _kubeconfig(tmp_path: Path, server: str) -> Path:
    path = tmp_path / "kubeconfig"
    path.write_text(json.dumps({
        "apiVersion": "v1", "kind": "Config", "current-context": "test",
        "clusters": [{"name": "test", "cluster": {"server": server}}],
        "contexts": [{"name": "test", "context": {"cluster": "test", "user": "test"}}],
        "users": [{"name": "test", "user": {"token": "not-checked"}}]}))
    return path


def eas(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "eas_runtime.cli", *args], cwd=REPO,
                          capture_output=True, text=True, timeout=120,
                          env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(REPO), **(env or {})})


def test_command_prints_the_table_and_exits_1_when_not_all_ready(api_server, tmp_path):
    server = api_server()
    result = eas("cluster", "status", "--kubeconfig", str(_kubeconfig(tmp_path, server.url)))
    assert result.returncode == 1, result.stderr
    assert result.stdout.startswith("SERVICE")
    assert "eas-transit-search-bls-reference: RevisionFailed" in result.stdout
    # the repository's Services the cluster lacks are listed as Missing
    assert any(line.startswith("eas-null ") and "Missing" in line
               for line in result.stdout.splitlines())


def test_command_json(api_server, tmp_path):
    server = api_server()
    result = eas("cluster", "status", "--json", "--no-expected", "--kubeconfig",
                 str(_kubeconfig(tmp_path, server.url)))
    rows = json.loads(result.stdout)
    assert {r["name"] for r in rows} == {"eas-control", "eas-index", "eas-ingest-external-lcs",
                                         "eas-transit-search-bls-reference", "eas-verify"}


def test_command_without_cluster_exits_2(tmp_path):
    result = eas("cluster", "status", env={"KUBECONFIG": str(tmp_path / "none")})
    assert result.returncode == 2
    assert "no kubeconfig at" in result.stderr and "kind create cluster" in result.stderr
    result = eas("cluster", "status", "--kubeconfig",
                 str(_kubeconfig(tmp_path, f"http://127.0.0.1:{_closed_port()}")))
    assert result.returncode == 2
    assert "no cluster reachable" in result.stderr
