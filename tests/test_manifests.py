"""The checked-in Knative manifests, and the offline validator that guards them."""
from __future__ import annotations

import copy
import dataclasses
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from eas_runtime import manifests as m
from eas_runtime.deploy.descriptor import function_descriptor_paths, load_function

REPO = Path(__file__).resolve().parent.parent
DIRS = [REPO / "knative", REPO / "broker_config", REPO / "storage"]

#: task type -> Knative Service of every science function with a descriptor (func.yaml).
FUNCTIONS = {path.parent.name: load_function(path, REPO).name
             for path in function_descriptor_paths(REPO)}
ALWAYS_ON = {
    "eas-control": ["eas", "serve", "control"],
    "eas-index": ["eas", "serve", "index"],
    "eas-storage-adapter": ["eas", "serve", "adapter"],
}


@pytest.fixture(scope="module")
def entries():
    return m.load_documents(DIRS)


def by_name(entries, kind, name, api_prefix=""):
    found = [doc for _, _, doc in entries if doc["kind"] == kind
             and doc["metadata"]["name"] == name and doc["apiVersion"].startswith(api_prefix)]
    assert len(found) == 1, f"{kind}/{name}: found {len(found)}"
    return found[0]


def ksvc(entries, name):
    return by_name(entries, "Service", name, "serving.knative.dev")


# --------------------------------------------------------------------------- the repository
def test_repository_manifests_have_no_problems():
    problems = m.validate_paths(DIRS)
    assert problems == [], "\n".join(map(str, problems))


def test_every_knative_kind_is_present_and_in_namespace_eas(entries):
    kinds = {(doc["apiVersion"], doc["kind"]) for _, _, doc in entries}
    for wanted in [("serving.knative.dev/v1", "Service"), ("eventing.knative.dev/v1", "Broker"),
                   ("eventing.knative.dev/v1", "Trigger"), ("sources.knative.dev/v1", "PingSource"),
                   ("sources.knative.dev/v1", "SinkBinding")]:
        assert wanted in kinds
    for path, _, doc in entries:
        assert doc["metadata"].get("namespace", "eas") == "eas", path
        if doc["kind"] != "Namespace":
            assert doc["metadata"]["namespace"] == "eas", path


def test_one_service_file_per_service(entries):
    for name in [*ALWAYS_ON, *FUNCTIONS.values()]:
        docs = m.load_documents([REPO / "knative" / "base" / f"{name}.yaml"])
        assert [d["metadata"]["name"] for _, _, d in docs] == [name]


@pytest.mark.parametrize("name,command", ALWAYS_ON.items())
def test_always_on_services(entries, name, command):
    doc = ksvc(entries, name)
    template = doc["spec"]["template"]
    assert template["spec"]["containers"][0]["command"] == command
    assert template["metadata"]["annotations"]["autoscaling.knative.dev/min-scale"] == "1"
    if name == "eas-control":
        assert template["metadata"]["annotations"]["autoscaling.knative.dev/max-scale"] == "4"


@pytest.mark.parametrize("task_type,name", FUNCTIONS.items())
def test_function_services(entries, task_type, name):
    doc = ksvc(entries, name)
    template = doc["spec"]["template"]
    container = template["spec"]["containers"][0]
    assert container["command"] == ["functions-framework"]
    assert container["args"] == ["--target", "handle", "--source", f"functions/{task_type}/main.py",
                                 "--signature-type", "http"]
    assert container["image"] == f"registry.invalid/plato-eas/{name}:latest"
    assert template["spec"]["containerConcurrency"] == 1
    assert template["metadata"]["annotations"]["autoscaling.knative.dev/min-scale"] == "0"
    assert int(template["metadata"]["annotations"]["autoscaling.knative.dev/max-scale"]) >= 1
    assert template["metadata"]["labels"]["eas.plato/task-type"] == task_type
    assert "readinessProbe" not in container and "livenessProbe" not in container
    assert {"cpu", "memory"} <= set(container["resources"]["requests"])


