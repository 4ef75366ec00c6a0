"""Kept-alive connections from local serving to replicas: reused, and replaced when stale."""
from __future__ import annotations

import time

from eas_runtime.serving import local
from tests.serving.serving_helpers import call, echo_service, replicas

#: gunicorn (functions-framework's server) closes a connection idle for 2 s.
GUNICORN_KEEPALIVE_S = 2.0


def test_consecutive_requests_share_one_connection(make_serving):
    serving = make_serving(echo_service("echo"))
    answers = [call(serving, "echo") for _ in range(3)]
    assert len({a["pid"] for a in answers}) == 1
    assert len({a["client_port"] for a in answers}) == 1     # one TCP connection for all three


def test_a_connection_the_replica_closed_is_replaced(make_serving):
    serving = make_serving(echo_service("echo"))
    first = call(serving, "echo")
    time.sleep(GUNICORN_KEEPALIVE_S + 0.5)                   # the replica drops the idle connection
    second = call(serving, "echo")
    assert second["pid"] == first["pid"]                      # the replica was not taken for dead
    assert second["client_port"] != first["client_port"]
    [replica] = replicas(serving, "echo")
    assert replica["requests"] == 2


def test_a_request_on_a_connection_closed_meanwhile_is_sent_again(make_serving, monkeypatch):
    serving = make_serving(echo_service("echo"))
    first = call(serving, "echo")
    time.sleep(GUNICORN_KEEPALIVE_S + 0.5)
    # Without the idle check the request goes out on the closed connection, as when the
    # replica closes it just while the request is sent.
    monkeypatch.setattr(local, "has_input", lambda sock: False)
    second = call(serving, "echo")
    assert second["pid"] == first["pid"] and second["client_port"] != first["client_port"]
    assert len(replicas(serving, "echo")) == 1
