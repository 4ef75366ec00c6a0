"""Service documents reduced to what the local activator needs."""
from __future__ import annotations

from pathlib import Path

import pytest

from eas_runtime.serving import ServiceSpecError, load_specs, spec_from_document
from eas_runtime.serving.process import resolve_command
from eas_runtime.settings import Settings
from tests.serving.serving_helpers import echo_service


def settings(**values) -> Settings:
    return Settings.load(environ={}, **values)


def test_defaults_and_env():
    doc = echo_service("echo", concurrency=0, env=[
        {"name": "A", "value": "1"}, {"name": "EMPTY"},
        {"name": "B", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}}])
    del doc["spec"]["template"]["metadata"]
    spec = spec_from_document(doc, settings(max_replicas=3))
    assert spec.name == "echo"
    assert spec.argv[:3] == ["functions-framework", "--target", "handle"]
    assert spec.env == {"A": "1", "EMPTY": ""}
    assert spec.container_concurrency == 0  # unlimited
    assert (spec.min_scale, spec.max_scale) == (0, 3)  # unlimited max-scale -> replica limit
    assert spec.port is None and spec.timeout_s is None


def test_scale_bounds_are_capped():
    doc = echo_service("echo", min_scale=2, max_scale=8)
    assert (lambda s: (s.min_scale, s.max_scale))(spec_from_document(doc, settings(max_replicas=4))) == (2, 4)
    assert spec_from_document(doc, settings(max_replicas=16)).max_scale == 8
    pinned = spec_from_document(doc, settings(max_replicas=16), port=8471)
    assert (pinned.min_scale, pinned.max_scale, pinned.port) == (1, 1, 8471)


@pytest.mark.parametrize(("request_cpu", "max_replicas", "expected"), [
    (None, 0, 4), ("2", 0, 2), ("500m", 0, 4), ("3", 0, 1), ("8", 0, 1), ("2", 4, 4)])
def test_replicas_fit_the_cores_by_their_cpu_request(monkeypatch, request_cpu, max_replicas, expected):
    """Without an explicit limit, a Service gets the replicas a node of this machine's cores
    would fit by its ``requests.cpu``; an explicit ``max_replicas`` is taken as given."""
    monkeypatch.setattr("eas_runtime.settings.os.cpu_count", lambda: 4)
    doc = echo_service("echo")
    if request_cpu is not None:
        doc["spec"]["template"]["spec"]["containers"][0]["resources"] = {"requests": {"cpu": request_cpu}}
    assert spec_from_document(doc, settings(max_replicas=max_replicas)).max_scale == expected


def test_bad_documents_are_named():
    doc = echo_service("broken", min_scale=0)
    doc["spec"]["template"]["metadata"]["annotations"]["autoscaling.knative.dev/min-scale"] = "x"
    with pytest.raises(ServiceSpecError, match="broken"):
        spec_from_document(doc, settings())
    doc = echo_service("no-command")
    del doc["spec"]["template"]["spec"]["containers"][0]["command"]
    with pytest.raises(ServiceSpecError, match="no-command"):
        spec_from_document(doc, settings())
    for part, resource in (("requests", "cpu"), ("limits", "memory")):
        for bad in ("two", "-1", "0", "1e400"):
            doc = echo_service("greedy")
            doc["spec"]["template"]["spec"]["containers"][0]["resources"] = {part: {resource: bad}}
            with pytest.raises(ServiceSpecError, match=f"greedy: resources.{part}.{resource}"):
                spec_from_document(doc, settings())


def test_documents_other_than_services_are_ignored():
    docs = [echo_service("a"), {"apiVersion": "eventing.knative.dev/v1", "kind": "Trigger"},
            {"apiVersion": "kustomize.config.k8s.io/v1beta1", "kind": "Kustomization"}]
    assert list(load_specs(docs, settings())) == ["a"]
    with pytest.raises(ServiceSpecError, match="twice"):
        load_specs([echo_service("a"), echo_service("a")], settings())


def test_commands_resolve_to_this_environment_first():
    import sys
    [program, *rest] = resolve_command(["functions-framework", "--target", "x"])
    assert rest == ["--target", "x"]
    local = Path(sys.executable).parent / "functions-framework"
    if local.exists():
        assert program == str(local)


def test_project_services_load():
    folder = Path(settings().knative_dir)
    if not any(folder.glob("*.yaml")):
        pytest.skip(f"no manifests in {folder} yet")
    specs = load_specs(folder, settings())
    assert specs, "knative/base holds no Service"
    for spec in specs.values():
        assert spec.command, spec.name
        resolve_command(spec.argv)
