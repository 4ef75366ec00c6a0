"""The reliability campaign: seeded generators of hostile requests, a raw HTTP client, the tally.

The fuzz tests (``test_fuzz_campaign.py``) and the fault injection (``test_fault_injection.py``)
draw their cases from here and count what came back per area: tried, handled (2xx, or 4xx with
a message), unclear (4xx without a message, or a status that is neither), crash (a process of
the runtime died), 5xx (or the connection dropped without an answer), hang (no answer within
:data:`CLIENT_TIMEOUT_S`), lost, duplicated, and over budget (a delivery tried more often than its
Trigger allows, or still failing after the broker settled).

Cases are a pure function of (seed, area, number): ``FUZZ_SEED`` (default :data:`DEFAULT_SEED`)
picks the seed, ``FUZZ_CASES`` the cases per area (default 1000), and a failing case is
reported with both, so it can be replayed with :func:`cases`. The variables are not ``EAS_``
settings on purpose: the test fixtures clear every ``EAS_*`` variable.

``python -m tests.reliability.campaign [--seed N] [--cases N]`` runs both test files with a
tally file (``FUZZ_TALLY``) and prints the table as markdown, with the seed and the commit.
"""
from __future__ import annotations

import json
import os
import random
import re
import socket
import string
import subprocess
import sys
import tempfile
import threading
import urllib.parse
import uuid
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

DEFAULT_SEED = 20261203
SEED = int(os.environ.get("FUZZ_SEED") or DEFAULT_SEED)
CASES = int(os.environ.get("FUZZ_CASES") or 1000)
TALLY_FILE = os.environ.get("FUZZ_TALLY", "")
#: Every request is bounded by this; no answer within it is a hang.
CLIENT_TIMEOUT_S = 30.0
COLUMNS = ("tried", "handled", "unclear", "crash", "5xx", "hang", "lost", "duplicated", "over budget")
AREAS = ("ingress", "control", "replica", "adapter", "site", "faults")

PREFIX = "org.plato.eas."
TYPES = [PREFIX + t for t in ("product.created", "job.submitted", "task.ready", "task.finished",
                              "task.failed", "reconcile")]


# ---------------------------------------------------------------------------- requests
@dataclass
class Request:
    """One HTTP request as bytes go on the wire; ``cut`` declares a longer body than is sent and
    half-closes the connection (a body cut short)."""
    method: str
    path: str
    headers: list[tuple[str, str | bytes]] = field(default_factory=list)
    body: bytes = b""
    cut: bool = False
    what: str = ""

    def describe(self, limit: int = 300) -> str:
        text = self.what or f"{self.method} {self.path}"
        return text if len(text) <= limit else text[:limit] + f"... ({len(text)} chars)"


@dataclass
class Answer:
    #: ``None``: no answer in time (hang); 0: the connection dropped without a status line.
    status: int | None
    body: bytes = b""
    error: str = ""

    def describe(self, limit: int = 200) -> str:
        if self.status is None:
            return f"no answer within {CLIENT_TIMEOUT_S:g} s"
        if self.status == 0:
            return f"connection dropped without an answer ({self.error})"
        text = self.body.decode("utf-8", "replace").strip().replace("\n", " ")
        return f"{self.status} {text[:limit]!r}"


def exchange(port: int, req: Request, timeout: float = CLIENT_TIMEOUT_S, host: str = "127.0.0.1") -> Answer:
    """Send ``req`` on a fresh connection and read the whole answer (raw socket: header values
    and paths go out as the bytes the case holds, which ``requests`` would refuse to send)."""
    head = [f"{req.method} ".encode() + _bytes(req.path) + b" HTTP/1.1", f"Host: {host}:{port}".encode(),
            b"Connection: close"]
    head += [name.encode("latin-1", "replace") + b": " + _bytes(value) for name, value in req.headers]
    declared = len(req.body) + (17 if req.cut else 0)
    if req.method in ("POST", "PUT", "PATCH") or req.body:
        head.append(f"Content-Length: {declared}".encode())
    data = b"\r\n".join(head) + b"\r\n\r\n" + req.body
    try:
        with socket.create_connection((host, port), timeout=timeout) as sock:
            sock.settimeout(timeout)
            try:
                sock.sendall(data)
                if req.cut:
                    sock.shutdown(socket.SHUT_WR)
            except OSError:
                # The server may answer (413, 400) and close before reading the whole body: a
                # broken pipe, a reset or ENOTCONN on the half-close. Its answer is read below.
                pass
            return _read_answer(sock, head_only=req.method == "HEAD")
    except socket.timeout:
        return Answer(None)
    except OSError as exc:
        return Answer(0, error=f"{type(exc).__name__}: {exc}")