def test_search_gets_a_full_cpu_and_2gi(entries):
    resources = ksvc(entries, "eas-transit-search-bls-reference")["spec"]["template"]["spec"][
        "containers"][0]["resources"]
    assert resources["requests"] == {"cpu": "1", "memory": "2Gi"}


def test_every_service_has_common_env_labels_and_its_own_secret(entries):
    for name in [*ALWAYS_ON, *FUNCTIONS.values()]:
        doc = ksvc(entries, name)
        assert doc["metadata"]["labels"]["app.kubernetes.io/part-of"] == "plato-eas"
        assert doc["metadata"]["labels"]["eas.plato/sink"] == "broker"
        env = {e["name"]: e for e in doc["spec"]["template"]["spec"]["containers"][0]["env"]}
        assert env["EAS_STORE"]["value"] == "minio"
        assert env["EAS_MINIO_ENDPOINT"]["value"] == "minio.eas.svc.cluster.local:9000"
        refs = {k: (v["valueFrom"]["secretKeyRef"]["name"], v["valueFrom"]["secretKeyRef"]["key"])
                for k, v in env.items() if "valueFrom" in v}
        assert refs["EAS_MINIO_ACCESS_KEY"] == ("eas-minio", "access-key")
        assert refs["EAS_MINIO_SECRET_KEY"] == ("eas-minio", "secret-key")
        assert refs["EAS_DATABASE_URL"] == ("eas-database", "url")
        assert ("EAS_ADAPTER_TOKEN" in refs) == (name == "eas-storage-adapter")
        assert ("EAS_API_TOKEN" in refs) == (name == "eas-index")
    assert ksvc(entries, "eas-storage-adapter")["spec"]["template"]["spec"]["containers"][0][
        "env"][-1]["valueFrom"]["secretKeyRef"] == {"name": "eas-adapter", "key": "token"}


def test_broker_delivery(entries):
    broker = by_name(entries, "Broker", "default")
    assert broker["spec"]["delivery"] == {
        "retry": 5, "backoffPolicy": "exponential", "backoffDelay": "PT0.5S",
        # eas-control's address, not a ref: no Broker <-> eas-control cycle (issue 15, point 1)
        "deadLetterSink": {"uri": "http://eas-control.eas.svc.cluster.local/dead-letter"}}


def test_triggers(entries):
    triggers = {d["metadata"]["name"]: d["spec"] for _, _, d in entries if d["kind"] == "Trigger"}
    assert set(triggers) == {*FUNCTIONS.values(), "eas-control-products", "eas-control-jobs",
                             "eas-control-tasks", "eas-control-reconcile"}
    for task_type, name in FUNCTIONS.items():
        spec = triggers[name]
        assert spec["broker"] == "default"
        assert spec["filter"]["attributes"] == {"type": "org.plato.eas.task.ready",
                                                "tasktype": task_type}
        assert spec["subscriber"]["ref"]["name"] == name
    assert triggers["eas-control-products"]["filter"]["attributes"] == {
        "type": "org.plato.eas.product.created"}
    assert triggers["eas-control-jobs"]["filter"]["attributes"] == {
        "type": "org.plato.eas.job.submitted"}
    assert triggers["eas-control-tasks"]["filters"] == [{"any": [
        {"exact": {"type": "org.plato.eas.task.finished"}},
        {"exact": {"type": "org.plato.eas.task.failed"}}]}]
    assert triggers["eas-control-reconcile"]["filters"] == [{"any": [
        {"exact": {"type": "dev.knative.sources.ping"}},
        {"exact": {"type": "org.plato.eas.reconcile"}}]}]
    for name in ("eas-control-products", "eas-control-jobs", "eas-control-tasks",
                 "eas-control-reconcile"):
        assert triggers[name]["subscriber"]["ref"]["name"] == "eas-control"


