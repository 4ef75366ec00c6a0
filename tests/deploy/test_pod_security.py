"""Every pod the deployment makes is admissible under the Pod Security Standard `restricted`
(issue 15: the storage pods and the init Job lacked securityContext and seccompProfile), in
both overlays: non-root, the runtime's default seccomp profile, no privilege escalation, every
capability dropped, no host namespaces, ports or paths, no privileged container. The rules are
those of https://kubernetes.io/docs/concepts/security/pod-security-standards/ (restricted,
v1.30), checked on the rendered objects, with a negative test per rule."""
from __future__ import annotations

import copy

import pytest

from eas_runtime.manifests import kustomize
from eas_runtime.settings import PROJECT_ROOT

from .conftest import POD_SOURCES as SOURCES
from .conftest import pod_specs

ALLOWED_VOLUMES = {"configMap", "csi", "downwardAPI", "emptyDir", "ephemeral", "persistentVolumeClaim",
                   "projected", "secret"}


def violations(pod: dict) -> list[str]:
    found = []
    pod_sc = pod.get("securityContext") or {}
    for field in ("hostNetwork", "hostPID", "hostIPC"):
        if pod.get(field):
            found.append(f"{field} is set")
    for volume in pod.get("volumes") or []:
        kinds = set(volume) - {"name"}
        if not kinds <= ALLOWED_VOLUMES:
            found.append(f"volume {volume.get('name')}: {sorted(kinds - ALLOWED_VOLUMES)} not allowed")
    for c in [*(pod.get("initContainers") or []), *(pod.get("containers") or [])]:
        sc, name = c.get("securityContext") or {}, c.get("name")
        if sc.get("privileged"):
            found.append(f"{name}: privileged")
        if sc.get("allowPrivilegeEscalation") is not False:
            found.append(f"{name}: allowPrivilegeEscalation is not false")
        caps = sc.get("capabilities") or {}
        if "ALL" not in (caps.get("drop") or []):
            found.append(f"{name}: capabilities do not drop ALL")
        if set(caps.get("add") or []) - {"NET_BIND_SERVICE"}:
            found.append(f"{name}: adds capabilities {caps['add']}")
        if not sc.get("runAsNonRoot", pod_sc.get("runAsNonRoot")):
            found.append(f"{name}: runAsNonRoot is not true")
        if sc.get("runAsUser", pod_sc.get("runAsUser")) == 0:
            found.append(f"{name}: runs as UID 0")
        seccomp = (sc.get("seccompProfile") or pod_sc.get("seccompProfile") or {}).get("type")
        if seccomp not in ("RuntimeDefault", "Localhost"):
            found.append(f"{name}: seccompProfile is {seccomp or 'unset'}, not RuntimeDefault")
        for port in c.get("ports") or []:
            if port.get("hostPort"):
                found.append(f"{name}: hostPort {port['hostPort']}")
    return found


@pytest.fixture(scope="module")
def pods():
    found = []
    for source in SOURCES:
        for doc in kustomize.build(PROJECT_ROOT / source):
            found += [(source, name, spec) for name, spec in pod_specs(doc)]
    return found


def test_every_pod_is_admissible_under_restricted(pods):
    names = {name for _, name, _ in pods}
    assert {"StatefulSet minio", "StatefulSet postgres", "Job eas-storage-init", "Service eas-index",
            "Service eas-verify"} <= names
    bad = {f"{source}: {name}": v for source, name, spec in pods if (v := violations(spec))}
    assert not bad, bad


@pytest.mark.parametrize("change, message", [
    (lambda p: p["securityContext"].pop("seccompProfile"), "seccompProfile is unset"),
    (lambda p: p["securityContext"].update(runAsNonRoot=False), "runAsNonRoot is not true"),
    (lambda p: p["containers"][0]["securityContext"].update(allowPrivilegeEscalation=True),
     "allowPrivilegeEscalation is not false"),
    (lambda p: p["containers"][0]["securityContext"]["capabilities"].update(drop=["NET_RAW"]),
     "do not drop ALL"),
    (lambda p: p["containers"][0]["securityContext"].update(privileged=True), "privileged"),
    (lambda p: p.update(hostNetwork=True), "hostNetwork is set"),
    (lambda p: p.setdefault("volumes", []).append({"name": "h", "hostPath": {"path": "/"}}), "hostPath"),
    (lambda p: p["containers"][0]["securityContext"].update(runAsUser=0), "runs as UID 0"),
])
def test_each_rule_catches_its_breach(pods, change, message):
    spec = copy.deepcopy(next(spec for _, name, spec in pods if name == "StatefulSet minio"))
    assert violations(spec) == []
    change(spec)
    assert any(message in v for v in violations(spec)), violations(spec)
