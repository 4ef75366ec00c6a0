"""eas-index may read what its /functions page lists, and nothing more (issue 15: the page
answered 403 in a cluster, its pods running as the namespace's default ServiceAccount)."""
from __future__ import annotations

import inspect

import pytest

from eas_runtime.deploy import status
from eas_runtime.manifests import kustomize
from eas_runtime.deploy.descriptor import DescriptorError
from eas_runtime.settings import PROJECT_ROOT


@pytest.fixture(scope="module")
def storage():
    return {(d["kind"], d["metadata"]["name"]): d for d in kustomize.build(PROJECT_ROOT / "storage")}


@pytest.mark.parametrize("overlay", ["laptop", "cluster"])
def test_eas_index_runs_as_its_own_service_account(overlay):
    docs = kustomize.build(PROJECT_ROOT / "knative" / "overlays" / overlay)
    pods = {d["metadata"]["name"]: d["spec"]["template"]["spec"] for d in docs if d["kind"] == "Service"}
    assert pods["eas-index"]["serviceAccountName"] == "eas-index"
    assert all("serviceAccountName" not in spec for name, spec in pods.items() if name != "eas-index")


def test_the_role_grants_reading_services_and_pods_only(storage):
    assert ("ServiceAccount", "eas-index") in storage
    rules = storage[("Role", "eas-index-reader")]["rules"]
    granted = {(group, resource, verb) for r in rules for group in r["apiGroups"]
               for resource in r["resources"] for verb in r["verbs"]}
    assert granted == {("serving.knative.dev", "services", "get"), ("serving.knative.dev", "services", "list"),
                       ("", "pods", "get"), ("", "pods", "list")}
    binding = storage[("RoleBinding", "eas-index-reader")]
    assert binding["roleRef"] == {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "eas-index-reader"}
    assert binding["subjects"] == [{"kind": "ServiceAccount", "name": "eas-index", "namespace": "eas"}]


def test_the_page_asks_only_for_what_the_role_grants():
    source = inspect.getsource(status.knative_service_status)
    calls = {name for name in ("list_namespaced_custom_object", "list_namespaced_pod", "read_namespaced",
                               "patch_", "create_", "delete_", "list_cluster") if name in source}
    assert calls == {"list_namespaced_custom_object", "list_namespaced_pod"}


def test_a_bad_service_account_name_is_refused(tmp_path):
    from eas_runtime.deploy.descriptor import PLATFORM_FILE, load_platform
    bad = tmp_path / "platform.yaml"
    bad.write_text(PLATFORM_FILE.read_text().replace("service_account: eas-index", "service_account: Eas_Index"))
    with pytest.raises(DescriptorError, match="service_account.*'Eas_Index' is not a DNS-1123 name"):
        load_platform(bad, PROJECT_ROOT)
