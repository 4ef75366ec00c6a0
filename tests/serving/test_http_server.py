"""The keep-alive WSGI server (eas_runtime.serving.http) with a real Flask app over loopback."""
from __future__ import annotations

import http.client
import socket
import threading
import time

import pytest
import requests
from flask import Flask, Response, request

from eas_runtime.serving.http import KeepAliveClient, make_server


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


@pytest.fixture
def port_server():
    """Answers with the client's port; closes connections idle for 0.2 s."""
    app = Flask("client-test")

    @app.post("/port")
    def port():
        return request.environ["REMOTE_PORT"]

    srv = make_server("127.0.0.1", 0, app, idle_timeout_s=0.2)
    thread = threading.Thread(target=srv.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{srv.server_port}/port"
    srv.shutdown()
    thread.join(10)
    srv.server_close()


def test_client_keeps_one_connection_per_thread(port_server):
    client = KeepAliveClient()
    ports = {client.post(port_server, {}, b"x", 5)[2] for _ in range(3)}
    assert len(ports) == 1
    other = []
    worker = threading.Thread(target=lambda: other.append(client.post(port_server, {}, b"x", 5)[2]))
    worker.start()
    worker.join()
    assert other[0] not in ports                   # another thread, another connection


def test_client_replaces_a_connection_the_server_closed(port_server):
    client = KeepAliveClient()
    status, _, first = client.post(port_server, {}, b"x", 5)
    time.sleep(0.6)                                # the server drops the idle connection
    status_again, _, second = client.post(port_server, {}, b"x", 5)
    assert (status, status_again) == (200, 200) and first != second


def test_client_reports_a_refused_connection(port_server):
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        free = sock.getsockname()[1]
    with pytest.raises(OSError):
        KeepAliveClient().post(f"http://127.0.0.1:{free}/", {}, b"", 5)
