"""Delivery over real HTTP: retries, Knative's response rules, replies, dead letters, restarts."""
from __future__ import annotations

import base64
import json
import socket
import time

import pytest
from cloudevents.conversion import to_binary, to_structured
from sqlalchemy import select

from eas_runtime.broker import Broker, HttpDispatcher, load_config
from eas_runtime.db.models import DeadLetter, Delivery

from .conftest import broker_doc, make_event, trigger_doc, wait_until, write_config


def rows(broker, trigger=None):
    query = select(Delivery).order_by(Delivery.id)
    if trigger:
        query = query.where(Delivery.trigger == trigger)
    with broker.db.read() as session:
        return session.execute(query).scalars().all()


def dead_letters(broker):
    with broker.db.read() as session:
        return session.execute(select(DeadLetter).order_by(DeadLetter.id)).scalars().all()


def attempts(broker, trigger="t"):
    return [a for a in broker.attempts if a.trigger == trigger]


def one_trigger(subscriber, retry=3, policy="exponential", delay="PT0.01S", dls=True,
                filter_yaml="", delivery_yaml=""):
    return (broker_doc(retry=retry, policy=policy, delay=delay,
                       dls=subscriber.url("/dls") if dls else None)
            + trigger_doc("t", subscriber.url("/t"), filter_yaml, delivery_yaml))


def test_event_is_delivered_in_binary_mode(make_broker, subscriber):
    broker = make_broker(one_trigger(subscriber))
    broker.ingest(make_event(id="d1", tasktype="verify"))
    assert broker.wait_idle(10)
    [request] = subscriber.received("/t")
    headers = {k.lower(): v for k, v in request["headers"].items()}
    assert headers["ce-id"] == "d1" and headers["ce-tasktype"] == "verify"
    assert headers["content-type"] == "application/json"
    assert headers["prefer"] == "reply"
    assert "ce-knativebrokerttl" not in headers
    assert json.loads(request["body"]) == {"n": 1}
    [row] = rows(broker)
    assert (row.state, row.tries, row.last_error) == ("delivered", 1, "")


def test_500_twice_then_202_is_delivered_on_the_third_try(make_broker, subscriber):
    subscriber.script("/t", 500, 500, 202)
    broker = make_broker(one_trigger(subscriber))
    broker.ingest(make_event(id="r1"))
    assert broker.wait_idle(10)
    assert len(subscriber.received("/t")) == 3
    assert [(a.number, a.status, a.verdict) for a in attempts(broker)] == [
        (1, 500, "retry"), (2, 500, "retry"), (3, 202, "delivered")]
    [row] = rows(broker)
    assert (row.state, row.tries) == ("delivered", 3)
    assert subscriber.received("/dls") == []


def test_ok_body_is_a_failure_retried_then_dead_lettered(make_broker, subscriber):
    # functions-framework's @cloud_event answers 200 "OK": Knative treats it as 502.
    subscriber.script("/t", *[(200, {"Content-Type": "text/plain"}, b"OK")] * 4)
    broker = make_broker(one_trigger(subscriber, retry=3))
    broker.ingest(make_event(id="ok1", tasktype="verify"))
    assert broker.wait_idle(10)
    assert len(subscriber.received("/t")) == 4
    assert [(a.status, a.verdict) for a in attempts(broker)] == [(502, "retry")] * 3 + [(502, "retry")]
    [letter] = subscriber.events("/dls")
    assert letter["id"] == "ok1" and letter["tasktype"] == "verify"
    assert letter["knativeerrorcode"] == "502"
    assert letter["knativeerrordest"] == subscriber.url("/t")
    assert base64.b64decode(letter["knativeerrordata"]) == b"OK"
    assert letter.data == {"n": 1}
    [row] = rows(broker)
    assert row.state == "dead" and row.tries == 4
    assert "not a CloudEvent" in row.last_error and row.last_error.startswith("[502]")
    assert dead_letters(broker) == []  # the dead-letter sink took it


