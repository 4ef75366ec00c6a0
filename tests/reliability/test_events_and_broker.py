"""Issue 11, the events and broker part: Unicode keys in headers (defect 1), wrongly typed
attributes and events retried without bound (defect 2), nested JSON, huge ids and dropped
connections (defect 7), one slow subscriber holding up the others (defect 8), and a seeded fuzz
of the broker ingress. Real components throughout: the broker ingress server, its durable queue,
HTTP subscribers, the function wrapper and eas-control's Flask app."""
from __future__ import annotations

import base64
import http.client
import json
import logging
import random
import socket
import threading
from typing import Any

import pytest
from cloudevents.http import CloudEvent
from sqlalchemy import select

from eas_runtime import events
from eas_runtime.broker import Broker, HttpDispatcher, load_config, serve, wire
from eas_runtime.control.app import create_app as control_app
from eas_runtime.db.models import DeadLetter, Delivery
from eas_runtime.task_api import TaskResult
from eas_runtime.wrapper import TaskRunner

from tests.broker.conftest import Subscriber, broker_doc, trigger_doc, wait_until, write_config
from tests.broker.conftest import db, make_broker, subscriber  # noqa: F401 - fixtures

KEY = "inbox/星 ü%.csv"
NESTED = b"[" * 100_000 + b"]" * 100_000


def _rows(db_, trigger=None):
    query = select(Delivery).order_by(Delivery.id)
    if trigger:
        query = query.where(Delivery.trigger == trigger)
    with db_.read() as session:
        return session.execute(query).scalars().all()


def _letters(db_):
    with db_.read() as session:
        return session.execute(select(DeadLetter).order_by(DeadLetter.id)).scalars().all()


def _upload(id_: str = "u1", key: str = KEY) -> CloudEvent:
    return events.make_event(events.PRODUCT_CREATED, events.SOURCE_STORE, {"key": key, "size": 3},
                             id=id_, subject=key)


def _filter(type_: str) -> str:
    return f"filter:\n  attributes:\n    type: {type_}\n"


@pytest.fixture
def ingress(make_broker, subscriber):  # noqa: F811
    """A started broker (Trigger ``t`` -> ``/t`` binary, ``j`` -> ``/j`` structured, both for
    product.created) with its HTTP ingress; yields (broker, base URL)."""
    broker = make_broker(broker_doc(retry=2, dls=None)
                         + trigger_doc("t", subscriber.url("/t"), _filter(events.PRODUCT_CREATED))
                         + trigger_doc("j", subscriber.url("/j"), _filter(events.PRODUCT_CREATED),
                                       "delivery:\n  format: json\n"))
    server = serve(broker)
    yield broker, server.url
    server.shutdown()


def _post(url: str, headers: dict[str, Any], body: bytes) -> tuple[int, bytes]:
    """POST with http.client (any header bytes, as a hostile client sends them)."""
    host, port = url.removeprefix("http://").split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=10)
    try:
        conn.putrequest("POST", "/eas/default", skip_accept_encoding=True)
        for name, value in headers.items():
            conn.putheader(name, value)
        conn.putheader("Content-Length", str(len(body)))
        conn.endheaders(body)
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        conn.close()


# ------------------------------------------------------------------------------ defect 1
def test_defect_1_unicode_key_round_trips_binary_and_structured():
    event = _upload()
    headers, body = events.to_http(event)
    assert headers["ce-subject"] == "inbox/%E6%98%9F%20%C3%BC%25.csv"
    assert all(v.isascii() for v in headers.values())
    assert events.parse(headers, body)["subject"] == KEY
    assert events.data_of(events.parse(headers, body))["key"] == KEY
    s_headers, s_body = events.to_http(event, "structured")
    assert events.parse(s_headers, s_body)["subject"] == KEY
    # The SDK path (an attribute that is not a string) and the broker's own encoder.
    odd = CloudEvent({**event.get_attributes(), "count": 3}, {"key": KEY})
    sdk_headers, sdk_body = events.to_http(odd)
    assert sdk_headers["ce-subject"] == headers["ce-subject"] and sdk_headers["ce-count"] == "3"
    assert events.parse(sdk_headers, sdk_body)["subject"] == KEY
    w_headers, _ = wire.encode(odd)
    assert w_headers["ce-subject"] == headers["ce-subject"]
    # Receivers: quoted values (older senders), raw UTF-8 octets (http.client and WSGI hand
    # header bytes over as ISO-8859-1 text), lower-case hex; invalid UTF-8 is refused by name.
    raw = KEY.encode("utf-8").decode("latin-1")
    for value in (raw, '"inbox/%e6%98%9f %C3%BC%25.csv"'):
        assert events.parse({**headers, "ce-subject": value}, body)["subject"] == KEY
    with pytest.raises(events.EventError, match="'subject'.*UTF-8"):
        events.parse({**headers, "ce-subject": "a%C0%A0b"}, body)