def _bytes(value: str | bytes) -> bytes:
    return value if isinstance(value, bytes) else value.encode("utf-8", "surrogateescape")


def _read_answer(sock: socket.socket, head_only: bool) -> Answer:
    buf = b""
    while b"\r\n\r\n" not in buf:
        chunk = _recv(sock)
        if not chunk:
            return Answer(0, error="closed before a status line" if not buf else f"closed in the head: {buf[:80]!r}")
        buf += chunk
    head, _, rest = buf.partition(b"\r\n\r\n")
    lines = head.split(b"\r\n")
    match = re.match(rb"HTTP/1\.[01] (\d{3})", lines[0])
    if not match:
        return Answer(0, error=f"not an HTTP status line: {lines[0][:80]!r}")
    status = int(match.group(1))
    fields = {}
    for line in lines[1:]:
        name, _, value = line.partition(b":")
        fields[name.strip().lower()] = value.strip()
    if head_only or status in (204, 304):
        return Answer(status, b"")
    if b"chunked" in fields.get(b"transfer-encoding", b"").lower():
        while not rest.endswith(b"0\r\n\r\n"):
            chunk = _recv(sock)
            if not chunk:
                break
            rest += chunk
        return Answer(status, _dechunk(rest))
    length = fields.get(b"content-length")
    if length is not None and length.isdigit():
        while len(rest) < int(length):
            chunk = _recv(sock)
            if not chunk:
                break
            rest += chunk
        return Answer(status, rest[:int(length)])
    while chunk := _recv(sock):
        rest += chunk
    return Answer(status, rest)


def _recv(sock: socket.socket) -> bytes:
    try:
        return sock.recv(65536)
    except ConnectionResetError:
        return b""


def _dechunk(data: bytes) -> bytes:
    out, pos = b"", 0
    while pos < len(data):
        end = data.find(b"\r\n", pos)
        if end < 0:
            break
        size = int(data[pos:end].split(b";")[0] or b"0", 16)
        if size == 0:
            break
        out += data[end + 2:end + 2 + size]
        pos = end + 4 + size
    return out


# ---------------------------------------------------------------------------- the tally
class Tally:
    """Counts per area (thread-safe), and the cases that were not handled."""

    def __init__(self):
        self.rows: dict[str, Counter] = {}
        self.failures: list[dict] = []
        self._lock = threading.Lock()

    def count(self, area: str, column: str, n: int = 1, what: str = "", answer: str = "") -> None:
        assert column in COLUMNS, column
        with self._lock:
            self.rows.setdefault(area, Counter())[column] += n
            if column not in ("tried", "handled") and n:
                self.failures.append({"area": area, "column": column, "input": what, "answer": answer,
                                      "seed": SEED})

    def judge(self, area: str, req: Request, answer: Answer) -> str:
        """Count one answer; returns its column."""
        self.count(area, "tried")
        column = verdict(answer, head=req.method == "HEAD")
        self.count(area, column, what=req.describe(), answer=answer.describe())
        return column

    def failed(self, area: str | None = None) -> list[dict]:
        return [f for f in self.failures if area is None or f["area"] == area]

    def save(self, path: str | Path | None = None) -> None:
        """Add this tally to the JSON file at ``path`` (default ``FUZZ_TALLY``), if any."""
        path = path or TALLY_FILE
        if not path:
            return
        path = Path(path)
        old = json.loads(path.read_text()) if path.exists() and path.stat().st_size else {"rows": {}, "failures": []}
        for area, counts in self.rows.items():
            row = Counter(old["rows"].get(area, {}))
            row.update(counts)
            old["rows"][area] = dict(row)
        old["failures"] += self.failures
        path.write_text(json.dumps(old, indent=1, default=str))

    @classmethod
    def load(cls, path: str | Path) -> "Tally":
        tally = cls()
        data = json.loads(Path(path).read_text())
        tally.rows = {area: Counter(row) for area, row in data["rows"].items()}
        tally.failures = data["failures"]
        return tally

    def markdown(self) -> str:
        lines = ["| area | " + " | ".join(COLUMNS) + " |", "|---|" + "---:|" * len(COLUMNS)]
        areas = [a for a in AREAS if a in self.rows] + sorted(set(self.rows) - set(AREAS))
        for area in areas:
            lines.append(f"| {area} | " + " | ".join(str(self.rows[area].get(c, 0)) for c in COLUMNS) + " |")
        return "\n".join(lines)