def test_pingsource_and_sinkbinding(entries):
    ping = by_name(entries, "PingSource", "eas-reconcile")["spec"]
    assert ping["schedule"] == "* * * * *" and ping["contentType"] == "application/json"
    assert yaml.safe_load(ping["data"]) == {"reason": "reconcile"}
    broker_ref = {"apiVersion": "eventing.knative.dev/v1", "kind": "Broker", "name": "default"}
    assert ping["sink"]["ref"] == broker_ref
    binding = by_name(entries, "SinkBinding", "eas-broker-sink")["spec"]
    assert binding["subject"] == {"apiVersion": "serving.knative.dev/v1", "kind": "Service",
                                  "selector": {"matchLabels": {"eas.plato/sink": "broker"}}}
    assert binding["sink"]["ref"] == broker_ref


def test_minio_notification_target(entries):
    minio = by_name(entries, "StatefulSet", "minio")
    env = {e["name"]: e for e in minio["spec"]["template"]["spec"]["containers"][0]["env"]}
    assert env["MINIO_NOTIFY_WEBHOOK_ENABLE_EAS"]["value"] == "on"
    assert env["MINIO_NOTIFY_WEBHOOK_ENDPOINT_EAS"]["value"] == \
        "http://eas-storage-adapter.eas.svc.cluster.local/minio"
    assert env["MINIO_NOTIFY_WEBHOOK_AUTH_TOKEN_EAS"]["valueFrom"]["secretKeyRef"] == {
        "name": "eas-adapter", "key": "token"}
    assert env["MINIO_NOTIFY_WEBHOOK_QUEUE_DIR_EAS"]["value"]
    readme = (REPO / "storage" / "README.md").read_text()
    for word in ("MINIO_NOTIFY_WEBHOOK_ENABLE_EAS", "MINIO_NOTIFY_WEBHOOK_ENDPOINT_EAS",
                 "MINIO_NOTIFY_WEBHOOK_AUTH_TOKEN_EAS", "MINIO_NOTIFY_WEBHOOK_QUEUE_DIR_EAS",
                 "eas-storage-adapter", "/minio"):
        assert word in readme


def test_delivery_spec_for_the_local_broker(entries):
    broker = by_name(entries, "Broker", "default")
    inherited = m.delivery_spec(by_name(entries, "Trigger", "eas-null"), broker)
    assert inherited["retry"] == 5 and inherited["backoffPolicy"] == "exponential"
    assert inherited["backoffDelay"] == 0.5 and inherited["timeout"] is None
    assert inherited["deadLetterSink"]["uri"] == "http://eas-control.eas.svc.cluster.local/dead-letter"
    # the embedded broker's backoff (Knative's formula, 0-based retry index) on this spec
    from eas_runtime.broker.config import DeliverySpec
    spec = DeliverySpec(retry=inherited["retry"], backoff_policy=inherited["backoffPolicy"],
                        backoff_delay_s=inherited["backoffDelay"])
    assert [spec.backoff_s(n) for n in range(spec.retry)] == [0.5, 1.0, 2.0, 4.0, 8.0]
    own = m.delivery_spec(by_name(entries, "Trigger", "eas-transit-search-bls-reference"), broker)
    assert own["retry"] == 3 and own["timeout"] == 600.0 and own["backoffDelay"] == 2.0
    assert m.delivery_spec(broker) == m.delivery_spec({"spec": {}}, broker)
    bare = m.delivery_spec({"kind": "Broker", "spec": {}})
    assert (bare["retry"], bare["backoffDelay"], bare["deadLetterSink"]) == (10, 0.2, None)
    assert m.delivery_spec({"spec": {}})["retry"] == 0
    linear = DeliverySpec(retry=3, backoff_policy="linear", backoff_delay_s=1.5)
    assert [linear.backoff_s(n) for n in range(3)] == [0.0, 1.5, 3.0]


# --------------------------------------------------------------------------- broken copies
def problems_after(entries, kind, name, change, api_prefix=""):
    """Validate the whole set with one document changed by ``change(doc)``."""
    copies = [(p, i, copy.deepcopy(d)) for p, i, d in entries]
    target = [d for _, _, d in copies if d["kind"] == kind and d["metadata"]["name"] == name
              and d["apiVersion"].startswith(api_prefix)]
    assert len(target) == 1
    change(target[0])
    return m.validate_documents(copies)


