"""The NetworkPolicies of storage/network-policies.yaml (defect 11: no authentication inside).

In a cluster no internal token is configured (a Knative Broker cannot add the header), so these
policies are what keeps other pods away from eas-control and the functions. The pods are
modelled from the manifests as Kubernetes would label them (a Knative Service's pods carry its
template labels plus ``serving.knative.dev/service``), and the policies are evaluated with
Kubernetes' rules: a pod selected by any ingress policy admits only what one of them allows.
"""
from __future__ import annotations

import pytest

from eas_runtime import manifests as m
from eas_runtime.manifests import kustomize

from .conftest import REPO

DATA_PLANE = ("knative-serving", "knative-eventing", "kourier-system", "istio-system")


def _matches(selector: dict, labels: dict) -> bool:
    for key, value in (selector.get("matchLabels") or {}).items():
        if labels.get(key) != value:
            return False
    for expr in selector.get("matchExpressions") or []:
        key, op, values = expr["key"], expr["operator"], expr.get("values") or []
        if op == "In" and labels.get(key) not in values:
            return False
        if op == "NotIn" and key in labels and labels[key] in values:
            return False
        if op == "Exists" and key not in labels:
            return False
        if op == "DoesNotExist" and key in labels:
            return False
    return True


def _peer_admits(peer: dict, namespace: str, labels: dict) -> bool:
    if "ipBlock" in peer:
        return False                      # none used; a source here is a pod
    ns_labels = {"kubernetes.io/metadata.name": namespace}
    if "namespaceSelector" in peer:
        if not _matches(peer["namespaceSelector"], ns_labels):
            return False
    elif namespace != "eas":              # a podSelector alone means the policy's namespace
        return False
    return _matches(peer.get("podSelector") or {}, labels)


def admits(policies: list[dict], target: dict, namespace: str, labels: dict | None = None) -> bool:
    """Whether a pod of ``namespace`` with ``labels`` may connect to a pod labelled ``target``."""
    selecting = [p for p in policies if _matches(p["spec"]["podSelector"], target)
                 and "Ingress" in p["spec"].get("policyTypes", ["Ingress"])]
    if not selecting:
        return True
    return any(not rule.get("from") or any(_peer_admits(peer, namespace, labels or {})
                                           for peer in rule["from"])
               for p in selecting for rule in p["spec"].get("ingress") or [])


@pytest.fixture(scope="module")
def cluster():
    storage = kustomize.build(REPO / "storage")
    policies = [d for d in storage if d["kind"] == "NetworkPolicy"]
    pods = {}
    for doc in kustomize.build(REPO / "knative" / "overlays" / "cluster"):
        name = doc["metadata"]["name"]
        pods[name] = {**doc["spec"]["template"]["metadata"]["labels"], "serving.knative.dev/service": name}
    for doc in storage:
        if doc["kind"] in ("StatefulSet", "Job"):
            pods[doc["metadata"]["name"]] = doc["spec"]["template"]["metadata"].get("labels") or {}
    return policies, pods


def test_policies_are_in_namespace_eas_and_validate(cluster):
    policies, _ = cluster
    assert {p["metadata"]["namespace"] for p in policies} == {"eas"}
    assert m.validate_paths([REPO / "storage"]) == []


def test_defect_11_control_and_functions_admit_only_the_knative_data_plane(cluster):
    policies, pods = cluster
    guarded = [n for n in pods if n.startswith("eas-") and n not in ("eas-index", "eas-storage-init")]
    assert {"eas-control", "eas-storage-adapter", "eas-verify", "eas-null"} <= set(guarded)
    for name in guarded:
        for namespace in DATA_PLANE:
            assert admits(policies, pods[name], namespace), (name, namespace)
        # another pod of the cluster, or one of this namespace (a compromised function), cannot
        for namespace, labels in (("default", {}), ("eas", pods["eas-index"]), ("eas", pods["eas-verify"]),
                                  ("eas", pods["minio"])):
            assert not admits(policies, pods[name], namespace, labels), (name, namespace, labels)


def test_index_is_public_and_storage_is_for_the_namespace(cluster):
    policies, pods = cluster
    assert admits(policies, pods["eas-index"], "default") and admits(policies, pods["eas-index"], "anything")
    for name in ("minio", "postgres"):
        assert admits(policies, pods[name], "eas", pods["eas-verify"])
        assert admits(policies, pods[name], "eas", pods["eas-storage-init"])
        assert not admits(policies, pods[name], "default")
        assert not admits(policies, pods[name], "knative-serving")
    # every pod is isolated: nothing is admitted by default
    assert all(any(_matches(p["spec"]["podSelector"], labels) for p in policies) for labels in pods.values())


@pytest.fixture(scope="module")
def storage_entries():
    return m.load_documents([REPO / "storage", REPO / "knative" / "base"])


def _peer(doc):
    return doc["spec"]["ingress"][0]["from"][0]


@pytest.mark.parametrize("name,change,path,words", [
    ("eas-knative-data-plane", lambda d: d["spec"].update(podselector=d["spec"].pop("podSelector")),
     "spec.podselector", ["did you mean 'podSelector'"]),
    ("eas-knative-data-plane", lambda d: _peer(d)["namespaceSelector"]["matchExpressions"][0].pop("values"),
     "spec.ingress[0].from[0].namespaceSelector.matchExpressions[0].values", ["needs at least one value"]),
    ("eas-knative-data-plane", lambda d: d["spec"]["podSelector"]["matchExpressions"][0].update(values=["x"]),
     "spec.podSelector.matchExpressions[0].values", ["takes no values"]),
    ("eas-knative-data-plane", lambda d: _peer(d).update(ipBlock={"cidr": "10.0.0.0/8"}),
     "spec.ingress[0].from[0]", ["ipBlock cannot be combined"]),
    ("eas-storage-from-namespace", lambda d: d["spec"].update(policyTypes=["Egress"]),
     "spec.ingress", ["lacks 'Ingress'"]),
    ("eas-storage-from-namespace", lambda d: d["spec"].update(policyTypes=["ingress"]),
     "spec.policyTypes[0]", ["is not one of"]),
])
def test_broken_network_policy_is_rejected(storage_entries, name, change, path, words):
    from tests.test_manifests import problems_after
    problems = [p for p in problems_after(storage_entries, "NetworkPolicy", name, change, "networking")
                if p.severity == "error"]
    assert [p for p in problems if p.path == path and all(w in p.message for w in words)], \
        "\n".join(map(str, problems))