def test_defect_1_unicode_key_travels_through_the_broker(ingress, subscriber):  # noqa: F811
    broker, url = ingress
    events.send(_upload("b1"), f"{url}/eas/default")                        # binary
    events.send(_upload("s1"), f"{url}/eas/default", mode="structured")
    assert broker.wait_idle(20)
    for path in ("/t", "/j"):                                               # binary, structured out
        received = subscriber.events(path)
        assert sorted(e["id"] for e in received) == ["b1", "s1"]
        assert {e["subject"] for e in received} == {KEY}
        assert {events.data_of(e)["key"] for e in received} == {KEY}
    assert {r.state for r in _rows(broker.db)} == {"delivered"}


# ------------------------------------------------------------------------------ defect 2
BASE = {"specversion": "1.0", "id": "x", "source": "/s", "type": events.PRODUCT_CREATED}
CE_JSON = {"Content-Type": "application/cloudevents+json"}


@pytest.mark.parametrize("change, named", [
    ({"datacontenttype": 5}, "datacontenttype"),
    ({"datacontenttype": "not a media type"}, "datacontenttype"),
    ({"id": 5}, "'id'"),
    ({"id": ""}, "'id'"),
    ({"source": None}, "'source'"),
    ({"type": ["t"]}, "'type'"),
    ({"specversion": "0.3"}, "specversion"),
    ({"subject": ""}, "subject"),
    ({"subject": "a\nb"}, "subject"),
    ({"subject": "\ud800"}, "subject"),
    ({"time": "yesterday"}, "'time'"),
    ({"time": "2024-13-01T00:00:00Z"}, "'time'"),
    ({"dataschema": "no scheme"}, "dataschema"),
    ({"Upper": "x"}, "'Upper'"),
    ({"waytoolongextensionname": "x"}, "waytoolongextensionname"),
    ({"taskid": 1.5}, "taskid"),
    ({"taskid": {"a": 1}}, "taskid"),
    ({"taskid": 2 ** 40}, "taskid"),
    ({"data": 1, "data_base64": "AA=="}, "data_base64"),
    ({"data_base64": "***"}, "data_base64"),
    ({"subject": "星" * 500}, "subject"),                   # 4.5 KB as a header: too long
    ({f"x{i}": "v" for i in range(70)}, "attributes"),
])
def test_defect_2_wrongly_typed_attributes_get_400_naming_the_attribute(ingress, change, named):
    broker, url = ingress
    document = {k: v for k, v in {**BASE, **change}.items() if v is not None}
    status, text = _post(url, CE_JSON, json.dumps(document).encode())
    assert status == 400 and named in text.decode(), text
    assert _rows(broker.db) == []


def test_defect_2_extension_types_become_canonical_strings(ingress, subscriber):  # noqa: F811
    broker, url = ingress
    document = {**BASE, "id": "ext", "flag": True, "count": -7, "data": {"key": "k"}}
    assert _post(url, CE_JSON, json.dumps(document).encode())[0] == 202
    assert broker.wait_idle(20)
    [event] = subscriber.events("/t")
    assert (event["flag"], event["count"]) == ("true", "-7")