def verdict(answer: Answer, head: bool = False) -> str:
    """The column of one answer; a HEAD answer has no body by definition, so its 4xx counts."""
    if answer.status is None:
        return "hang"
    if answer.status == 0 or answer.status >= 500:
        return "5xx"
    if 200 <= answer.status < 300:
        return "handled"
    if 400 <= answer.status < 500 and (head or has_message(answer.body)):
        return "handled"
    return "unclear"


def has_message(body: bytes) -> bool:
    """A refusal that says something: a non-empty body with at least one word in it."""
    return re.search(rb"[A-Za-z]{3}", body or b"") is not None


# ---------------------------------------------------------------------------- hostile values
WEIRD_IDS = ["1" * 30, str(10 ** 30), "-1", "-" + "9" * 25, "0", "abc", "", " ", "1e3", "0x10", "\uff11\uff12",
             "9223372036854775808", "-9223372036854775809", "3.5", "NaN", "inf", "\u661f", "1 OR 1=1", "%00",
             "../1", "9" * 5000, "1\n2", "+7", "٣"]
WEIRD_KEYS = ["inbox/\u661f.csv", "../../etc/passwd", "inbox/../../x.csv", "inbox/\x00x.csv", "inbox/" + "x" * 5000,
              "inbox/%ZZ.csv", "inbox/%E6%98.csv", "/etc/passwd", "", " ", "inbox//x.csv", "inbox/x\n.csv",
              "inbox/\u202egpj.csv", "inbox/\U0001F680.fits", "a\\b.csv", "fuzz/./x.csv", "fuzz/x.csv",
              "fuzz/star 1+2.csv", "fuzz/" + "\u00e9" * 300 + ".fits", "..", ".", "fuzz/..", "fuzz/x.csv/",
              "processed/forged.fits"]
WEIRD_SIZES = ["big", 1e30, 10 ** 30, -1, None, [], {}, True, "1", 1.5, -1e308, "NaN"]
WEIRD_TEXT = ["", " ", "\u661f\u661f", "\x00", "%ZZ", "%E6%98", "%00", "<script>alert(1)</script>", "' OR 1=1--",
              "x" * 10_000, "\U0001F680" * 50, "\\u0000", "\r\nX-Injected: 1", "${jndi:ldap://x}", "{{7*7}}",
              "\u202e\u200b"]
TASK_TYPES = ["null", "verify", "ingest_external_lcs", "verfy", "", "NULL", "null ", "../null", "\u661f", "x" * 300,
              "reconcile", "transit_search_bls_reference"]
# No large numbers: a job that is valid but asks a null task to sleep for days is not hostile.
EXPRESSIONS = ["1+", "__import__('os').system('id')", "().__class__.__bases__", "'x'*1000", "[0]*1000",
               "lambda: 1", "open('/etc/passwd').read()", "1/0", "constants", "x" * 2000, "\u661f"]