def test_400_goes_to_the_dead_letter_sink_without_retry(make_broker, subscriber):
    subscriber.script("/t", (400, {}, b"bad parameters"))
    broker = make_broker(one_trigger(subscriber, retry=5))
    broker.ingest(make_event(id="b1"))
    assert broker.wait_idle(10)
    assert len(subscriber.received("/t")) == 1
    [letter] = subscriber.events("/dls")
    assert letter["knativeerrorcode"] == "400"
    assert base64.b64decode(letter["knativeerrordata"]) == b"bad parameters"
    assert [(a.number, a.verdict, a.next_delay_s) for a in attempts(broker)] == [(1, "fail", None)]
    assert rows(broker)[0].state == "dead"


@pytest.mark.parametrize("status", [404, 408, 409, 429, 503])
def test_retryable_statuses_are_retried(make_broker, subscriber, status):
    subscriber.script("/t", status, 202)
    broker = make_broker(one_trigger(subscriber))
    broker.ingest(make_event(id=f"s{status}"))
    assert broker.wait_idle(10)
    assert len(subscriber.received("/t")) == 2
    assert rows(broker)[0].state == "delivered"
    assert subscriber.received("/dls") == []


@pytest.mark.parametrize("status", [401, 403, 410, 422])
def test_other_4xx_are_not_retried(make_broker, subscriber, status):
    subscriber.script("/t", status)
    broker = make_broker(one_trigger(subscriber))
    broker.ingest(make_event(id=f"n{status}"))
    assert broker.wait_idle(10)
    assert len(subscriber.received("/t")) == 1
    assert subscriber.events("/dls")[0]["knativeerrorcode"] == str(status)


def reply_with(event, mode="binary"):
    def answer(_request):
        headers, body = (to_structured if mode == "structured" else to_binary)(event)
        return 200, headers, body
    return answer


@pytest.mark.parametrize("mode", ["binary", "structured"])
def test_reply_event_is_routed_to_the_trigger_that_matches_it(make_broker, subscriber, mode):
    config = (broker_doc(dls=subscriber.url("/dls"))
              + trigger_doc("ready", subscriber.url("/ready"), """\
                  filter:
                    attributes:
                      type: org.plato.eas.task.ready
                  """)
              + trigger_doc("finished", subscriber.url("/finished"), """\
                  filters:
                    - exact:
                        type: org.plato.eas.task.finished
                  """))
    reply = make_event("org.plato.eas.task.finished", id="reply-1", data={"ok": True}, taskid="7")
    subscriber.script("/ready", reply_with(reply, mode))
    broker = make_broker(config)
    broker.ingest(make_event(id="q1"))
    assert broker.wait_idle(10)
    [got] = subscriber.events("/finished")
    assert (got["id"], got["type"], got["taskid"]) == ("reply-1", "org.plato.eas.task.finished", "7")
    assert got.data == {"ok": True}
    assert [(r.trigger, r.state) for r in rows(broker)] == [("ready", "delivered"), ("finished", "delivered")]


def test_malformed_reply_is_a_failure(make_broker, subscriber):
    bad = (200, {"ce-specversion": "1.0", "ce-type": "x"}, b"{}")  # no ce-id, ce-source
    subscriber.script("/t", bad, 202)
    broker = make_broker(one_trigger(subscriber))
    broker.ingest(make_event(id="m1"))
    assert broker.wait_idle(10)
    assert [(a.status, a.verdict) for a in attempts(broker)] == [(502, "retry"), (202, "delivered")]


def test_reply_loops_are_stopped_by_the_ttl(make_broker, subscriber):
    loop = make_event("org.plato.eas.task.ready", id="loop")
    subscriber.default = reply_with(loop)
    broker = make_broker(one_trigger(subscriber))
    broker.ingest(make_event(id="loop", knativebrokerttl=5))
    assert broker.wait_idle(10)
    # ttl 5: stored as 4, the replies as 3, 2, 1; the fourth reply would be 0 and is dropped.
    assert len(subscriber.received("/t")) == 4
    [letter] = dead_letters(broker)
    assert "knativebrokerttl" in letter.reason and letter.event_id == "loop"


