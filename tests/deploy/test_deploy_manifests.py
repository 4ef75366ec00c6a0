"""Every manifest (knative/ with its overlays, broker_config/, storage/) validates; the overlays
render to valid Services; a broken copy of each kind the deployment adds is rejected; every task
type has exactly one Trigger and one Service."""
from __future__ import annotations

import copy
import shutil
import subprocess

import pytest
import yaml

from eas_runtime import manifests as m
from eas_runtime.manifests import kustomize
from eas_runtime.deploy.descriptor import load_all, parse_quantity
from eas_runtime.deploy.routing import check_routing, task_triggers

from .conftest import REPO

DIRS = [REPO / "knative", REPO / "broker_config", REPO / "storage"]
OVERLAYS = sorted(p.name for p in (REPO / "knative" / "overlays").iterdir() if p.is_dir())


def test_all_manifests_validate():
    problems = m.validate_paths(DIRS)
    assert problems == [], "\n".join(map(str, problems))


@pytest.fixture(scope="module")
def docs():
    return [d for _, _, d in m.load_documents([REPO / "knative" / "base",
                                               REPO / "broker_config"])]


def test_every_task_type_has_exactly_one_trigger_and_one_service(docs):
    routes = task_triggers(docs)
    services = [d["metadata"]["name"] for d in docs if d["kind"] == "Service"]
    for desc in load_all(REPO):
        assert services.count(desc.name) == 1, desc.name
        for task_type in desc.task_types:
            assert [target for _, target in routes[task_type]] == [desc.name], task_type
    assert check_routing(docs, load_all(REPO)) == []


def _service(docs, name):
    return next(d for d in docs if d["kind"] == "Service" and d["metadata"]["name"] == name)


def test_routing_mistakes_are_reported(docs):
    descs = load_all(REPO)
    broken = copy.deepcopy(docs)
    trigger = next(d for d in broken if d["metadata"]["name"] == "eas-verify"
                   and d["kind"] == "Trigger")
    trigger["spec"]["subscriber"]["ref"]["name"] = "eas-null"
    problems = "\n".join(check_routing(broken, descs))
    assert "Trigger/eas-verify: task type 'verify' goes to 'eas-null', but " \
           "functions/verify/func.yaml serves it with 'eas-verify'" in problems
    assert "Service/eas-verify: no task.ready Trigger delivers its task type 'verify'" in problems
    assert "delivers task type 'verify' to eas-null, which serves ['null']" in problems

    missing = [d for d in docs if d["metadata"]["name"] != "eas-null" or d["kind"] != "Trigger"]
    assert "task type 'null' has no task.ready Trigger" in "\n".join(check_routing(missing, descs))

    orphan = copy.deepcopy(_service(docs, "eas-verify"))
    orphan["metadata"]["name"] = "eas-orphan"
    assert "Service/eas-orphan: a science function without a descriptor" in \
        "\n".join(check_routing([*docs, orphan], descs))
    twice = [*docs, copy.deepcopy(_service(docs, "eas-verify"))]
    assert "Service 'eas-verify' appears 2 times" in "\n".join(check_routing(twice, descs))


def test_routing_without_descriptors_uses_the_labels(docs):
    assert check_routing(docs) == []
    unrouted = [d for d in docs if d["metadata"]["name"] != "eas-verify" or d["kind"] != "Trigger"]
    assert check_routing(unrouted) == [("Service/eas-verify: no task.ready Trigger delivers its "
                                        "task type 'verify' to it")]


# --------------------------------------------------------------------------- overlays
@pytest.mark.parametrize("overlay", OVERLAYS)
def test_overlay_renders_valid_services(overlay):
    docs = kustomize.build(REPO / "knative" / "overlays" / overlay)
    base = kustomize.build(REPO / "knative" / "base")
    assert sorted(d["metadata"]["name"] for d in docs) == \
        sorted(d["metadata"]["name"] for d in base)
    entries = [(REPO / f"{overlay}.yaml", i, d) for i, d in enumerate(docs)]
    problems = m.validate_documents(entries)
    assert problems == [], "\n".join(map(str, problems))
    for doc in docs:
        container = doc["spec"]["template"]["spec"]["containers"][0]
        for kind in ("cpu", "memory"):
            assert parse_quantity(container["resources"]["requests"][kind]) <= \
                parse_quantity(container["resources"]["limits"][kind]), doc["metadata"]["name"]
        annotations = doc["spec"]["template"]["metadata"]["annotations"]
        if doc["metadata"]["labels"].get("app.kubernetes.io/component") == "function":
            assert annotations["autoscaling.knative.dev/min-scale"] == "0"
            assert doc["spec"]["template"]["spec"]["containerConcurrency"] == 1
        elif doc["metadata"]["name"] in ("eas-control", "eas-index"):
            assert int(annotations["autoscaling.knative.dev/min-scale"]) >= 1


def test_laptop_overlay_shrinks_the_functions():
    docs = {d["metadata"]["name"]: d for d in kustomize.build(REPO / "knative/overlays/laptop")}
    bls = docs["eas-transit-search-bls-reference"]["spec"]["template"]
    assert bls["metadata"]["annotations"]["autoscaling.knative.dev/max-scale"] == "2"
    assert bls["spec"]["containers"][0]["imagePullPolicy"] == "IfNotPresent"