class Gen:
    """Hostile values from one seeded ``random.Random``."""

    def __init__(self, seed: int, area: str, number: int):
        self.rng = random.Random(f"{seed}/{area}/{number}")

    def pick(self, values):
        return self.rng.choice(values)

    def maybe(self, p: float = 0.5) -> bool:
        return self.rng.random() < p

    def unicode(self, n: int | None = None) -> str:
        n = self.rng.randint(0, 40) if n is None else n
        pools = [string.printable, "\u661f\u00e9\u00df\u0416\u05d0\u0627\u4e2d\U0001F680\u202e\u200b\ufeff",
                 "".join(map(chr, range(0, 32)))]
        return "".join(self.rng.choice(self.rng.choice(pools)) for _ in range(n))

    def text(self) -> str:
        return self.pick(WEIRD_TEXT) if self.maybe(0.6) else self.unicode()

    def ident(self) -> str:
        return self.pick(WEIRD_IDS) if self.maybe(0.8) else str(self.rng.randint(-5, 60))

    def key(self) -> str:
        return self.pick(WEIRD_KEYS) if self.maybe(0.75) else "fuzz/" + self.unicode(self.rng.randint(1, 30))

    def scalar(self):
        return self.pick([self.text(), self.ident(), self.pick(WEIRD_SIZES), self.rng.randint(-2 ** 70, 2 ** 70),
                          self.rng.random() * 10 ** self.rng.randint(-300, 300), None, True, False])

    def value(self, depth: int = 0):
        roll = self.rng.random()
        if depth > 3 or roll < 0.6:
            return self.scalar()
        if roll < 0.8:
            return [self.value(depth + 1) for _ in range(self.rng.randint(0, 4))]
        return {self.text()[:40]: self.value(depth + 1) for _ in range(self.rng.randint(0, 4))}

    def nested(self) -> bytes:
        depth = self.pick([100, 1000, 10_000, 100_000])
        if self.maybe():
            return b"[" * depth + b"]" * depth
        return b'{"a":' * depth + b"1" + b"}" * depth

    def junk(self) -> bytes:
        return self.rng.randbytes(self.rng.randint(0, 4096))

    def huge(self) -> bytes:
        size = self.pick([200_000] * 3 + [2_000_000] * 2 + [12_000_000])
        return json.dumps({"data": "x" * size}).encode()

    def body_of(self, data) -> bytes:
        """``data`` as JSON, or (sometimes) something else that claims to be it."""
        roll = self.rng.random()
        if roll < 0.70:
            return json.dumps(data, default=str).encode("utf-8", "surrogatepass")
        if roll < 0.80:
            return self.nested()
        if roll < 0.86:
            return json.dumps(data, default=str).encode()[: self.rng.randint(0, 40)]  # truncated JSON
        if roll < 0.92:
            return self.junk()
        if roll < 0.95:
            return self.huge()
        return b""

    def content_type(self) -> str:
        return self.pick(["application/json", "application/json", "text/plain", "application/octet-stream", "",
                          "application/json; charset=utf-16", "multipart/form-data; boundary=x",
                          "application/cloudevents+json", "application/cloudevents-batch+json", "\u661f/\u661f",
                          "application/json; charset=\x00", "x" * 3000])

    def header_value(self, value: str) -> bytes | str:
        """A header value as it might arrive: percent-encoded, raw UTF-8, or bad escapes."""
        roll = self.rng.random()
        if roll < 0.5:
            return urllib.parse.quote(value, safe="/:@!$&'()*+,;=-._~")
        if roll < 0.7:
            return value.encode("utf-8", "surrogatepass").replace(b"\r", b"").replace(b"\n", b"")
        value = value.replace("\r", "").replace("\n", "")  # raw CR/LF would end the header itself
        if roll < 0.85:
            return value + self.pick(["%", "%Z", "%ZZ", "%E6%98", "%C0%AF", "%FF"])
        return value

    # ------------------------------------------------------------------ event payloads
    def data_for(self, etype: str):
        if self.maybe(0.15):
            return self.value()
        if etype.endswith("product.created"):
            data = {"key": self.key(), "size": self.pick(WEIRD_SIZES + [self.rng.randint(0, 10 ** 6)]),
                    "etag": self.pick([self.text(), "0123456789abcdef", None, 5]),
                    "bucket": self.pick(["eas", self.text(), None]),
                    "metadata": self.pick([{}, {"eas-attempt-id": self.ident()}, self.value(), None])}
        elif etype.endswith("job.submitted"):
            task = {"task": self.pick(TASK_TYPES + [self.text()]), "name": self.text()[:50],
                    "inputs": {self.text()[:20]: self.key()}, "outputs": {"receipt": self.key()},
                    "duration": self.pick(EXPRESSIONS)}
            data = {"job_name": self.text(), "working_directory": self.key(),
                    "task_list": self.pick([[task], task, [task] * self.rng.randint(2, 20), [], self.scalar()]),
                    "constants": self.value()}
        elif etype.endswith(("task.finished", "task.failed")):
            data = {"taskid": self.ident(), "attemptid": self.ident(), "status": self.text(),
                    "error": self.text(), "outputs": {self.text()[:20]: self.key()}, "results": self.value()}
        else:
            data = {self.text()[:30]: self.value()}
        for name in list(data):
            if self.maybe(0.15):
                del data[name]
        return data

    def event(self, types=TYPES, extensions: dict | None = None) -> tuple[list, bytes, str]:
        """Headers, body and a description of one binary or structured CloudEvent, made hostile."""
        etype = self.pick(types) if self.maybe(0.9) else self.text()
        attrs = {"specversion": self.pick(["1.0"] * 8 + ["0.3", "2.0", "", "1.0 "]),
                 "id": self.pick([uuid.UUID(int=self.rng.getrandbits(128)).hex] * 4 + [self.text(), "x" * 5000]),
                 "source": self.pick(["/fuzz"] * 4 + [self.text(), "://", "\u661f"]), "type": etype}
        if self.maybe(0.3):
            attrs["subject"] = self.key()
        if self.maybe(0.2):
            attrs["time"] = self.pick(["yesterday", "2026-13-45T25:61:61Z", "", "9999-12-31T23:59:59Z"])
        for name, value in (extensions or {}).items():
            attrs[name] = value
        for name in ("tasktype", "taskid", "attemptid", "jobid"):
            if name not in attrs and self.maybe(0.3):
                attrs[name] = self.pick(TASK_TYPES) if name == "tasktype" else self.ident()
        if self.maybe(0.15):
            attrs[self.pick(["Bad_Name", "x" * 30, "\u661f", "data", "datacontenttype", "dataschema"])] = self.text()
        if self.maybe(0.1):
            del attrs[self.pick(["specversion", "id", "source", "type"])]
        data = self.data_for(etype)
        if self.maybe(0.35):
            doc = {name: (self.scalar() if self.maybe(0.15) else value) for name, value in attrs.items()}
            if self.maybe(0.2):
                doc["datacontenttype"] = self.pick([5, None, [], "text/plain", "application/json"])
            if self.maybe(0.1):
                doc["data_base64"] = self.pick(["!!!", "aGVsbG8=", 5])
            else:
                doc["data"] = data
            ctype = "application/cloudevents+json" if self.maybe(0.85) else self.content_type()
            body = self.body_of(doc) if self.maybe(0.4) else json.dumps(doc, default=str).encode("utf-8",
                                                                                              "surrogatepass")
            headers = [("Content-Type", ctype)]
            what = f"structured {json.dumps(doc, default=str)[:400]}"
        else:
            headers = [(f"ce-{name}", self.header_value(str(value))) for name, value in attrs.items()]
            headers.append(("Content-Type", self.content_type()))
            body = self.body_of(data)
            what = f"binary {dict(headers)!r} body {body[:200]!r}"
        if len(body) > 2000:
            what += f" (body {len(body)} bytes)"
        return headers, body, what


