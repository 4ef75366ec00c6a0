"""Helpers for the local Knative Serving tests: echo Service manifests, calls, /proc checks."""
from __future__ import annotations

import json
import time
from pathlib import Path

import yaml

from eas_runtime.serving import LocalServing

ECHO_SOURCE = "tests/serving/fixtures/echo/main.py"
SERVICE_REF = {"apiVersion": "serving.knative.dev/v1", "kind": "Service"}


def echo_service(name: str, *, concurrency: int = 1, min_scale: int = 0, max_scale: int = 0,
                 env: list[dict] | None = None, cpu: str | None = None) -> dict:
    annotations = {"autoscaling.knative.dev/min-scale": str(min_scale)}
    if max_scale:
        annotations["autoscaling.knative.dev/max-scale"] = str(max_scale)
    return {
        "apiVersion": "serving.knative.dev/v1",
        "kind": "Service",
        "metadata": {"name": name},
        "spec": {"template": {
            "metadata": {"annotations": annotations},
            "spec": {
                "containerConcurrency": concurrency,
                "containers": [{
                    "image": "eas-echo:dev",
                    "command": ["functions-framework"],
                    "args": ["--target", "handle", "--source", ECHO_SOURCE,
                             "--signature-type", "http"],
                    "env": env or [],
                    **({"resources": {"requests": {"cpu": cpu}}} if cpu else {}),
                }],
            },
        }},
    }


def write_manifests(folder: Path, *docs: dict) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for doc in docs:
        (folder / f"{doc['metadata']['name']}.yaml").write_text(yaml.safe_dump(doc))
    return folder


def call(serving: LocalServing, name: str, *, sleep: float = 0.0, env=(), path: str | None = None,
         timeout: float | None = 120.0) -> dict:
    """POST to a Service; returns the echo answer (and asserts a 200)."""
    destination = {"ref": {**SERVICE_REF, "name": name}}
    if path:
        destination["uri"] = path
    status, headers, body = serving.post(
        destination, {"Content-Type": "application/json"},
        json.dumps({"sleep": sleep, "env": list(env)}).encode(), timeout)
    assert status == 200, body
    return json.loads(body)


def replicas(serving: LocalServing, name: str) -> list[dict]:
    return next(s for s in serving.status() if s["name"] == name)["replicas"]


def wait_for(predicate, timeout_s: float = 60.0, what: str = "condition"):
    deadline = time.monotonic() + timeout_s
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


def process_gone(pid: int) -> bool:
    """True when ``pid`` no longer exists or is a zombie nobody needs to reap from here."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return True
    return stat.rsplit(")", 1)[1].split()[0] in ("Z", "X")


def children_of(pid: int) -> list[int]:
    out = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        fields = stat.rsplit(")", 1)[1].split()
        if int(fields[1]) == pid:
            out.append(int(entry.name))
    return out
