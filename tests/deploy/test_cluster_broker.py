"""The cluster overlay's Broker is Knative's Kafka broker (issue 15: the MTChannelBasedBroker on
the in-memory channel loses the events in flight); the laptop keeps the in-memory one."""
from __future__ import annotations

from eas_runtime.deploy import plan
from eas_runtime.manifests import kustomize
from eas_runtime.settings import PROJECT_ROOT


def _broker(docs):
    return next(d for d in docs if d["kind"] == "Broker")


def test_the_cluster_broker_is_kafka_with_its_config():
    docs = kustomize.build(PROJECT_ROOT / "knative" / "overlays" / "cluster" / "broker")
    broker = _broker(docs)
    assert broker["metadata"]["annotations"]["eventing.knative.dev/broker.class"] == "Kafka"
    assert broker["spec"]["config"] == {"apiVersion": "v1", "kind": "ConfigMap", "name": "kafka-broker-config",
                                        "namespace": "eas"}
    config = next(d for d in docs if d["kind"] == "ConfigMap")
    assert config["metadata"]["name"] == "kafka-broker-config" and config["data"]["bootstrap.servers"]
    assert int(config["data"]["default.topic.replication.factor"]) >= 3
    base = kustomize.build(PROJECT_ROOT / "broker_config")
    assert broker["spec"]["delivery"] == _broker(base)["spec"]["delivery"]      # same retries, dead letters
    assert sorted(d["metadata"]["name"] for d in docs if d["kind"] == "Trigger") == \
        sorted(d["metadata"]["name"] for d in base if d["kind"] == "Trigger")


def test_the_deploy_plan_applies_the_config_before_the_broker_per_overlay():
    titles = [s.title for s in plan.deploy_plan(plan.Options(PROJECT_ROOT, tag="v1", overlay="cluster"))]
    config = next(i for i, t in enumerate(titles) if t.startswith("ConfigMap kafka-broker-config"))
    broker = next(i for i, t in enumerate(titles) if t.startswith("Broker default"))
    assert config < broker
    cluster = plan.deploy_plan(plan.Options(PROJECT_ROOT, tag="v1", overlay="cluster"))
    stdin = next(c.stdin for s in cluster if s.title.startswith("Broker default") for c in s.commands)
    assert "broker.class: Kafka" in stdin
    laptop = plan.deploy_plan(plan.Options(PROJECT_ROOT, tag="v1", overlay="laptop"))
    assert not any(s.title.startswith("ConfigMap") for s in laptop)
    argv = next(c.argv for s in laptop if s.title.startswith("Broker default") for c in s.commands)
    assert argv[:3] == ("kn", "broker", "create") and "MTChannelBasedBroker" in argv
