"""PingEmitter: ticks of the configuration's PingSources become broker events."""
from __future__ import annotations

from eas_runtime.broker import PingEmitter, ping_event
from eas_runtime.broker.config import PingSourceConfig

from .conftest import broker_doc, trigger_doc

PING_DOC = """---
apiVersion: sources.knative.dev/v1
kind: PingSource
metadata:
  name: eas-reconcile
  namespace: eas
spec:
  schedule: "* * * * *"
  contentType: application/json
  data: '{"reason": "reconcile"}'
  sink:
    ref:
      apiVersion: eventing.knative.dev/v1
      kind: Broker
      name: default
---
apiVersion: sources.knative.dev/v1
kind: PingSource
metadata:
  name: elsewhere
  namespace: eas
spec:
  sink:
    uri: http://127.0.0.1:1/not-the-broker
"""


def config(subscriber):
    return broker_doc() + trigger_doc("ticks", subscriber.url("/ticks"), filter_yaml="""\
        filter:
          attributes:
            type: dev.knative.sources.ping
        """) + PING_DOC


def test_emitter_sends_ticks_through_the_broker(make_broker, subscriber):
    broker = make_broker(config(subscriber))
    emitter = PingEmitter(broker, 0.05)
    assert [s.name for s, _ in emitter.sources] == ["eas-reconcile"]
    emitter.start()
    try:
        subscriber.wait_for(3, "/ticks")
    finally:
        emitter.stop()
    assert emitter.ticks >= 3
    assert broker.wait_idle(10)
    got = subscriber.events("/ticks")
    assert {e["type"] for e in got} == {"dev.knative.sources.ping"}
    assert {e["source"] for e in got} == {"/apis/v1/namespaces/eas/pingsources/eas-reconcile"}
    assert all(e.data == {"reason": "reconcile"} for e in got)
    assert all(e["datacontenttype"] == "application/json" for e in got)
    assert len({e["id"] for e in got}) == len(got)  # one id per tick


def test_tick_ids_are_stable():
    source = PingSourceConfig(name="eas-reconcile", namespace="eas", sink={}, content_type="application/json",
                              data='{"reason": "reconcile"}')
    first, again, later = ping_event(source, 1800.0), ping_event(source, 1800.0), ping_event(source, 1860.0)
    assert first["id"] == again["id"] == "eas-reconcile-1970-01-01T00:30:00Z"
    assert first["time"] == "1970-01-01T00:30:00Z"
    assert later["id"] != first["id"]


def test_explicit_tick_and_disabled_emitter(make_broker, subscriber):
    broker = make_broker(config(subscriber))
    assert not PingEmitter(broker, 0).enabled
    emitter = PingEmitter(broker, 60)
    assert emitter.emit(1800.0) == 1
    assert emitter.emit(1800.0) == 1  # a repeated tick is re-sent, with the same id
    assert broker.wait_idle(10)
    assert [e["id"] for e in subscriber.events("/ticks")] == ["eas-reconcile-1970-01-01T00:30:00Z"] * 2


def test_base64_data():
    source = PingSourceConfig(name="p", namespace="eas", sink={}, data_base64="AAE=")
    event = ping_event(source, 0.0)
    assert event.data == b"\x00\x01"