def assert_rejected(problems, path, *words, severity="error"):
    hits = [p for p in problems if p.path == path and p.severity == severity
            and all(w in p.message for w in words)]
    assert hits, f"no {severity} at {path} with {words}; got:\n" + "\n".join(map(str, problems))


def tmpl(doc):
    return doc["spec"]["template"]


def anns(doc):
    return doc["spec"]["template"]["metadata"]["annotations"]


def _set(mapping, key, value):
    mapping[key] = value


MS = "autoscaling.knative.dev/"
ANN = "spec.template.metadata.annotations"
SERVICE_CASES = [
    ("misspelt containerConcurrency",
     lambda d: tmpl(d)["spec"].update(containerConcurency=1),
     "spec.template.spec.containerConcurency", ("unknown field", "containerConcurrency")),
    ("misspelt template", lambda d: d["spec"].update(templat=d["spec"].pop("template")),
     "spec.templat", ("unknown field", "did you mean 'template'")),
    ("min-scale as an int", lambda d: _set(anns(d), MS + "min-scale", 0),
     f"{ANN}[{MS}min-scale]", ("0 is not of type 'string'",)),
    # What Knative admits and the project refuses (knative/validate/knative_rules_test.go,
    # TestKnativeAdmits); what Knative refuses is its own code's to check (TestKnativeRefuses).
    ("initial-scale above max-scale",
     lambda d: anns(d).update({MS + "initial-scale": "9", MS + "max-scale": "2"}),
     f"{ANN}[{MS}initial-scale]", ("initial-scale=9", "max-scale=2", "never becomes ready")),
    ("unknown aggregation algorithm", lambda d: _set(anns(d), MS + "metric-aggregation-algorithm", "mean"),
     f"{ANN}[{MS}metric-aggregation-algorithm]", ("'mean'", "linear")),
    ("unknown class", lambda d: _set(anns(d), MS + "class", "kpa"),
     f"{ANN}[{MS}class]", ("'kpa'", "kpa.autoscaling.knative.dev")),
    ("unknown annotation", lambda d: _set(anns(d), MS + "maxscale", "3"),
     f"{ANN}[{MS}maxscale]", ("unknown autoscaling annotation", f"did you mean '{MS}max-scale'")),
    ("cluster setting as annotation", lambda d: _set(anns(d), MS + "max-scale-limit", "3"),
     f"{ANN}[{MS}max-scale-limit]", ("config-autoscaler",)),
    ("concurrency as a string", lambda d: tmpl(d)["spec"].update(containerConcurrency="1"),
     "spec.template.spec.containerConcurrency", ("'1'", "integer")),
    ("bad memory quantity",
     lambda d: tmpl(d)["spec"]["containers"][0]["resources"]["limits"].update(memory="2GB"),
     "spec.template.spec.containers[0].resources.limits.memory", ("'2GB'", "quantity")),
    ("env value not a string",
     lambda d: tmpl(d)["spec"]["containers"][0]["env"][0].update(value=True),
     "spec.template.spec.containers[0].env[0].value", ("True", "string")),
    ("misspelt container field",
     lambda d: tmpl(d)["spec"]["containers"][0].update(imag="x"),
     "spec.template.spec.containers[0].imag", ("did you mean 'image'",)),
    ("invalid name", lambda d: d["metadata"].update(name="eas_null"),
     "metadata.name", ("'eas_null'", "DNS-1035")),
    ("GET probe on / for an event handler",
     lambda d: tmpl(d)["spec"]["containers"][0].update(readinessProbe={"httpGet": {"path": "/"}}),
     "spec.template.spec.containers[0].readinessProbe.httpGet", ("only POST",)),
    ("misspelt metadata field", lambda d: d["metadata"].update(label={}),
     "metadata.label", ("did you mean 'labels'",)),
]


@pytest.mark.parametrize("change,path,words", [c[1:] for c in SERVICE_CASES],
                         ids=[c[0] for c in SERVICE_CASES])
def test_broken_service_is_rejected(entries, change, path, words):
    assert_rejected(problems_after(entries, "Service", "eas-null", change, "serving"), path, *words)