def test_defect_2_binary_headers_are_checked_too(ingress):
    broker, url = ingress
    headers = {"ce-specversion": "1.0", "ce-id": "b", "ce-source": "/s", "ce-type": "t"}
    for bad, named in (({"ce-time": "later"}, "ce-time"), ({"ce-a_b": "x"}, "'a_b'"),
                       ({"ce-subject": "%FF"}, "ce-subject"), ({"ce-specversion": "2.0"}, "specversion"),
                       ({"Content-Type": "text"}, "datacontenttype")):
        status, text = _post(url, {**headers, **bad}, b"")
        assert status == 400 and named in text.decode(), (bad, text)
    assert _rows(broker.db) == []


def _poison_row(db_, trigger: str) -> int:
    """A stored event the broker cannot send: its subject holds a lone surrogate (written by an
    older version, which did not check attributes), so encoding the request raises."""
    payload = json.dumps({**BASE, "id": "poison", "subject": "\ud800", "data": {}})
    with db_.session() as session:
        row = Delivery(event_key="/s#poison", event_type=BASE["type"], trigger=trigger, payload=payload)
        session.add(row)
        session.flush()
        return row.id


def test_defect_2_event_failing_inside_the_broker_is_dead_lettered_after_its_budget(
        make_broker, subscriber, db):  # noqa: F811
    broker = make_broker(broker_doc(retry=2, dls=None) + trigger_doc("t", subscriber.url("/t")), start=False)
    row_id = _poison_row(db, "t")
    broker.start()
    assert broker.wait_idle(20)
    tries = [(a.number, a.verdict) for a in broker.attempts if a.delivery_id == row_id]
    assert tries == [(1, "retry"), (2, "retry"), (3, "fail")]           # 1 + retry: 2, no more
    [row] = _rows(db)
    assert (row.state, row.tries) == ("dead", 3)
    [letter] = _letters(db)
    assert "failed in the broker" in letter.reason and "budget" in letter.reason
    assert json.loads(letter.payload)["id"] == "poison"
    assert subscriber.received() == []


def test_defect_2_a_restart_does_not_reset_the_retry_budget(tmp_path, settings, db, subscriber):  # noqa: F811
    folder = write_config(tmp_path / "budget", broker_doc(retry=3, delay="PT0.3S", dls=None)
                          + trigger_doc("t", subscriber.url("/t")))
    row_id = _poison_row(db, "t")
    first = Broker(settings, db, load_config(folder), HttpDispatcher(), workers=2).start()
    wait_until(lambda: _rows(db)[0].tries >= 1)
    first.stop()
    spent = _rows(db)[0].tries
    second = Broker(settings, db, load_config(folder), HttpDispatcher(), workers=2).start()
    try:
        assert second.wait_idle(20)
    finally:
        second.stop()
    [row] = _rows(db)
    assert (row.state, row.tries) == ("dead", 4)
    assert len([a for a in second.attempts if a.delivery_id == row_id]) == 4 - spent


# ------------------------------------------------------------------------------ defect 7
def test_defect_7_nested_json_and_huge_ids_get_400_at_a_function(resources):
    runner = TaskRunner(("null",), lambda ctx: TaskResult(), resources)
    ready = events.make_event(events.TASK_READY, "/eas/control", {}, id="r", tasktype="null",
                              taskid=1, attemptid=1)
    headers, body = events.to_http(ready)
    for taskid in ("1" * 30, "-3", "0", "9223372036854775808", "1e3"):
        status, text, _ = runner.handle_http("POST", {**headers, "ce-taskid": taskid}, body)
        assert status == 400 and "'taskid'" in text, (taskid, text)
    status, text, _ = runner.handle_http("POST", headers, NESTED)
    assert status == 400 and "nested" in text
    s_headers, _ = events.to_http(ready, "structured")
    status, text, _ = runner.handle_http("POST", s_headers, b'{"data":' + NESTED + b"}")
    assert status == 400 and "nested" in text


