"""A threaded HTTP/1.1 server that keeps connections alive, for the runtime's event receivers.

werkzeug's development server closes every connection after one answer (it cannot tell whether
the application read the whole request body), so every event costs a TCP handshake and a new
thread. This server reads each request body completely before handling it (``Content-Length``
or chunked), so a kept-alive connection cannot fall out of step, and every answer carries a
``Content-Length`` or is chunked. One thread per connection; a connection idle for
``idle_timeout_s`` seconds is closed, and :meth:`KeepAliveServer.shutdown` closes the open ones.

- :class:`KeepAliveHandler`: base request handler (``read_body``, ``answer``).
- :class:`WSGIHandler` and :func:`make_server`: any WSGI application (``eas serve`` runs
  eas-control and the storage adapter on it).
- :class:`KeepAliveClient`: the other end, one kept-alive connection per thread and
  destination (``events.send`` posts every event to the broker with it); :func:`exchange`,
  :func:`has_input` and :data:`STALE` for callers that pool connections themselves (local
  serving).

The broker ingress subclasses :class:`KeepAliveHandler` directly.
"""
from __future__ import annotations

import http.client
import io
import logging
import select
import socket
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Callable, Iterable, Mapping, cast
from urllib.parse import unquote_to_bytes, urlsplit

log = logging.getLogger(__name__)

#: Seconds an idle kept-alive connection stays open.
IDLE_TIMEOUT_S = 75.0
#: Largest request body accepted [bytes].
MAX_BODY = 256 * 1024 * 1024
#: Seconds a client may pause while sending a request body before it is answered 408.
BODY_TIMEOUT_S = 30.0
_NO_BODY = frozenset({204, 304})


class BadRequest(ValueError):
    """A request whose body cannot be read (the connection is closed after the answer):
    ``status`` 400, 408 (the client stopped sending) or 413 (too large)."""

    def __init__(self, message: str, status: int = 400):
        super().__init__(message)
        self.status = status


class ClientGone(ConnectionError):
    """The client reset the connection while sending its request: nobody is left to answer,
    the connection is closed quietly."""


class KeepAliveServer(ThreadingHTTPServer):
    """A threaded server that tracks its connections so that :meth:`shutdown` ends them."""

    daemon_threads = True
    block_on_close = False
    allow_reuse_address = True

    def __init__(self, address: tuple[str, int], handler: type[BaseHTTPRequestHandler],
                 idle_timeout_s: float = IDLE_TIMEOUT_S):
        self.idle_timeout_s = idle_timeout_s
        self._connections: set[socket.socket] = set()
        self._connections_lock = threading.Lock()
        super().__init__(address, handler)

    def process_request(self, request, client_address) -> None:
        with self._connections_lock:
            self._connections.add(request)
        super().process_request(request, client_address)

    def shutdown_request(self, request) -> None:
        with self._connections_lock:
            self._connections.discard(request)
        super().shutdown_request(request)

    def handle_error(self, request, client_address) -> None:
        """A client that drops its connection is normal for keep-alive; anything else is logged."""
        if isinstance(sys.exc_info()[1], (ConnectionError, TimeoutError)):
            log.debug("connection from %s ended: %s", client_address, sys.exc_info()[1])
            return
        log.exception("request from %s failed", client_address)

    def shutdown(self) -> None:
        """Stop accepting, and end the kept-alive connections (their threads exit)."""
        super().shutdown()
        with self._connections_lock:
            open_now = list(self._connections)
        for conn in open_now:
            try:
                conn.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass


class KeepAliveHandler(BaseHTTPRequestHandler):
    """HTTP/1.1 with keep-alive: subclasses call :meth:`read_body` then :meth:`answer`."""

    protocol_version = "HTTP/1.1"
    #: Headers and body leave in separate writes: without TCP_NODELAY the body would wait for
    #: the client's delayed acknowledgement of the headers (40 ms on Linux).
    disable_nagle_algorithm = True
    server: KeepAliveServer

    def setup(self) -> None:
        # typeshed declares timeout a ClassVar; StreamRequestHandler.setup reads the instance's.
        self.timeout = self.server.idle_timeout_s  # type: ignore[misc]
        super().setup()

    def read_body(self, limit: int = MAX_BODY) -> bytes:
        """The whole request body (``Content-Length`` or chunked) of at most ``limit`` bytes;
        :class:`BadRequest` (answer it with :meth:`bad_request`; a body cut short is one: a
        client that half-closed still reads the answer), or :class:`ClientGone` when the
        client reset the connection."""
        encoding = self.headers.get("Transfer-Encoding")
        if encoding is not None and encoding.strip().lower() != "chunked":
            raise BadRequest(f"Transfer-Encoding {encoding!r} is not supported (only chunked)")
        self.connection.settimeout(min(BODY_TIMEOUT_S, self.server.idle_timeout_s))
        try:
            if encoding is not None:
                return self._read_chunked(limit)
            raw = self.headers.get("Content-Length")
            text = (raw or "").strip()
            if text and not (text.isascii() and text.isdigit()):
                raise BadRequest(f"Content-Length {raw!r} is not a number")
            length = int(text) if text else 0
            if length > limit:
                raise BadRequest(f"request body of {length} bytes is larger than the limit of {limit} bytes", 413)
            body = self.rfile.read(length) if length else b""
            if len(body) != length:
                raise BadRequest(f"request body ended after {len(body)} of {length} bytes")
            return body
        except TimeoutError:
            raise BadRequest(f"request body not received within {BODY_TIMEOUT_S:g} s", 408) from None
        except ConnectionError as exc:
            raise ClientGone(str(exc)) from None
        finally:
            self.connection.settimeout(self.timeout)

    def _read_chunked(self, limit: int) -> bytes:
        parts: list[bytes] = []
        total = 0
        while True:
            line = self.rfile.readline(1024)
            if not line:
                raise BadRequest(f"chunked request body ended after {total} bytes")
            size_text = line.split(b";", 1)[0].strip()
            if not size_text or len(size_text) > 16 or size_text.strip(b"0123456789abcdefABCDEF"):
                raise BadRequest(f"bad chunk size line {line[:40]!r}")
            size = int(size_text, 16)
            if size == 0:
                while self.rfile.readline(1024) not in (b"\r\n", b"\n", b""):
                    pass                                    # trailers
                return b"".join(parts)
            total += size
            if total > limit:
                raise BadRequest(f"chunked request body larger than the limit of {limit} bytes", 413)
            chunk = self.rfile.read(size)
            if len(chunk) != size:
                raise BadRequest(f"chunked request body ended after {total - size + len(chunk)} bytes")
            parts.append(chunk)
            self.rfile.readline(3)                          # CRLF after the chunk

    def answer(self, status: int, body: bytes = b"", headers: Mapping[str, str] | None = None,
               content_type: str = "text/plain; charset=utf-8") -> None:
        """Send a complete answer with its ``Content-Length``."""
        self.send_response(status)
        sent = {k.lower() for k in (headers or {})}
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        if body and "content-type" not in sent:
            self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if body and self.command != "HEAD":
            self.wfile.write(body)

    def bad_request(self, exc: BadRequest | ClientGone) -> None:
        """Answer a request whose body could not be read, and close the connection (quietly
        when the client is gone or leaves while the answer is written)."""
        self.close_connection = True
        if isinstance(exc, ClientGone):
            log.debug("%s left during its request: %s", self.address_string(), exc)
            return
        try:
            self.answer(exc.status, f"{exc}\n".encode(), {"Connection": "close"})
        except (ConnectionError, TimeoutError) as gone:
            log.debug("%s left before the %d answer: %s", self.address_string(), exc.status, gone)

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - http.server's name
        log.debug("%s %s", self.address_string(), format % args)


class WSGIHandler(KeepAliveHandler):
    """Serves the WSGI application ``server.app`` (PEP 3333), the request body read first."""

    server: _WSGIServer

    def _wsgi(self) -> None:
        try:
            body = self.read_body()
        except (BadRequest, ClientGone) as exc:
            self.bad_request(exc)
            return
        environ = self._environ(body)
        state: dict[str, Any] = {"status": None, "headers": [], "started": False, "chunked": False}

        def start_response(status: str, headers: list, exc_info=None) -> Callable[[bytes], None]:
            if exc_info and state["started"]:
                raise exc_info[1].with_traceback(exc_info[2])
            state["status"], state["headers"] = status, list(headers)
            return write

        def write(data: bytes) -> None:
            if not state["started"]:
                self._start(state, None)
            self._send(state, data)

        try:
            result = self.server.app(environ, start_response)
        except Exception:  # noqa: BLE001 - an application error is a 500, not a dropped connection
            log.exception("%s %s failed", self.command, self.path)
            self.close_connection = True
            self.answer(500, b"internal server error\n", {"Connection": "close"})
            return
        try:
            known = None
            if isinstance(result, (list, tuple)):
                known = b"".join(result)
            if not state["started"]:
                self._start(state, known)
            if known is not None:
                self._send(state, known)
            else:
                for data in result:
                    self._send(state, data)
            if state["chunked"]:
                self.wfile.write(b"0\r\n\r\n")
        finally:
            close = getattr(result, "close", None)
            if close is not None:
                close()

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = do_OPTIONS = _wsgi

    def _start(self, state: dict, whole: bytes | None) -> None:
        code, _, reason = str(state["status"]).partition(" ")
        status = int(code)
        self.send_response(status, reason or None)
        names = set()
        for name, value in state["headers"]:
            names.add(name.lower())
            self.send_header(name, value)
        if "content-length" not in names and status not in _NO_BODY and self.command != "HEAD":
            if whole is not None:
                self.send_header("Content-Length", str(len(whole)))
            else:
                self.send_header("Transfer-Encoding", "chunked")
                state["chunked"] = True
        self.end_headers()
        state["started"] = True

    def _send(self, state: dict, data: bytes) -> None:
        if not data or self.command == "HEAD":
            return
        if state["chunked"]:
            self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
        else:
            self.wfile.write(data)

    def _environ(self, body: bytes) -> dict[str, Any]:
        path, _, query = self.path.partition("?")
        host, port = cast(tuple[Any, ...], self.server.server_address)[:2]   # a TCP server's
        environ = {
            "REQUEST_METHOD": self.command, "SCRIPT_NAME": "",
            "PATH_INFO": unquote_to_bytes(path).decode("latin-1"), "QUERY_STRING": query,
            "CONTENT_TYPE": self.headers.get("Content-Type", ""), "CONTENT_LENGTH": str(len(body)),
            "SERVER_NAME": str(host), "SERVER_PORT": str(port), "SERVER_PROTOCOL": self.request_version,
            "REMOTE_ADDR": self.client_address[0], "REMOTE_PORT": str(self.client_address[1]),
            "wsgi.version": (1, 0), "wsgi.url_scheme": "http", "wsgi.input": io.BytesIO(body),
            "wsgi.errors": sys.stderr, "wsgi.multithread": True, "wsgi.multiprocess": False,
            "wsgi.run_once": False, "wsgi.input_terminated": True,
        }
        for name, value in self.headers.items():
            key = "HTTP_" + name.upper().replace("-", "_")
            if key in ("HTTP_CONTENT_TYPE", "HTTP_CONTENT_LENGTH", "HTTP_TRANSFER_ENCODING"):
                continue
            environ[key] = f"{environ[key]},{value}" if key in environ else value
        return environ