def test_exponential_backoff_delays_grow(make_broker, subscriber):
    subscriber.default = 500
    broker = make_broker(one_trigger(subscriber, retry=4, policy="exponential", delay="PT0.01S"))
    broker.ingest(make_event(id="x1"))
    assert broker.wait_idle(10)
    recorded = attempts(broker)
    assert [a.number for a in recorded] == [1, 2, 3, 4, 5]
    assert [a.verdict for a in recorded] == ["retry"] * 5
    delays = [a.next_delay_s for a in recorded]
    assert delays[-1] is None  # no retry after the last attempt
    assert delays[:-1] == pytest.approx([0.01, 0.02, 0.04, 0.08])
    assert all(later > earlier for earlier, later in zip(delays[:-2], delays[1:-1]))
    assert len(subscriber.received("/t")) == 5
    assert subscriber.events("/dls")[0]["knativeerrorcode"] == "500"


def test_linear_backoff_delays(make_broker, subscriber):
    subscriber.default = 500
    broker = make_broker(one_trigger(subscriber, retry=3, policy="linear", delay="PT0.01S"))
    broker.ingest(make_event(id="l1"))
    assert broker.wait_idle(10)
    assert [a.next_delay_s for a in attempts(broker)] == pytest.approx([0.0, 0.01, 0.02, None])


def test_attempts_wait_for_the_backoff(make_broker, subscriber):
    subscriber.script("/t", 503, 202)
    broker = make_broker(one_trigger(subscriber, retry=1, delay="PT0.3S"))
    broker.ingest(make_event(id="w1"))
    assert broker.wait_idle(10)
    first, second = subscriber.received("/t")
    assert second["time"] - first["time"] >= 0.3


def test_without_dead_letter_sink_the_event_is_kept_in_dead_letters(make_broker, subscriber):
    subscriber.default = 500
    broker = make_broker(one_trigger(subscriber, retry=1, dls=False))
    broker.ingest(make_event(id="k1", tasktype="verify"))
    assert broker.wait_idle(10)
    [letter] = dead_letters(broker)
    assert (letter.component, letter.event_id, letter.event_type) == ("broker", "k1", "org.plato.eas.task.ready")
    assert "no dead-letter sink" in letter.reason and "Trigger t" in letter.reason
    assert json.loads(letter.payload)["tasktype"] == "verify"
    assert rows(broker)[0].state == "dead"


def test_failing_dead_letter_sink_keeps_the_event_in_dead_letters(make_broker, subscriber):
    subscriber.script("/t", 400)
    subscriber.script("/dls", 500, 500, 500)
    broker = make_broker(one_trigger(subscriber, retry=2))
    broker.ingest(make_event(id="f1"))
    assert broker.wait_idle(10)
    assert len(subscriber.received("/dls")) == 3  # the sink is retried under the same rules
    [letter] = dead_letters(broker)
    assert "dead-letter sink" in letter.reason and "failed" in letter.reason


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_network_errors_are_retried(make_broker, subscriber):
    dead = f"http://127.0.0.1:{closed_port()}/t"
    config = broker_doc(retry=2, dls=subscriber.url("/dls")) + trigger_doc("t", dead)
    broker = make_broker(config)
    broker.ingest(make_event(id="n1"))
    assert broker.wait_idle(10)
    assert [a.verdict for a in attempts(broker)] == ["retry"] * 3
    [letter] = subscriber.events("/dls")
    assert letter["knativeerrorcode"] == "500"
    assert letter["knativeerrordest"] == dead
    assert base64.b64decode(letter["knativeerrordata"]).startswith(b"dispatch error:")