def test_defect_7_nested_json_and_huge_ids_get_400_at_control(resources):
    client = control_app(resources).test_client()
    finished = events.make_event(events.TASK_FINISHED, "/f", {}, id="f", taskid="1" * 30)
    headers, body = events.to_http(finished)
    response = client.post("/", headers=headers, data=body)
    assert response.status_code == 400 and b"'taskid'" in response.data
    control = events.make_event(events.TASK_READY, "/c", {}, id="c", tasktype="execution_chain",
                                taskid=1, attemptid="9" * 30)
    response = client.post("/", headers=events.to_http(control)[0], data=b"")
    assert response.status_code == 400 and b"'attemptid'" in response.data
    for mode, data in (("binary", NESTED), ("structured", b'{"data":' + NESTED + b"}")):
        response = client.post("/", headers=events.to_http(finished, mode)[0], data=data)
        assert response.status_code == 400 and b"nested" in response.data
    # data_of, for JSON text data that arrived as a string
    event = CloudEvent({**BASE}, NESTED.decode())
    with pytest.raises(events.EventError, match="nested"):
        events.data_of(event)


def test_defect_7_dropped_connections_at_the_ingress_get_400_or_a_quiet_close(ingress, subscriber, caplog):  # noqa: F811
    broker, url = ingress
    port = int(url.rsplit(":", 1)[1])
    head = (b"POST /eas/default HTTP/1.1\r\nHost: x\r\nce-specversion: 1.0\r\nce-id: d\r\n"
            b"ce-source: /s\r\nce-type: " + events.PRODUCT_CREATED.encode() + b"\r\n")

    def exchange(data: bytes, how: str) -> bytes:
        sock = socket.create_connection(("127.0.0.1", port), timeout=10)
        sock.sendall(data)
        if how == "reset":
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
            sock.close()
            return b""
        sock.shutdown(socket.SHUT_WR)
        answer = b""
        while chunk := sock.recv(4096):
            answer += chunk
        sock.close()
        return answer

    caplog.set_level(logging.DEBUG, logger="eas_runtime")
    cases = [head + b"Content-Length: 100\r\n\r\n{\"a\"",
             head + b"Transfer-Encoding: chunked\r\n\r\n10\r\n{\"a\"",
             head + b"Transfer-Encoding: chunked\r\n\r\n-1\r\n{}",
             head + b"Transfer-Encoding: gzip\r\n\r\n{}",
             head + b"Content-Length: 99999999999\r\n\r\n{}"]
    for data in cases:
        answer = exchange(data, "half-close")
        assert answer.split(b"\r\n", 1)[0] in (b"HTTP/1.1 400 Bad Request", b"HTTP/1.1 413 Request Entity Too Large"), answer
    for data in cases[:2]:
        exchange(data, "reset")
    events.send(_upload("after"), f"{url}/eas/default")
    assert broker.wait_idle(20)
    assert [e["id"] for e in subscriber.events("/t")] == ["after"]
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING and r.name.startswith("eas_runtime")]


# ------------------------------------------------------------------------------ defect 8
def test_defect_8_a_slow_subscriber_does_not_delay_another_trigger(make_broker, subscriber):  # noqa: F811
    release = threading.Event()
    slow = Subscriber(default=lambda request: (release.wait(60), 202)[1])
    try:
        broker = make_broker(broker_doc(retry=0, dls=None)
                             + trigger_doc("slow", slow.url("/slow"), _filter("org.plato.eas.slow"))
                             + trigger_doc("fast", subscriber.url("/fast"), _filter("org.plato.eas.fast")),
                             workers=2)
        for i in range(6):                      # more than the slow lane can take at once
            broker.ingest(events.make_event("org.plato.eas.slow", "/t", {}, id=f"s{i}"))
        slow.wait_for(2)                        # the slow lane is full and blocked
        for i in range(3):
            broker.ingest(events.make_event("org.plato.eas.fast", "/t", {}, id=f"f{i}"))
        got = subscriber.wait_for(3, "/fast", timeout=20)
        assert not release.is_set()             # delivered while the slow subscriber still blocks
        assert sorted(r["headers"]["Ce-Id"] for r in got) == ["f0", "f1", "f2"]
        assert len(slow.received()) == 2        # its lane holds at most `workers` rows
        assert broker._queue.in_flight("slow") == 2
    finally:
        release.set()
    assert broker.wait_idle(30)
    assert sorted(r["headers"]["Ce-Id"] for r in slow.received()) == [f"s{i}" for i in range(6)]
    slow.close()