def test_broken_overlay_patch_is_rejected(tmp_path):
    shutil.copytree(REPO / "knative", tmp_path / "knative")
    patch = tmp_path / "knative" / "overlays" / "laptop" / "functions.yaml"
    patch.write_text(patch.read_text().replace('value: "2"', "value: 2"))
    docs = kustomize.build(tmp_path / "knative" / "overlays" / "laptop")
    problems = m.validate_documents([(patch, i, d) for i, d in enumerate(docs)])
    assert any("2 is not of type 'string'" in p.message for p in problems)
    patch.write_text(patch.read_text().replace("max-scale", "maxscale"))
    with pytest.raises(kustomize.KustomizeError, match="does not exist"):
        kustomize.build(tmp_path / "knative" / "overlays" / "laptop")


@pytest.mark.skipif(shutil.which("kubectl") is None, reason="compares with kubectl kustomize")
@pytest.mark.parametrize("folder", ["storage", "broker_config", "knative/base",
                                    *(f"knative/overlays/{o}" for o in OVERLAYS)])
def test_renderer_matches_kubectl_kustomize(folder):
    out = subprocess.run(["kubectl", "kustomize", str(REPO / folder)], capture_output=True,
                         text=True, timeout=120, check=True).stdout
    theirs = [d for d in yaml.safe_load_all(out) if d]
    mine = kustomize.build(REPO / folder)

    def key(doc):
        return doc["apiVersion"], doc["kind"], doc["metadata"]["name"]
    assert sorted(mine, key=key) == sorted(theirs, key=key)


# --------------------------------------------------------------------------- broken copies
@pytest.fixture(scope="module")
def storage_entries():
    return m.load_documents([REPO / "storage", REPO / "knative" / "base"])


def rejected(entries, kind, name, change, api_prefix=""):
    """Errors of the set with one document changed (tests/test_manifests.py's helper)."""
    from tests.test_manifests import problems_after
    return [p for p in problems_after(entries, kind, name, change, api_prefix)
            if p.severity == "error"]


def _job_container(doc):
    return doc["spec"]["template"]["spec"]["containers"][0]


@pytest.mark.parametrize("kind,name,api,change,path,words", [
    ("Job", "eas-storage-init", "batch",
     lambda d: d["spec"].update(backofLimit=3), "spec.backofLimit", ["did you mean"]),
    ("Job", "eas-storage-init", "batch",
     lambda d: _job_container(d)["env"][0].update(value=True),
     "spec.template.spec.containers[0].env[0].value", ["True"]),
    ("Job", "eas-storage-init", "batch",
     lambda d: _job_container(d)["env"][2]["valueFrom"]["secretKeyRef"].update(key="access"),
     "spec.template.spec.containers[0].env[2].valueFrom.secretKeyRef.key", ["has no key"]),
    ("Job", "eas-storage-init", "batch", lambda d: d["spec"].pop("template"),
     "spec", ["template"]),
    ("StatefulSet", "postgres", "apps",
     lambda d: _job_container(d)["volumeMounts"][0].update(name="pgdata"),
     "spec.template.spec.containers[0].volumeMounts[0].name", ["'pgdata' is not defined"]),
    ("StatefulSet", "postgres", "apps",
     lambda d: _job_container(d)["env"][0]["valueFrom"]["secretKeyRef"].update(key="user"),
     "spec.template.spec.containers[0].env[0].valueFrom.secretKeyRef.key", ["has no key 'user'"]),
    ("Service", "postgres", "v1", lambda d: d["spec"]["ports"][0].update(prot=5432),
     "spec.ports[0].prot", ["did you mean 'port'"]),
    ("Namespace", "eas", "v1", lambda d: d["metadata"].update(name="EAS"),
     "metadata.name", ["DNS-1123"]),
    ("Secret", "eas-database", "v1", lambda d: d.update(stringdata=d.pop("stringData")),
     "stringdata", ["did you mean 'stringData'"]),
])
def test_broken_copy_is_rejected(storage_entries, kind, name, api, change, path, words):
    problems = rejected(storage_entries, kind, name, change, api)
    hits = [p for p in problems if p.path == path and all(w in p.message for w in words)]
    assert hits, "\n".join(map(str, problems))


def test_generated_service_broken_copies_are_rejected(storage_entries):
    def gpu_as_float(doc):
        limits = doc["spec"]["template"]["spec"]["containers"][0]["resources"]["limits"]
        limits["nvidia.com/gpu"] = "one"
    problems = rejected(storage_entries, "Service", "eas-verify", gpu_as_float, "serving")
    assert any("nvidia.com/gpu" in p.path and "quantity" in p.message for p in problems)
    problems = rejected(storage_entries, "Service", "eas-verify", lambda d: d["spec"]["template"][
        "spec"]["containers"][0]["securityContext"].update(runAsNonroot=True), "serving")
    assert any("did you mean 'runAsNonRoot'" in p.message for p in problems)
