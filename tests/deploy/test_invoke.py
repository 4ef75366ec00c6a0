"""`just invoke` with --url against the real entry points, run as the images run them: a
science function under functions-framework and eas-control under `eas serve control`."""
from __future__ import annotations

import socket
import subprocess
import sys
import time

import pytest

from .conftest import REPO


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def env(tmp_path):
    env = {"PATH": "/usr/bin:/bin", "PYTHONPATH": str(REPO), "EAS_HOME": str(tmp_path / "home"),
           "HOME": str(tmp_path)}
    subprocess.run([sys.executable, "-m", "eas_runtime.cli", "db", "upgrade"], env=env,
                   check=True, capture_output=True, timeout=120)
    return env


@pytest.fixture
def serve(env):
    processes: list[subprocess.Popen] = []

    def start(*argv: str) -> str:
        port = _free_port()
        proc = subprocess.Popen([sys.executable, "-m", *argv, "--port", str(port)], cwd=REPO,
                                env={**env, "HOST": "127.0.0.1"}, stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL)
        processes.append(proc)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
                return f"http://127.0.0.1:{port}/"
            except OSError:
                assert proc.poll() is None, f"{argv} exited with {proc.returncode}"
                time.sleep(0.2)
        raise AssertionError(f"{argv} did not listen on {port}")

    yield start
    for proc in processes:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def invoke(env, *args):
    return subprocess.run([sys.executable, "-m", "eas_runtime.cli", "deploy", "invoke", *args],
                          cwd=REPO, env=env, capture_output=True, text=True, timeout=120)


def test_sample_event_reaches_a_function(env, serve):
    url = serve("functions_framework", "--target", "handle", "--source",
                "functions/null/main.py", "--signature-type", "http")
    result = invoke(env, "null", "--url", url)
    assert result.returncode == 0, result.stderr
    # the function parsed the task.ready event and looked the attempt up in its database
    assert result.stdout.startswith("HTTP 400") and "attempt" in result.stdout.lower()


def test_sample_event_reaches_control(env, serve):
    url = serve("eas_runtime.cli", "serve", "control")
    result = invoke(env, "control", "--url", url)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("HTTP 202")