# ---------------------------------------------------------------------------- the areas
def signed(gen: Gen, req: Request, token: str) -> Request:
    """Most cases carry the installation's internal token, so that they reach the handler
    behind the token check; the rest carry none, a wrong one or a malformed header."""
    if not token:
        return req
    value = gen.pick([f"Bearer {token}"] * 19 + ["", "Bearer ", "Bearer wrong", f"Basic {token}", "Bearer \u661f",
                                                 f"Bearer {token}x"])
    if value:
        req.headers.append(("Authorization", gen.header_value(value) if gen.maybe(0.02) else value))
    return req


def ingress_case(gen: Gen, token: str = "") -> Request:
    return signed(gen, _ingress_case(gen), token)


def control_case(gen: Gen, token: str = "") -> Request:
    return signed(gen, _control_case(gen), token)


def replica_case(gen: Gen, task_type: str = "null", token: str = "") -> Request:
    return signed(gen, _replica_case(gen, task_type), token)


def _ingress_case(gen: Gen) -> Request:
    if gen.maybe(0.06):
        method = gen.pick(["GET", "PUT", "DELETE", "PATCH", "HEAD", "OPTIONS", "POST"])
        path = gen.pick(["/", "/eas", "/x/y/z", "/eas/nope", "/%ZZ", "/eas/default?x=\u661f", "/eas/default/",
                         "/" + "a" * 5000, "/healthz"])
        return Request(method, path, [("Content-Type", gen.content_type())], gen.junk(),
                       what=f"{method} {path[:100]}")
    headers, body, what = gen.event()
    return Request("POST", "/eas/default", headers, body, cut=gen.maybe(0.05), what=what)


