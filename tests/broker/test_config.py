"""Reading Broker/Trigger/PingSource YAML and resolving each Trigger's delivery spec."""
from __future__ import annotations

import pytest

from eas_runtime.broker import ConfigError, DeliverySpec, load_config
from eas_runtime.broker.config import KNATIVE_DEFAULT_DELIVERY
from eas_runtime.settings import PROJECT_ROOT

from .conftest import broker_doc, trigger_doc, write_config


def test_project_broker_config_loads():
    config = load_config(PROJECT_ROOT / "broker_config")
    assert "eas/default" in config.brokers
    assert config.triggers, "no Trigger found in broker_config/"
    for trigger in config.triggers.values():
        assert trigger.broker == "eas/default"
    assert any(p.sink_broker() == "eas/default" for p in config.pingsources)


def test_trigger_without_delivery_uses_the_brokers(tmp_path):
    folder = write_config(tmp_path, broker_doc(retry=4, policy="linear", delay="PT0.5S",
                                               dls="http://127.0.0.1:1/dls")
                          + trigger_doc("t", "http://127.0.0.1:1/t"))
    spec = load_config(folder).triggers["t"].delivery
    assert spec == DeliverySpec(retry=4, backoff_policy="linear", backoff_delay_s=0.5,
                                dead_letter_sink={"uri": "http://127.0.0.1:1/dls"})


def test_trigger_delivery_replaces_the_brokers_as_a_whole_but_keeps_its_dead_letter_sink(tmp_path):
    folder = write_config(tmp_path, broker_doc(retry=4, policy="linear", delay="PT0.5S",
                                               dls="http://127.0.0.1:1/dls")
                          + trigger_doc("t", "http://127.0.0.1:1/t", delivery_yaml="""\
                              delivery:
                                retry: 1
                                timeout: PT10M
                              """))
    spec = load_config(folder).triggers["t"].delivery
    # backoffPolicy/backoffDelay are not inherited field by field (Knative: the Trigger's
    # delivery "fully overrides" the Broker's); the dead-letter sink falls back.
    assert spec == DeliverySpec(retry=1, backoff_policy="exponential", backoff_delay_s=0.0,
                                timeout_s=600.0, dead_letter_sink={"uri": "http://127.0.0.1:1/dls"})


def test_trigger_dead_letter_sink_wins(tmp_path):
    folder = write_config(tmp_path, broker_doc(dls="http://127.0.0.1:1/dls")
                          + trigger_doc("t", "http://127.0.0.1:1/t", delivery_yaml="""\
                              delivery:
                                deadLetterSink:
                                  uri: http://127.0.0.1:1/mine
                              """))
    assert load_config(folder).triggers["t"].delivery.dead_letter_sink == {"uri": "http://127.0.0.1:1/mine"}


def test_broker_without_delivery_gets_knatives_default(tmp_path):
    folder = write_config(tmp_path, "apiVersion: eventing.knative.dev/v1\nkind: Broker\n"
                                    "metadata: {name: default, namespace: eas}\n"
                          + trigger_doc("t", "http://127.0.0.1:1/t"))
    spec = load_config(folder).triggers["t"].delivery
    assert KNATIVE_DEFAULT_DELIVERY == {"retry": 10, "backoffPolicy": "exponential", "backoffDelay": "PT0.2S"}
    assert (spec.retry, spec.backoff_policy, spec.backoff_delay_s) == (10, "exponential", 0.2)
    assert spec.dead_letter_sink is None


def test_backoff_formulas():
    exponential = DeliverySpec(retry=4, backoff_policy="exponential", backoff_delay_s=0.5)
    linear = DeliverySpec(retry=4, backoff_policy="linear", backoff_delay_s=0.5)
    # n = retries already made (go-retryablehttp's 0-based attempt index, as Knative uses it).
    assert [exponential.backoff_s(n) for n in range(4)] == [0.5, 1.0, 2.0, 4.0]
    assert [linear.backoff_s(n) for n in range(4)] == [0.0, 0.5, 1.0, 1.5]
    assert exponential.attempts == 5


@pytest.mark.parametrize("delivery, message", [
    ("delivery:\n  backoffDelay: 2s\n", r"Trigger eas/t: spec\.delivery\.backoffDelay: '2s' is not an ISO-8601"),
    ("delivery:\n  retry: -1\n", r"Trigger eas/t: spec\.delivery\.retry must be an integer"),
    ("delivery:\n  backoffPolicy: random\n", r"spec\.delivery\.backoffPolicy 'random'"),
    ("delivery:\n  timeout: PT0S\n", r"spec\.delivery\.timeout 'PT0S' must be greater than zero"),
    ("delivery:\n  retries: 3\n", r"spec\.delivery\.retries is not a delivery field"),
])
def test_bad_delivery_is_a_config_error(tmp_path, delivery, message):
    folder = write_config(tmp_path, broker_doc() + trigger_doc("t", "http://127.0.0.1:1/t",
                                                               delivery_yaml=delivery))
    with pytest.raises(ConfigError, match=message):
        load_config(folder)


def test_trigger_of_an_unknown_broker(tmp_path):
    folder = write_config(tmp_path, broker_doc() + trigger_doc("t", "http://127.0.0.1:1/t")
                          .replace("broker: default", "broker: other"))
    with pytest.raises(ConfigError, match=r"Trigger eas/t: spec\.broker: Broker 'other'"):
        load_config(folder)


def test_subscriber_needs_ref_or_absolute_uri(tmp_path):
    folder = write_config(tmp_path, broker_doc() + trigger_doc("t", "/relative"))
    with pytest.raises(ConfigError, match=r"Trigger eas/t: spec\.subscriber\.uri '/relative'"):
        load_config(folder)


def test_other_kinds_are_ignored_and_missing_folder_is_an_error(tmp_path):
    folder = write_config(tmp_path, broker_doc() + """---
apiVersion: sources.knative.dev/v1
kind: SinkBinding
metadata: {name: x}
spec: {}
""")
    assert list(load_config(folder).brokers) == ["eas/default"]
    with pytest.raises(ConfigError, match="cannot read broker configuration"):
        load_config(tmp_path / "nope")