def test_timeout_is_per_attempt_and_retried(make_broker, subscriber):
    def slow(_request):
        time.sleep(1.0)
        return 202
    subscriber.script("/t", slow, 202)
    broker = make_broker(one_trigger(subscriber, delivery_yaml="""\
        delivery:
          retry: 2
          backoffDelay: PT0.01S
          timeout: PT0.2S
        """))
    broker.ingest(make_event(id="t1"))
    assert broker.wait_idle(10)
    assert [(a.status, a.verdict) for a in attempts(broker)] == [(500, "retry"), (202, "delivered")]


def test_ref_destination_cannot_be_sent_by_the_http_dispatcher(make_broker, subscriber):
    config = broker_doc(retry=3) + trigger_doc("t", "x").replace(
        "    uri: x\n", "    ref:\n      apiVersion: serving.knative.dev/v1\n      kind: Service\n      name: eas-control\n")
    broker = make_broker(config)
    broker.ingest(make_event(id="ref1"))
    assert broker.wait_idle(10)
    assert [a.verdict for a in attempts(broker)] == ["fail"]  # not retried
    [letter] = dead_letters(broker)
    assert "HttpDispatcher" in letter.reason


def test_pending_deliveries_survive_a_restart(tmp_path, settings, db, subscriber):
    folder = write_config(tmp_path / "restart", one_trigger(subscriber, retry=2, delay="PT0.5S"))
    subscriber.script("/t", 503)
    first = Broker(settings, db, load_config(folder), HttpDispatcher(), workers=2).start()
    first.ingest(make_event(id="p1"))
    wait_until(lambda: len(subscriber.received("/t")) == 1)
    first.stop()
    first.ingest(make_event(id="p2"))  # accepted while no worker runs
    assert first.pending() == 2
    assert {r.tries for r in rows(first)} == {0, 1}

    second = Broker(settings, db, load_config(folder), HttpDispatcher(), workers=2).start()
    try:
        assert second.wait_idle(10)
    finally:
        second.stop()
    assert sorted(e["id"] for e in subscriber.events("/t")) == ["p1", "p1", "p2"]
    assert {(r.event_key, r.state) for r in rows(second)} == {("/test#p1", "delivered"), ("/test#p2", "delivered")}
    assert [r.tries for r in rows(second)] == [2, 1]


def test_many_events_each_delivered_once(make_broker, subscriber):
    broker = make_broker(one_trigger(subscriber), workers=8)
    for i in range(60):
        broker.ingest(make_event(id=f"m{i}"))
    assert broker.wait_idle(20)
    ids = [e["id"] for e in subscriber.events("/t")]
    assert sorted(ids) == sorted(f"m{i}" for i in range(60))
    assert broker.counts() == {"delivered": 60}


def test_prune_removes_old_delivered_rows(make_broker, subscriber):
    subscriber.script("/t", 202, 400)
    broker = make_broker(one_trigger(subscriber, dls=False))
    broker.ingest(make_event(id="a"))
    broker.ingest(make_event(id="b"))
    assert broker.wait_idle(10)
    assert broker.prune(3600) == 0
    assert broker.prune(0) == 1
    assert [r.state for r in rows(broker)] == ["dead"]


def test_structured_format_delivery(make_broker, subscriber):
    broker = make_broker(one_trigger(subscriber, delivery_yaml="delivery:\n  format: json\n"))
    broker.ingest(make_event(id="j1"))
    assert broker.wait_idle(10)
    [request] = subscriber.received("/t")
    assert request["headers"]["Content-Type"] == "application/cloudevents+json"
    assert json.loads(request["body"])["id"] == "j1"


def test_unreadable_stored_event_is_dead_lettered(make_broker, subscriber, db):
    broker = make_broker(one_trigger(subscriber), start=False)
    with db.session() as session:
        session.add(Delivery(event_key="x#1", event_type="t", trigger="t", payload="{broken"))
    broker.start()
    assert broker.wait_idle(10)
    assert rows(broker)[0].state == "dead"
    [letter] = dead_letters(broker)
    assert "cannot be read" in letter.reason and letter.payload == "{broken"
    assert subscriber.received() == []