def _control_case(gen: Gen) -> Request:
    if gen.maybe(0.05):
        headers, body, what = gen.event()
        headers.append(("ce-knativeerrordata", gen.pick(["!!!", "aGVsbG8=", gen.text()])))
        return Request("POST", "/dead-letter", headers, body, what="dead-letter " + what)
    if gen.maybe(0.03):
        return Request(gen.pick(["GET", "PUT", "POST"]), gen.pick(["/x", "/%ZZ", "/"]), [], gen.junk(),
                       what="junk request")
    headers, body, what = gen.event(types=[t for t in TYPES if not t.endswith("task.ready")])
    return Request("POST", "/", headers, body, cut=gen.maybe(0.03), what=what)


def _replica_case(gen: Gen, task_type: str) -> Request:
    if gen.maybe(0.03):
        return Request(gen.pick(["GET", "PUT", "POST"]), gen.pick(["/x", "/%ZZ", "/"]), [], gen.junk(),
                       what="junk request")
    ext = {"tasktype": gen.pick([task_type] * 5 + TASK_TYPES), "taskid": gen.ident(), "attemptid": gen.ident()}
    headers, body, what = gen.event(types=[PREFIX + "task.ready"] * 9 + TYPES, extensions=ext)
    return Request("POST", "/", headers, body, cut=gen.maybe(0.03), what=what)


def s3_record(gen: Gen) -> dict:
    raw_key = gen.key()
    key = gen.pick([urllib.parse.quote_plus(raw_key, safe="/"), raw_key, raw_key + "%", "%ZZ" + raw_key,
                    urllib.parse.quote(raw_key, safe="")])
    obj = {"key": key, "size": gen.pick(WEIRD_SIZES + [10, 0]), "eTag": gen.pick(["0123456789abcdef", gen.text(), None, 5]),
           "sequencer": gen.pick(["17F0A", gen.text(), None, 7]), "versionId": gen.pick(["v1", None, gen.text()]),
           "userMetadata": gen.pick([{"content-type": "text/csv"}, {"X-Amz-Meta-Eas-Attempt-Id": gen.ident()},
                                     {"eas-attempt-id": gen.ident()}, gen.value(), None])}
    record = {"eventVersion": "2.0", "eventSource": "minio:s3",
              "eventName": gen.pick(["s3:ObjectCreated:Put"] * 6 + ["s3:ObjectRemoved:Delete", "", None, 5,
                                                                    "s3:ObjectCreated:\u661f"]),
              "eventTime": gen.pick(["2026-12-03T12:00:00.000Z", "", gen.text()]),
              "s3": {"bucket": {"name": gen.pick(["eas", "other", gen.text(), None])}, "object": obj}}
    for name in ("eTag", "size", "key", "userMetadata"):
        if gen.maybe(0.07):
            obj.pop(name, None)
    if gen.maybe(0.08):
        record["s3"] = gen.value()
    return record if gen.maybe(0.9) else gen.value()


def adapter_case(gen: Gen, token: str) -> Request:
    auth = gen.pick([f"Bearer {token}"] * 17 + ["", "Bearer ", "Bearer wrong", f"Basic {token}", "Bearer \u661f",
                                               f"bearer {token}x"])
    headers = [("Content-Type", gen.pick(["application/json"] * 5 + [gen.content_type()]))]
    if auth:
        headers.append(("Authorization", gen.header_value(auth) if gen.maybe(0.1) else auth))
    doc = {"EventName": "s3:ObjectCreated:Put", "Key": "eas/" + gen.key(),
           "Records": gen.pick([[s3_record(gen) for _ in range(gen.rng.randint(1, 5))]] * 6 + [[], gen.value()])}
    body = gen.body_of(doc)
    return Request("POST", gen.pick(["/minio"] * 8 + ["/"]), headers, body, cut=gen.maybe(0.03),
                   what=f"{auth!r} {body[:500]!r}" + (f" ({len(body)} bytes)" if len(body) > 500 else ""))


SITE_ROUTES = ["/", "/api/summary", "/jobs", "/api/jobs", "/jobs/{id}", "/api/jobs/{id}", "/tasks", "/api/tasks",
               "/tasks/running", "/api/tasks/running", "/tasks/{id}", "/api/tasks/{id}", "/progress", "/api/progress",
               "/timings", "/api/timings", "/timings.csv", "/passfail", "/api/passfail", "/passfail.csv", "/errors",
               "/api/errors", "/dead-letters", "/api/dead-letters", "/logs", "/api/logs", "/activity", "/api/activity",
               "/functions", "/api/functions", "/products", "/api/products", "/products/file/{key}",
               "/api/products/file/{key}", "/products/download/{id}", "/plots/{id}/{kind}.png",
               "/api/plots/{id}/{kind}", "/healthz"]