def test_autoscaling_on_service_metadata_is_reported(entries):
    def change(doc):
        doc["metadata"]["annotations"] = {MS + "min-scale": "1"}
    problems = problems_after(entries, "Service", "eas-null", change, "serving")
    assert_rejected(problems, f"metadata.annotations[{MS}min-scale]",
                    "spec.template.metadata.annotations", severity="warning")


def test_max_scale_zero_means_unlimited(entries):
    def change(doc):
        anns(doc).update({MS + "min-scale": "3", MS + "max-scale": "0", MS + "window": "1m",
                          MS + "activation-scale": "3", MS + "target": "0.5"})
    assert problems_after(entries, "Service", "eas-null", change, "serving") == []


def _filters(doc):
    return doc["spec"].setdefault("filters", [])


TRIGGER_CASES = [
    ("misspelt filter attributes", "eas-null",
     lambda d: d["spec"].update(filter={"attribute": d["spec"]["filter"]["attributes"]}),
     "spec.filter.attribute", ("unknown field", "did you mean 'attributes'")),
    ("filter value not a string", "eas-null",
     lambda d: d["spec"]["filter"]["attributes"].update(tasktype=None),
     "spec.filter.attributes.tasktype", ("None", "string")),
    ("misspelt delivery key", "eas-transit-search-bls-reference",
     lambda d: d["spec"]["delivery"].update(retries=3),
     "spec.delivery.retries", ("did you mean 'retry'",)),
    ("misspelt spec key", "eas-null",
     lambda d: d["spec"].update(subscribr=d["spec"].pop("subscriber")),
     "spec.subscribr", ("did you mean 'subscriber'",)),
    ("exact with two attributes", "eas-control-tasks",
     lambda d: d["spec"]["filters"][0]["any"][0]["exact"].update(source="x"),
     "spec.filters[0].any[0].exact", ("exactly one attribute",)),
    ("unknown operator", "eas-control-tasks",
     lambda d: d["spec"]["filters"][0].update(anyOf=d["spec"]["filters"][0].pop("any")),
     "spec.filters[0].anyOf", ("did you mean 'any'",)),
    ("empty CESQL", "eas-control-tasks", lambda d: d["spec"]["filters"].append({"cesql": " "}),
     "spec.filters[1].cesql", ("non-empty CESQL",)),
    ("empty any", "eas-control-tasks", lambda d: d["spec"]["filters"][0].update(any=[]),
     "spec.filters[0].any", ("non-empty list",)),
    ("not with a bad filter", "eas-control-tasks",
     lambda d: d["spec"]["filters"].append({"not": {"exact": {}}}),
     "spec.filters[1].not.exact", ("non-empty map",)),
    ("filters not a list", "eas-control-tasks",
     lambda d: d["spec"].update(filters={"any": []}),
     "spec.filters", ("is not of type 'array'",)),
    ("subscriber Service does not exist", "eas-null",
     lambda d: d["spec"]["subscriber"]["ref"].update(name="eas-nul"),
     "spec.subscriber.ref.name", ("'eas-nul'", "does not exist", "eas-null")),
    ("Broker does not exist", "eas-null", lambda d: d["spec"].update(broker="defualt"),
     "spec.broker", ("'defualt'", "does not exist", "default")),
    ("two Triggers for one task type", "eas-verify",
     lambda d: d["spec"]["filter"]["attributes"].update(tasktype="null"),
     "spec.filter.attributes", ("'null'", "also routed by", "eas-null")),
    ("task.ready without tasktype", "eas-verify",
     lambda d: d["spec"]["filter"]["attributes"].pop("tasktype"),
     "spec.filter.attributes", ("'tasktype'",)),
]


@pytest.mark.parametrize("name,change,path,words", [c[1:] for c in TRIGGER_CASES],
                         ids=[c[0] for c in TRIGGER_CASES])
def test_broken_trigger_is_rejected(entries, name, change, path, words):
    assert_rejected(problems_after(entries, "Trigger", name, change), path, *words)


