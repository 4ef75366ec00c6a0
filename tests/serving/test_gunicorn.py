"""``eas serve`` runs eas-index, eas-control and the storage adapter on gunicorn, as the images
do (issue 15: werkzeug's development server and a hand-written one served them); the embedded
runtime's replicas keep the built-in server (EAS_HTTP_SERVER=builtin, set by local serving)."""
from __future__ import annotations

import http.client
import os
import signal
import subprocess
import sys

import pytest

from eas_runtime import devservers
from eas_runtime.serving.process import replica_env
from eas_runtime.settings import Settings, SettingsError
from tests.e2e.helpers import wait_for

pytestmark = pytest.mark.timeout(300)


def _serve(tmp_path, component: str, server: str | None):
    home = tmp_path / "home"
    subprocess.run([sys.executable, "-m", "eas_runtime.cli", "--home", str(home), "db", "upgrade"],
                   check=True, capture_output=True, timeout=120)
    env = {k: v for k, v in os.environ.items() if not k.startswith("EAS_")}
    env["EAS_HOME"] = str(home)
    if server:
        env["EAS_HTTP_SERVER"] = server
    port = devservers.free_port()
    proc = subprocess.Popen([sys.executable, "-m", "eas_runtime.cli", "serve", component, "--host", "127.0.0.1",
                             "--port", str(port)], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    return proc, port


def _get(conn: http.client.HTTPConnection, path: str):
    conn.request("GET", path)
    answer = conn.getresponse()
    return answer, answer.read()


def _up(port: int) -> bool:
    try:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
        ok = _get(conn, "/healthz")[0].status == 200
        conn.close()
        return ok
    except OSError:
        return False


@pytest.mark.parametrize("component", ["index", "control", "adapter"])
def test_each_component_is_served_by_gunicorn_with_kept_alive_connections(tmp_path, component):
    proc, port = _serve(tmp_path, component, None)
    try:
        wait_for(lambda: proc.poll() is not None or _up(port), timeout_s=60, what=f"eas serve {component}")
        assert proc.poll() is None, proc.stdout.read()
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        first, _ = _get(conn, "/healthz")
        sock = conn.sock
        second, _ = _get(conn, "/healthz")
        assert first.status == second.status == 200
        assert first.getheader("Server", "").startswith("gunicorn")
        assert conn.sock is sock                     # the same connection answered both
        conn.close()
    finally:
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=60)
    assert proc.returncode == 0, out
    assert f"eas-{component} listening on 127.0.0.1:{port} (gunicorn)" in out


def test_the_builtin_server_when_asked(tmp_path):
    proc, port = _serve(tmp_path, "control", "builtin")
    try:
        wait_for(lambda: proc.poll() is not None or _up(port), timeout_s=60, what="eas serve control")
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        answer, _ = _get(conn, "/healthz")
        assert answer.status == 200 and not answer.getheader("Server", "").startswith("gunicorn")
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.communicate(timeout=60)


def test_local_serving_starts_replicas_with_the_builtin_server_unless_told(tmp_path):
    from eas_runtime.serving.spec import ServiceSpec
    spec = ServiceSpec(name="eas-index", command=("eas", "serve", "index"))
    default = replica_env(spec, Settings.load(environ={}, home=str(tmp_path)), "http://b", 1234, base={})
    assert default["EAS_HTTP_SERVER"] == "builtin"
    told = replica_env(spec, Settings.load(environ={}, home=str(tmp_path), http_server="gunicorn"), "http://b", 1,
                       base={})
    assert told["EAS_HTTP_SERVER"] == "gunicorn"
    with pytest.raises(SettingsError, match="EAS_HTTP_SERVER='uwsgi'"):
        Settings.load(environ={"EAS_HTTP_SERVER": "uwsgi"})


def test_cluster_local_addresses_reach_the_service_run_here():
    """The Broker's dead-letter sink is eas-control's cluster-local address: the embedded
    runtime sends it to its own eas-control, as cluster DNS would."""
    from eas_runtime.serving.local import cluster_local
    services = {"eas-control": object()}
    ref, path = cluster_local("http://eas-control.eas.svc.cluster.local/dead-letter", services)
    assert ref["name"] == "eas-control" and ref["kind"] == "Service" and path == "/dead-letter"
    assert cluster_local("http://eas-control.eas.svc.cluster.local", services)[1] == "/"
    assert cluster_local("http://eas-ctl.eas.svc.cluster.local/dead-letter", services) is None   # not run here
    assert cluster_local("http://example.org/dead-letter", services) is None
    assert cluster_local("http://eas-control.eas.svc.cluster.local.evil.org/x", services) is None