SITE_PARAMS = ["page", "page_size", "job", "depth", "subtree", "task_type", "since", "until", "kind", "component",
               "severity", "order", "attempt", "task", "lanes", "limit", "prefix", "log_page"]
SITE_VALUES = ["9223372036854775808", "10**30", str(10 ** 30), "-1", "99999999w", "1e309", "nan", "inf", "-0", "",
               "0", "1", "2h", "-5d", "1w", "P1D", "2026-13-45T25:61:61", "9999-12-31T23:59:59", "0001-01-01",
               "lc", "folded", "periodogram", "science", "timeout", "newest", "ERROR", "broker", "1000", "1001",
               "200", "10000", "6", "7"]


def site_case(gen: Gen) -> Request:
    route = gen.pick(SITE_ROUTES)
    # Raw values keep their non-ASCII bytes and bad escapes, but never a space or CR/LF, which
    # would end the request line itself (a client error, not a hostile value).
    raw = lambda value: "".join(ch for ch in value.replace(" ", "%20") if ch not in "\r\n\t\x0b\x0c")
    segment = lambda value: gen.pick([urllib.parse.quote(value, safe=""), urllib.parse.quote(value, safe="/"),
                                      raw(value), raw(value) + "%ZZ"])
    path = (route.replace("{id}", segment(gen.ident())).replace("{key}", segment(gen.key()))
            .replace("{kind}", segment(gen.pick(["lc", "folded", "periodogram", gen.text()]))))
    query = []
    for _ in range(gen.rng.randint(0, 3)):
        name = gen.pick(SITE_PARAMS) if gen.maybe(0.9) else gen.text()[:20]
        value = gen.pick(SITE_VALUES) if gen.maybe(0.5) else gen.pick([gen.ident(), gen.text(), gen.key()])
        query.append(f"{urllib.parse.quote(name)}={segment(value)}")
    if query:
        path += "?" + "&".join(query)
    return Request("GET", path, [("Accept", gen.pick(["*/*", "application/json", ""]))], what=f"GET {path[:600]}")


def cases(area: str, maker, n: int = CASES, seed: int = SEED, **kwargs) -> list[Request]:
    """The ``n`` cases of ``area`` for ``seed``; case i is the same in every run."""
    return [maker(Gen(seed, area, i), **kwargs) for i in range(n)]


# ---------------------------------------------------------------------------- the command
def main(argv: list[str] | None = None) -> int:
    import argparse
    parser = argparse.ArgumentParser(prog="python -m tests.reliability.campaign",
                                     description="Run the fuzz and fault-injection campaign; print its table.")
    parser.add_argument("--seed", type=int, default=SEED)
    parser.add_argument("--cases", type=int, default=CASES, help="cases per fuzzed area")
    parser.add_argument("pytest_args", nargs="*", help="extra pytest arguments")
    args = parser.parse_args(argv)
    root = Path(__file__).resolve().parents[2]
    with tempfile.TemporaryDirectory() as tmp:
        tally_path = Path(tmp) / "tally.json"
        env = dict(os.environ, FUZZ_SEED=str(args.seed), FUZZ_CASES=str(args.cases), FUZZ_TALLY=str(tally_path))
        done = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-rxXf",
                               "tests/reliability/test_fuzz_campaign.py", "tests/reliability/test_fault_injection.py",
                               *args.pytest_args], cwd=root, env=env)
        commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=root, capture_output=True,
                                text=True).stdout.strip()
        if not tally_path.exists():
            print("no tally was written", file=sys.stderr)
            return done.returncode or 1
        tally = Tally.load(tally_path)
    print(f"\nseed {args.seed}, {args.cases} cases per fuzzed area, commit {commit or '?'}\n")
    print(tally.markdown())
    if tally.failures:
        print(f"\n{len(tally.failures)} case(s) not handled:")
        for failure in tally.failures:
            print(f"- {failure['area']} [{failure['column']}] {failure['input'][:300]} -> {failure['answer'][:200]}")
    return done.returncode


if __name__ == "__main__":
    sys.exit(main())