def test_timeout_beyond_the_service_timeout_is_reported(entries):
    def change(doc):
        doc["spec"]["delivery"]["timeout"] = "PT30M"
    problems = problems_after(entries, "Trigger", "eas-transit-search-bls-reference", change)
    assert_rejected(problems, "spec.delivery.timeout", "PT30M", "600", severity="warning")


CONTROL_REF = {"apiVersion": "serving.knative.dev/v1", "kind": "Service", "name": "eas-control"}
BROKER_CASES = [
    ("misspelt delivery", lambda d: d["spec"].update(delivry=d["spec"].pop("delivery")),
     "spec.delivry", ("did you mean 'delivery'",)),
    ("retry as a string", lambda d: d["spec"]["delivery"].update(retry="5"),
     "spec.delivery.retry", ("'5'",)),
    ("dead-letter Service does not exist",
     lambda d: d["spec"]["delivery"].update(deadLetterSink={"ref": {**CONTROL_REF, "name": "eas-ctl"}}),
     "spec.delivery.deadLetterSink.ref.name", ("'eas-ctl'", "does not exist")),
    ("unknown delivery key", lambda d: d["spec"]["delivery"].update(backoff="PT1S"),
     "spec.delivery.backoff", ("unknown field",)),
]


@pytest.mark.parametrize("change,path,words", [c[1:] for c in BROKER_CASES],
                         ids=[c[0] for c in BROKER_CASES])
def test_broken_broker_is_rejected(entries, change, path, words):
    assert_rejected(problems_after(entries, "Broker", "default", change), path, *words)


PING_CASES = [
    ("misspelt schedule", lambda d: d["spec"].update(schedul=d["spec"].pop("schedule")),
     "spec.schedul", ("did you mean 'schedule'",)),
    ("sink Broker does not exist", lambda d: d["spec"]["sink"]["ref"].update(name="defualt"),
     "spec.sink.ref.name", ("'defualt'", "does not exist")),
    ("version not served", lambda d: d.update(apiVersion="sources.knative.dev/v1alpha2"),
     "apiVersion", ("not a served version", "sources.knative.dev/v1")),
]


@pytest.mark.parametrize("change,path,words", [c[1:] for c in PING_CASES],
                         ids=[c[0] for c in PING_CASES])
def test_broken_pingsource_is_rejected(entries, change, path, words):
    assert_rejected(problems_after(entries, "PingSource", "eas-reconcile", change), path, *words)


SINKBINDING_CASES = [
    ("misspelt subject", lambda d: d["spec"].update(subjet=d["spec"].pop("subject")),
     "spec.subjet", ("did you mean 'subject'",)),
    ("selector matches nothing",
     lambda d: d["spec"]["subject"]["selector"]["matchLabels"].update({"eas.plato/sink": "none"}),
     "spec.subject.selector", ("selects no Service",)),
    ("misspelt matchLabels",
     lambda d: d["spec"]["subject"]["selector"].update(
         matchLabel=d["spec"]["subject"]["selector"].pop("matchLabels")),
     "spec.subject.selector.matchLabel", ("did you mean 'matchLabels'",)),
]


@pytest.mark.parametrize("change,path,words", [c[1:] for c in SINKBINDING_CASES],
                         ids=[c[0] for c in SINKBINDING_CASES])
def test_broken_sinkbinding_is_rejected(entries, change, path, words):
    assert_rejected(problems_after(entries, "SinkBinding", "eas-broker-sink", change), path, *words)


def test_broken_core_kinds_are_rejected(entries):
    def env(doc):
        return doc["spec"]["template"]["spec"]["containers"][0]["env"]
    problems = problems_after(entries, "StatefulSet", "minio",
                              lambda d: env(d)[2].update(value=True))
    assert_rejected(problems, "spec.template.spec.containers[0].env[2].value", "True", "string")
    problems = problems_after(
        entries, "StatefulSet", "minio",
        lambda d: d["spec"]["selector"]["matchLabels"].update({"app.kubernetes.io/name": "x"}))
    assert_rejected(problems, "spec.template.metadata.labels", "selector wants")
    problems = problems_after(entries, "Secret", "eas-minio",
                              lambda d: d["stringData"].update({"access_key": d["stringData"].pop(
                                  "access-key")}))
    hits = [p for p in problems if "has no key 'access-key'" in p.message]
    assert {p.resource for p in hits} >= {"Service/eas-null", "StatefulSet/minio"}
    problems = problems_after(entries, "Service", "minio",
                              lambda d: d["metadata"].update(name="eas-control"), "v1")
    assert_rejected(problems, "metadata.name", "clashes")