# ------------------------------------------------------------------------------ fuzz
def _fuzz_value(rng: random.Random) -> Any:
    return rng.choice([
        5, -1, 2 ** 31, 2 ** 70, 1.5, True, None, [], {}, [1, [2]], {"a": {"b": 1}}, "",
        "x" * rng.randint(1, 3000), "星 ü%", "a\x00b", "\ud800", "\x7f", "2024-01-01T00:00:00Z",
        "%ZZ", "%C0%A0", '"quoted"', "http://x/y", "a" * 70_000,
    ])


def _fuzz_case(rng: random.Random) -> tuple[dict[str, str], bytes]:
    attrs: dict[str, Any] = {**BASE, "id": f"fz{rng.randrange(10 ** 9)}", "subject": KEY}
    data: Any = {"key": KEY}
    for _ in range(rng.randint(1, 3)):
        roll = rng.random()
        name = rng.choice(["specversion", "id", "source", "type", "subject", "time", "dataschema",
                           "datacontenttype", "taskid", "Bad-Name", "x" * 25, "data", ""])
        if roll < 0.45:
            attrs[name] = _fuzz_value(rng)
        elif roll < 0.6:
            attrs.pop(rng.choice(list(attrs)), None)
        elif roll < 0.75:
            data = rng.choice([_fuzz_value(rng), "[" * rng.randint(500, 5000), b"\xff\xfe"])
        else:
            attrs["data_base64"] = rng.choice(["AAAA", "***", 5, base64.b64encode(b"{}").decode()])
    if rng.random() < 0.5:                       # structured
        try:
            body = json.dumps({**attrs, **({} if isinstance(data, bytes) else {"data": data})}).encode()
        except ValueError:
            body = b"{"
        cut = rng.random()
        if cut < 0.1:
            body = body[: rng.randrange(len(body) + 1)]
        elif cut < 0.15:
            body = bytes(rng.randrange(256) for _ in range(rng.randint(0, 200)))
        return {"Content-Type": rng.choice(["application/cloudevents+json", "application/cloudevents+xml",
                                            "application/cloudevents-batch+json"] + ["application/cloudevents+json"] * 5)}, body
    headers = {}
    for name, value in attrs.items():
        text = value if isinstance(value, str) else json.dumps(value)
        text = "".join(c for c in text if c not in "\r\n\x00")
        try:
            text.encode("latin-1")
        except UnicodeEncodeError:
            text = text.encode("utf-8", "surrogatepass").decode("latin-1")
        text = text[:8000]              # a line over 64 KiB is answered 431 before the body is sent
        if name == "datacontenttype":
            headers["Content-Type"] = text
        elif name and "data" not in name:
            headers[f"ce-{name}"] = text
    if isinstance(data, bytes):
        body = data
    elif isinstance(data, str):
        body = data.encode("utf-8", "surrogatepass")
    else:
        body = json.dumps(data).encode()
    return headers, body


@pytest.mark.timeout(300)
def test_ingress_fuzz_is_answered_4xx_or_202_never_5xx_and_a_normal_event_still_flows(ingress, subscriber):  # noqa: F811
    broker, url = ingress
    rng = random.Random(11)
    statuses: dict[int, int] = {}
    for _ in range(1200):
        headers, body = _fuzz_case(rng)
        status, text = _post(url, headers, body)
        statuses[status] = statuses.get(status, 0) + 1
        assert status == 202 or (400 <= status < 500 and text.strip()), (status, text, headers, body[:200])
    print("fuzz answers by status:", dict(sorted(statuses.items())))
    assert statuses.get(202, 0) > 50 and sum(n for s, n in statuses.items() if s >= 400) > 500, statuses
    events.send(_upload("normal"), f"{url}/eas/default")
    assert broker.wait_idle(60)
    assert "normal" in {e["id"] for e in subscriber.events("/t")}
    # Everything accepted was delivered: nothing left pending, nothing failed inside the broker.
    rows = _rows(broker.db)
    assert {r.state for r in rows} == {"delivered"}
    assert not [r for r in rows if "failed in the broker" in (r.last_error or "")]