class _WSGIServer(KeepAliveServer):
    def __init__(self, address, app, idle_timeout_s: float):
        self.app = app
        super().__init__(address, WSGIHandler, idle_timeout_s)


def make_server(host: str, port: int, app: Callable[..., Iterable[bytes]],
                idle_timeout_s: float = IDLE_TIMEOUT_S) -> KeepAliveServer:
    """A keep-alive server for the WSGI application ``app`` on ``host:port`` (0: any free
    port; see ``server.server_port``); run it with ``serve_forever()``."""
    return _WSGIServer((host, port), app, idle_timeout_s)


#: Errors of a request sent on a kept-alive connection that the server had closed meanwhile.
STALE = (http.client.RemoteDisconnected, BrokenPipeError, ConnectionResetError, ConnectionAbortedError)


class KeepAliveClient:
    """POSTs with one kept-alive ``http.client`` connection per thread and destination.

    A request that meets a connection the server closed while it was idle is sent once more
    on a new one (the server may or may not have seen it: callers send idempotent requests).
    Errors are ``OSError`` (refused, reset, timed out) or ``http.client.HTTPException``.
    """

    def __init__(self) -> None:
        self._local = threading.local()

    def post(self, url: str, headers: Mapping[str, str], body: bytes,
             timeout: float) -> tuple[int, dict[str, str], bytes]:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"{url!r} is not an absolute http(s) URL")
        key = (parts.scheme, parts.hostname, parts.port)
        path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        connections = self._local.__dict__.setdefault("connections", {})
        for attempt in (1, 2):
            conn = connections.get(key)
            if conn is not None and conn.sock is not None and has_input(conn.sock):
                conn.close()                # closed by the server while idle: reconnect
            reused = conn is not None and conn.sock is not None
            if conn is None:
                cls = http.client.HTTPSConnection if parts.scheme == "https" else http.client.HTTPConnection
                conn = connections[key] = cls(parts.hostname, parts.port, timeout=timeout)
            conn.timeout = timeout
            if conn.sock is not None:
                conn.sock.settimeout(timeout)
            try:
                conn.request("POST", path, body=body, headers=dict(headers))
                response = conn.getresponse()
                return response.status, dict(response.getheaders()), response.read()
            except STALE:
                conn.close()
                if not reused or attempt == 2:
                    raise
            except BaseException:
                conn.close()
                raise
        raise AssertionError("unreachable")


def has_input(sock) -> bool:
    """True when an idle socket has something to read: end of file (closed) or stray data."""
    try:
        readable, _, _ = select.select([sock], [], [], 0)
    except (OSError, ValueError):
        return True
    return bool(readable)


def exchange(conn: http.client.HTTPConnection, path: str, headers: Mapping[str, str],
             body: bytes, keep: bool = False) -> tuple[int, dict[str, str], bytes]:
    """POST and read the whole answer; with ``keep`` the connection stays open for the next
    request (http.client reconnects by itself when the answer asked to close it)."""
    try:
        conn.request("POST", path, body=body, headers=dict(headers))
        response = conn.getresponse()
        return response.status, dict(response.getheaders()), response.read()
    finally:
        if not keep:
            conn.close()
