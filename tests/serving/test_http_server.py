"""The keep-alive WSGI server (eas_runtime.serving.http) with a real Flask app over loopback."""
from __future__ import annotations

import http.client
import threading

import pytest
import requests
from flask import Flask, Response, request

from eas_runtime.serving.http import make_server


@pytest.fixture
def server():
    app = Flask("keepalive-test")

    @app.post("/echo")
    def echo():
        return Response(request.get_data(), status=200, mimetype="application/octet-stream")

    @app.post("/ignore")
    def ignore():                      # answers without reading the body
        return "", 202

    @app.get("/stream")
    def stream():
        return Response((f"part{i};" for i in range(3)), mimetype="text/plain")

    @app.get("/boom")
    def boom():
        raise RuntimeError("no")

    srv = make_server("127.0.0.1", 0, app)
    thread = threading.Thread(target=srv.serve_forever, daemon=True)
    thread.start()
    yield srv
    srv.shutdown()
    thread.join(10)
    srv.server_close()


def test_one_connection_serves_many_requests_even_when_a_body_is_not_read(server):
    conn = http.client.HTTPConnection("127.0.0.1", server.server_port, timeout=5)
    answers, socks = [], []
    for path, body in [("/ignore", b"x" * 5000), ("/echo", b"hello"), ("/ignore", b"y"), ("/echo", b"")]:
        conn.request("POST", path, body=body)
        response = conn.getresponse()
        answers.append((response.status, response.read()))
        socks.append(conn.sock)
    assert answers == [(202, b""), (200, b"hello"), (202, b""), (200, b"")]
    assert socks[0] is not None and all(s is socks[0] for s in socks)   # no reconnection
    conn.close()


def test_streamed_answer_is_chunked_and_the_connection_stays_usable(server):
    session = requests.Session()
    streamed = session.get(f"http://127.0.0.1:{server.server_port}/stream", timeout=5)
    assert streamed.headers.get("Transfer-Encoding") == "chunked"
    assert streamed.text == "part0;part1;part2;"
    assert session.post(f"http://127.0.0.1:{server.server_port}/echo", data=b"after", timeout=5).content == b"after"


def test_chunked_request_body_reaches_the_app(server):
    response = requests.post(f"http://127.0.0.1:{server.server_port}/echo",
                             data=iter([b"ab", b"cd", b"ef"]), timeout=5)
    assert response.content == b"abcdef"


def test_application_error_is_a_500_answer(server):
    response = requests.get(f"http://127.0.0.1:{server.server_port}/boom", timeout=5)
    assert response.status_code == 500


def test_bad_content_length_is_a_400_and_closes(server):
    conn = http.client.HTTPConnection("127.0.0.1", server.server_port, timeout=5)
    conn.putrequest("POST", "/echo")
    conn.putheader("Content-Length", "many")
    conn.endheaders()
    response = conn.getresponse()
    assert response.status == 400 and b"Content-Length" in response.read()
    assert response.getheader("Connection") == "close"
    conn.close()
