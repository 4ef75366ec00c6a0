"""The broker ingress over real HTTP: binary and structured events, bad requests, outages."""
from __future__ import annotations

import http.client
import json
import shutil

import pytest
import requests
from cloudevents.conversion import to_binary, to_structured
from sqlalchemy import select

from eas_runtime.broker import serve
from eas_runtime.db.models import Delivery

from .conftest import broker_doc, make_event, trigger_doc

CONFIG = broker_doc() + trigger_doc("ready", "http://127.0.0.1:1/ready", filter_yaml="""\
    filter:
      attributes:
        type: org.plato.eas.task.ready
    """) + trigger_doc("tls", "http://127.0.0.1:1/tls", filter_yaml="""\
    filters:
      - suffix:
          tasktype: _tls
    """)


@pytest.fixture
def ingress(make_broker):
    """(broker, base URL) with workers not started, so the rows stay pending for inspection."""
    broker = make_broker(CONFIG, start=False)
    server = serve(broker)
    yield broker, f"http://127.0.0.1:{server.port}"
    server.shutdown()


def rows(broker):
    with broker.db.read() as session:
        return session.execute(select(Delivery).order_by(Delivery.id)).scalars().all()


def test_binary_event_is_accepted_with_202_and_an_empty_body(ingress):
    broker, url = ingress
    headers, body = to_binary(make_event(id="b1", tasktype="transit_search_tls"))
    response = requests.post(f"{url}/eas/default", headers=headers, data=body, timeout=5)
    assert response.status_code == 202
    assert response.content == b""
    stored = rows(broker)
    assert sorted(r.trigger for r in stored) == ["ready", "tls"]
    assert {r.state for r in stored} == {"pending"}
    assert stored[0].event_key == "/test#b1"
    payload = json.loads(stored[0].payload)
    assert payload["id"] == "b1" and payload["data"] == {"n": 1} and payload["tasktype"] == "transit_search_tls"


def test_structured_event_is_accepted(ingress):
    broker, url = ingress
    headers, body = to_structured(make_event(id="s1", tasktype="verify"))
    assert headers["content-type"] == "application/cloudevents+json"
    response = requests.post(f"{url}/eas/default", headers=headers, data=body, timeout=5)
    assert (response.status_code, response.content) == (202, b"")
    assert [r.trigger for r in rows(broker)] == ["ready"]


def test_event_matching_no_trigger_is_accepted_and_dropped(ingress):
    broker, url = ingress
    headers, body = to_binary(make_event("org.plato.eas.job.submitted", id="j1"))
    response = requests.post(f"{url}/eas/default", headers=headers, data=body, timeout=5)
    assert (response.status_code, response.content) == (202, b"")
    assert rows(broker) == []


@pytest.mark.parametrize("header", ["ce-specversion", "ce-id", "ce-source", "ce-type"])
def test_each_required_binary_header_is_required(ingress, header):
    broker, url = ingress
    headers, body = to_binary(make_event(id="h1"))
    del headers[header]
    response = requests.post(f"{url}/eas/default", headers=headers, data=body, timeout=5)
    assert response.status_code == 400
    assert header in response.text
    assert rows(broker) == []


@pytest.mark.parametrize("headers, body, message", [
    ({"content-type": "application/json"}, b'{"a": 1}', "not a CloudEvent"),
    ({"content-type": "text/plain"}, b"OK", "not a CloudEvent"),
    ({"content-type": "application/cloudevents+json"}, b"{not json", "not a CloudEvent"),
    ({"content-type": "application/cloudevents+json"},
     b'{"specversion": "1.0", "source": "/s", "type": "t"}', "id"),
    ({"ce-specversion": "7.0", "ce-id": "1", "ce-source": "/s", "ce-type": "t"}, b"", "7.0"),
])
def test_invalid_events_get_400_naming_the_problem(ingress, headers, body, message):
    broker, url = ingress
    response = requests.post(f"{url}/eas/default", headers=headers, data=body, timeout=5)
    assert response.status_code == 400
    assert message in response.text
    assert rows(broker) == []


def test_unknown_broker_is_404_and_get_is_405(ingress):
    _, url = ingress
    headers, body = to_binary(make_event())
    assert requests.post(f"{url}/eas/other", headers=headers, data=body, timeout=5).status_code == 404
    assert requests.post(f"{url}/default/default", headers=headers, data=body, timeout=5).status_code == 404
    response = requests.get(f"{url}/eas/default", timeout=5)
    assert response.status_code == 405 and response.headers["Allow"] == "POST"


def test_healthz(ingress):
    _, url = ingress
    assert requests.get(f"{url}/healthz", timeout=5).status_code == 200


def test_database_outage_is_503(ingress, tmp_path):
    broker, url = ingress
    broker.db.dispose()
    folder = tmp_path / "db"
    shutil.move(folder, tmp_path / "db-moved")
    folder.write_text("not a directory")  # the database file can no longer be opened
    try:
        headers, body = to_binary(make_event(id="o1"))
        response = requests.post(f"{url}/eas/default", headers=headers, data=body, timeout=10)
        assert response.status_code == 503
        assert "try again" in response.text
    finally:
        broker.db.dispose()
        folder.unlink()
        shutil.move(tmp_path / "db-moved", folder)


def test_a_producer_connection_is_kept_alive_across_events(ingress):
    broker, url = ingress
    conn = http.client.HTTPConnection("127.0.0.1", int(url.rsplit(":", 1)[1]), timeout=5)
    socks = []
    for i in range(3):
        headers, body = to_binary(make_event(id=f"k{i}", tasktype="verify"))
        conn.request("POST", "/eas/default", body=body, headers=headers)
        response = conn.getresponse()
        assert (response.status, response.read()) == (202, b"")
        socks.append(conn.sock)
    assert socks[0] is not None and all(s is socks[0] for s in socks)   # one TCP connection
    assert len(rows(broker)) == 3
    conn.close()


def test_a_chunked_event_is_accepted(ingress):
    broker, url = ingress
    headers, body = to_binary(make_event(id="c1", tasktype="verify"))
    response = requests.post(f"{url}/eas/default", headers=headers, data=iter([body[:3], body[3:]]), timeout=5)
    assert response.status_code == 202
    assert json.loads(rows(broker)[0].payload)["data"] == {"n": 1}


def test_shutdown_closes_kept_alive_connections(make_broker):
    broker = make_broker(CONFIG, start=False)
    server = serve(broker)
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=5)
    conn.request("GET", "/healthz")
    assert conn.getresponse().read() == b"ok\n"
    server.shutdown()
    headers, body = to_binary(make_event(id="late"))
    with pytest.raises((ConnectionError, http.client.HTTPException, OSError)):
        conn.request("POST", "/eas/default", body=body, headers=headers)
        conn.getresponse()
    assert rows(broker) == []
