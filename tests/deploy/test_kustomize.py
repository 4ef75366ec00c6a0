"""The built-in kustomize subset: JSON 6902 operations, targets, images, and refusals."""
from __future__ import annotations

import pytest

from eas_runtime.manifests import kustomize as k


def doc(name="a", labels=None, kind="Service", api="serving.knative.dev/v1"):
    return {"apiVersion": api, "kind": kind,
            "metadata": {"name": name, "labels": labels or {}},
            "spec": {"template": {"metadata": {"annotations": {"x/y": "1"}},
                                  "spec": {"containers": [{"name": "c", "image": "r/i:1"}]}}}}


def test_json_patch_operations():
    d = doc()
    k.json_patch(d, [
        {"op": "replace", "path": "/spec/template/metadata/annotations/x~1y", "value": "2"},
        {"op": "add", "path": "/spec/template/spec/containers/0/imagePullPolicy",
         "value": "IfNotPresent"},
        {"op": "add", "path": "/spec/template/spec/containers/-", "value": {"name": "s"}},
        {"op": "remove", "path": "/metadata/labels"},
        {"op": "test", "path": "/metadata/name", "value": "a"},
    ])
    assert d["spec"]["template"]["metadata"]["annotations"] == {"x/y": "2"}
    assert [c["name"] for c in d["spec"]["template"]["spec"]["containers"]] == ["c", "s"]
    assert d["spec"]["template"]["spec"]["containers"][0]["imagePullPolicy"] == "IfNotPresent"
    assert "labels" not in d["metadata"]


@pytest.mark.parametrize("op,match", [
    ({"op": "replace", "path": "/spec/nothing", "value": 1}, "does not exist"),
    ({"op": "remove", "path": "/spec/nothing"}, "does not exist"),
    ({"op": "add", "path": "/spec/a/b", "value": 1}, "does not exist"),
    ({"op": "test", "path": "/metadata/name", "value": "b"}, "is 'a', not 'b'"),
    ({"op": "move", "path": "/metadata/name", "from": "/x"}, "not supported"),
    ({"op": "add", "path": "spec", "value": 1}, "must start with '/'"),
])
def test_json_patch_errors(op, match):
    with pytest.raises(k.KustomizeError, match=match):
        k.json_patch(doc(), [op])


def test_targets():
    d = doc("eas-verify", {"app.kubernetes.io/component": "function"})
    assert k.matches({"kind": "Service", "group": "serving.knative.dev", "version": "v1"}, d)
    assert not k.matches({"kind": "Service", "group": ""}, d)
    assert k.matches({"name": "eas-.*"}, d) and not k.matches({"name": "eas"}, d)
    assert k.matches({"labelSelector": "app.kubernetes.io/component=function"}, d)
    assert not k.matches({"labelSelector": "app.kubernetes.io/component!=function"}, d)
    assert k.matches({"labelSelector": "app.kubernetes.io/component,!other"}, d)
    assert not k.matches({"labelSelector": "other"}, d)


def test_images():
    assert k.split_image("reg:5000/a/b:t@sha256:x") == ("reg:5000/a/b", "t", "sha256:x")
    assert k.split_image("reg:5000/a/b") == ("reg:5000/a/b", None, None)
    docs = [doc()]
    k.set_images(docs, lambda ref: k._image_override(ref, {"name": "r/i", "newName": "n/i",
                                                            "newTag": "2"}))
    assert docs[0]["spec"]["template"]["spec"]["containers"][0]["image"] == "n/i:2"
    k.set_images(docs, lambda ref: k._image_override(ref, {"name": "n/i", "digest": "sha256:d"}))
    assert docs[0]["spec"]["template"]["spec"]["containers"][0]["image"] == "n/i@sha256:d"


def write_kustomization(folder, text):
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "kustomization.yaml").write_text(text)


def test_build_with_namespace_patches_and_images(tmp_path):
    (tmp_path / "svc.yaml").write_text(
        "apiVersion: serving.knative.dev/v1\nkind: Service\nmetadata: {name: a, labels: {t: f}}\n"
        "spec: {template: {spec: {containers: [{name: c, image: r/i:1}]}}}\n---\n"
        "apiVersion: v1\nkind: Namespace\nmetadata: {name: ns}\n")
    write_kustomization(tmp_path, "resources: [svc.yaml]\nnamespace: eas\n")
    (tmp_path / "o" / "p.yaml").parent.mkdir()
    (tmp_path / "o" / "p.yaml").write_text(
        "- {op: add, path: /spec/template/spec/containers/0/imagePullPolicy, value: Never}\n")
    write_kustomization(tmp_path / "o", "resources: [..]\npatches:\n- path: p.yaml\n"
                        "  target: {kind: Service, labelSelector: t=f}\n"
                        "images:\n- {name: r/i, newTag: '9'}\n")
    svc, ns = k.build(tmp_path / "o")
    assert svc["metadata"]["namespace"] == "eas" and "namespace" not in ns["metadata"]
    container = svc["spec"]["template"]["spec"]["containers"][0]
    assert container == {"name": "c", "image": "r/i:9", "imagePullPolicy": "Never"}


@pytest.mark.parametrize("text,match", [
    ("resources: []\nnamePrefix: x-\n", "namePrefix not supported"),
    ("resources: []\npatches:\n- patch: '{kind: Service}'\n  target: {kind: Service}\n",
     "strategic-merge"),
    ("resources: []\npatches:\n- patch: '[]'\n", "needs a 'target'"),
])
def test_unsupported_kustomizations_are_refused(tmp_path, text, match):
    write_kustomization(tmp_path, text)
    with pytest.raises(k.KustomizeError, match=match):
        k.build(tmp_path)