def test_duplicate_names_and_unknown_kinds(entries):
    copies = [*entries, entries[0]]
    assert_rejected(m.validate_documents(copies), "metadata.name", "defined twice")
    doc = {"apiVersion": "eventing.knative.dev/v1", "kind": "Triger",
           "metadata": {"name": "x"}, "spec": {}}
    assert_rejected(m.validate_documents([(Path("x.yaml"), 0, doc)]), "kind",
                    "did you mean 'Trigger'")
    doc = {"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "x"}}
    assert_rejected(m.validate_documents([(Path("x.yaml"), 0, doc)]), "kind", "no schema",
                    severity="warning")


# --------------------------------------------------------------------------- files and the CLI
def test_load_documents_reads_multi_document_files(tmp_path):
    (tmp_path / "a.yaml").write_text("---\n# empty\n---\napiVersion: v1\nkind: Namespace\n"
                                     "metadata: {name: a}\n---\napiVersion: v1\nkind: Namespace\n"
                                     "metadata: {name: b}\n")
    (tmp_path / "kustomization.yaml").write_text("resources: [a.yaml]\n")
    docs = m.load_documents([tmp_path])
    assert [(p.name, i, d["metadata"]["name"]) for p, i, d in docs] == [("a.yaml", 1, "a"),
                                                                         ("a.yaml", 2, "b")]
    assert m.validate_paths([tmp_path]) == []


def test_duplicate_keys_and_bad_yaml_are_reported(tmp_path):
    (tmp_path / "dup.yaml").write_text("apiVersion: v1\nkind: Namespace\nkind: Secret\n"
                                       "metadata: {name: a}\n")
    with pytest.raises(m.ManifestError, match="duplicate key 'kind'"):
        m.load_documents([tmp_path])
    (tmp_path / "dup.yaml").write_text("apiVersion: v1\nkind: [\n")
    assert "invalid YAML" in m.validate_paths([tmp_path])[0].message
    with pytest.raises(m.ManifestError):
        m.load_documents([tmp_path / "missing"])


def test_kustomization_lists_are_checked(tmp_path):
    ns = "apiVersion: v1\nkind: Namespace\nmetadata: {name: %s}\n"
    (tmp_path / "a.yaml").write_text(ns % "a")
    (tmp_path / "b.yaml").write_text(ns % "b")
    (tmp_path / "patch.yaml").write_text("kind: Namespace\nmetadata: {name: a}\n")
    (tmp_path / "kustomization.yaml").write_text(
        "resources: [a.yaml, gone.yaml]\npatches:\n  - path: patch.yaml\n")
    problems = m.validate_paths([tmp_path])
    assert_rejected(problems, "resources[1]", "gone.yaml", "does not exist")
    unlisted = [p for p in problems if p.severity == "warning"]
    assert [Path(p.file).name for p in unlisted] == ["b.yaml"]
    assert "not listed" in unlisted[0].message
    assert len(problems) == 2  # the patch file is not validated as a manifest


def test_problem_is_a_frozen_record():
    problem = m.Problem("f.yaml", 2, "Trigger/x", "spec.broker", "Broker 'y' does not exist")
    with pytest.raises(dataclasses.FrozenInstanceError):
        problem.path = "x"  # type: ignore[misc]
    assert str(problem) == "error: f.yaml[2] Trigger/x spec.broker: Broker 'y' does not exist"


def run_cli(*args, cwd=REPO):
    return subprocess.run([sys.executable, "-m", "eas_runtime.manifests", *args], cwd=cwd,
                          capture_output=True, text=True, timeout=120,
                          env={"PYTHONPATH": str(REPO), "PATH": "/usr/bin:/bin"})


def test_cli_accepts_the_repository():
    result = run_cli("knative", "broker_config", "storage")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 error(s), 0 warning(s)" in result.stderr


def test_cli_rejects_a_broken_copy(tmp_path):
    for folder in DIRS:
        shutil.copytree(folder, tmp_path / folder.name)
    trigger = tmp_path / "broker_config" / "triggers" / "eas-verify.yaml"
    trigger.write_text(trigger.read_text().replace("name: eas-verify\n", "name: eas-verfy\n", 1)
                       .replace("  filter:", "  filtre:"))
    result = run_cli("knative", "broker_config", "storage", cwd=tmp_path)
    assert result.returncode == 1
    assert "spec.filtre: unknown field 'filtre'; did you mean 'filter'?" in result.stdout
    service = tmp_path / "knative" / "base" / "eas-verify.yaml"
    service.write_text(service.read_text().replace('min-scale: "0"', "min-scale: 0"))
    result = run_cli(str(tmp_path / "knative"))
    assert result.returncode == 1 and "0 is not of type 'string'" in result.stdout


# --------------------------------------------------------------------------- durations and schemas
@pytest.mark.parametrize("text,seconds", [("PT0.5S", 0.5), ("PT2S", 2), ("PT1M", 60),
                                          ("PT30M", 1800), ("PT1H30M", 5400), ("P1D", 86400),
                                          ("P1DT2H", 93600), ("PT0,25S", 0.25), ("P1W", 604800)])
def test_parse_iso8601_duration(text, seconds):
    assert m.parse_iso8601_duration(text) == pytest.approx(seconds)


@pytest.mark.parametrize("text", ["0.5s", "PT", "P", "", "1S", "PT1D", "pt1s", "P1H", "-PT1S",
                                  None, 5])
def test_parse_iso8601_duration_rejects(text):
    with pytest.raises(ValueError):
        m.parse_iso8601_duration(text)


@pytest.mark.parametrize("text,seconds", [("60s", 60), ("1m", 60), ("1m30s", 90), ("1h", 3600),
                                          ("500ms", 0.5), ("1.5h", 5400), ("0", 0), ("-2s", -2)])
def test_parse_go_duration(text, seconds):
    assert m.parse_go_duration(text) == pytest.approx(seconds)


@pytest.mark.parametrize("text", ["", "60", "1 m", "1d", "s", "1m30"])
def test_parse_go_duration_rejects(text):
    with pytest.raises(ValueError):
        m.parse_go_duration(text)


def test_strict_schema_closes_objects_but_keeps_open_ones_open():
    schema = m.strict_schema({
        "type": "object", "properties": {
            "closed": {"type": "object", "properties": {"a": {"type": "string"}}},
            "open": {"type": "object", "x-kubernetes-preserve-unknown-fields": True,
                     "properties": {"a": {"type": "string"}}},
            "map": {"type": "object", "additionalProperties": {"type": "string"}},
            "list": {"type": "array", "items": {"type": "object", "properties": {"b": {}}}},
        }})
    props = schema["properties"]
    assert schema["additionalProperties"] is False
    assert props["closed"]["additionalProperties"] is False
    assert "additionalProperties" not in props["open"]
    assert "x-kubernetes-preserve-unknown-fields" not in props["open"]
    assert props["map"]["additionalProperties"] == {"type": "string"}
    assert props["list"]["items"]["additionalProperties"] is False


def test_every_crd_copy_is_loaded():
    schemas = m.crd_schemas()
    for group, kind in [("serving.knative.dev", "Service"), ("eventing.knative.dev", "Broker"),
                        ("eventing.knative.dev", "Trigger"), ("sources.knative.dev", "PingSource"),
                        ("sources.knative.dev", "SinkBinding"),
                        ("sources.knative.dev", "ContainerSource")]:
        assert "v1" in schemas[(group, kind)]
    readme = (m.SCHEMA_DIR / "README.md").read_text()
    assert "Apache License" in readme
    for path in m.SCHEMA_DIR.glob("*.yaml"):
        assert "Licensed under the Apache License, Version 2.0" in path.read_text()
