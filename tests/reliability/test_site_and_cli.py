"""Issue 11, the index site's part of defect 7 and defect 12.

Defect 7: the site answered 500 where a 4xx belongs (``?page=9223372036854775808`` overflowed
SQLite, ``?job=10**30``-sized ids too, ``?since=99999999w`` overflowed a timedelta). A seeded
fuzz of every GET route of the real app (through ``app.test_client()`` over a small seeded
SQLite database) asserts no 5xx and a message on every 4xx; the issue's own values are checked
one by one; a job body nested too deeply is a 400.

Defect 12: security headers on every answer (HTML, JSON, PNG, CSV, static files, errors) and a
CSP the pages keep (no inline script, event handler or style attribute); ``eas upload --prefix
../..`` refused with one line, no traceback; ``eas jobs | head`` and the other printing commands
end quietly on a closed pipe (real subprocesses, real pipes).
"""
from __future__ import annotations

import datetime as dt
import os
import random
import re
import subprocess
import sys
from pathlib import Path
from urllib.parse import quote

import pytest
from sqlalchemy import insert

from eas_runtime.db.models import CatalogueEntry, DeadLetter, Job
from eas_runtime.db.products import ensure_product
from eas_runtime.diagnostics._common import MAX_ID
from eas_runtime.lightcurve import LightCurve, write_lightcurve
from eas_runtime.site import create_app
from eas_runtime.site._headers import HEADERS
from tests.diagnostics.builders import Rows

REPO = Path(__file__).resolve().parents[2]
#: Hostile values for query parameters and path segments (percent-encoded when sent, except
#: the raw escapes, sent as they are: invalid UTF-8, an overlong '/', a NUL).
HOSTILE = ["9223372036854775808", "9223372036854775807", "-9223372036854775809", "1" * 30, "10**30",
           "1" * 5000, "-1", "0", "99999999w", "100000000000d", "1e308", "1e30", "nan", "NaN", "inf",
           "-inf", "1.5", "0x10", "1_000", "١٢", "１２", "é", "星", "x" * 5000, " ", "\t", "\x00",
           "9999-12-31T23:59:59-14:00", "0001-01-01T00:00:00+14:00", "2024-13-01", "1h", "-5m",
           "../..", "..%2F..%2Fetc%2Fpasswd", "<script>alert(1)</script>", "' OR 1=1 --", "%", "null"]
RAW = ["%FF%FE", "%C0%AF", "%00", "%ED%A0%80", "%E6%98%9F"]
PARAMS = ["page", "page_size", "job", "task", "attempt", "subtree", "depth", "since", "until", "lanes",
          "limit", "kind", "task_type", "severity", "order", "component", "prefix", "log_page",
          "verdict", "star", "min_snr", "period_min", "period_max", "sort", "search",
          "x", "by", "map_x", "map_y", "length", "time"]
#: Every GET route the site has when this test was written: the fuzz takes routes from the
#: app's URL map, and this list makes sure none went missing from it.
KNOWN_ROUTES = {"/", "/activity", "/dead-letters", "/errors", "/functions", "/jobs", "/jobs/<int:job_id>", "/logs",
                "/passfail", "/passfail.csv", "/products", "/products/file/<path:key>",
                "/products/download/<int:version_id>", "/plots/<int:version_id>/<kind>.png", "/progress",
                "/tasks", "/tasks/running", "/tasks/<int:task_id>", "/timings", "/timings.csv", "/healthz",
                "/static/<path:filename>"}


# --------------------------------------------------------------------------- fixtures
@pytest.fixture
def seeded(resources, tmp_path):
    """A job with a done and a failed task (logs, timings), a dead letter and a light curve
    that can be plotted: the ids every route can be asked about."""
    rows = Rows(resources.db)
    job = rows.job("fuzzed")
    done = rows.task(job, "null", state="done", params={"duration": 1})
    failed = rows.task(job, "null", state="failed")
    attempt = rows.attempt(done, wall_s=1.5, cpu_s=1.0, logs=[("INFO", "ok"), ("ERROR", "<b>bad</b>")])
    rows.attempt(failed, error_kind="science", error_text="Traceback: boom")
    with resources.db.session() as s:
        s.add(DeadLetter(component="broker", reason="retries exhausted", event_id="e1", event_type="x",
                         payload="{}"))
    lc = write_lightcurve(LightCurve([0.0, 0.1, 0.2, 0.3], [1.0, 0.99, 1.0, 1.01]), tmp_path / "lc.fits")
    info = resources.store.put_file("inbox/lc.fits", lc)
    from eas_runtime.db.models import ProductVersion
    with resources.db.session() as s:
        product = ensure_product(s, "inbox/lc.fits", semantic_type="upload")
        version = ProductVersion(product_id=product.id, etag=info.etag, size=info.size, passed_qc=True)
        s.add(version)
        s.flush()
        version_id = version.id
        product.star_id = "TIC <b>1</b>"
        entry = CatalogueEntry(task_id=done, attempt_id=attempt, job_id=job, number=1,
                               star_id="TIC <b>1</b>", kind="periodic", period=3.0, epoch=0.1,
                               duration=0.1, depth=500.0, snr=9.0, verdict="planet candidate",
                               reasons=[], details={"flags": [], "notes": []})
        s.add(entry)
        s.flush()
        candidate_id = entry.id
    app = create_app(resources)
    return {"app": app, "client": app.test_client(), "job": job, "task": done, "attempt": attempt,
            "version": version_id, "key": "inbox/lc.fits", "candidate": candidate_id}


def message_of(response) -> str:
    """The error message an answer carries: JSON ``error``, the error page's paragraph, or
    the plain text of a plot error."""
    if response.is_json:
        return (response.get_json(silent=True) or {}).get("error") or ""
    body = response.get_data(as_text=True)
    found = re.search(r'id="error-message">(.*?)</p>', body, re.S)
    if found:
        return found.group(1).strip()
    return body.strip() if response.mimetype == "text/plain" else ""


def checked(client, url: str):
    response = client.get(url)
    assert response.status_code < 500, f"{url[:200]} answered {response.status_code}"
    if response.status_code >= 400:
        assert message_of(response), f"{url[:200]} answered {response.status_code} without a message"
    return response


# --------------------------------------------------------------------------- defect 7
def _routes(app) -> list[str]:
    rules = {r.rule for r in app.url_map.iter_rules() if "GET" in r.methods}
    assert KNOWN_ROUTES <= rules, f"routes missing from the URL map: {KNOWN_ROUTES - rules}"
    return sorted(rules)


def _segment(rng: random.Random, converter: str, valid: str) -> str:
    """A path segment: sometimes the valid one, else a hostile value (or a raw escape)."""
    roll = rng.random()
    if roll < 0.25:
        return valid
    if roll < 0.4:
        return rng.choice(RAW)
    value = rng.choice(HOSTILE)
    if converter == "path" and rng.random() < 0.5:
        value = f"{valid}/{value}" if rng.random() < 0.5 else f"../{value}"
    return quote(value, safe="/" if converter == "path" else "")


def test_defect_7_site_fuzz_every_get_route_no_5xx_and_a_message_on_every_4xx(seeded):
    """1,400 seeded requests: every GET route (API twins too), path ids and keys replaced by
    hostile values, zero to three hostile query parameters, some repeated."""
    rng = random.Random(11)
    client, app = seeded["client"], seeded["app"]
    valid = {"job_id": str(seeded["job"]), "task_id": str(seeded["task"]), "version_id": str(seeded["version"]),
             "key": seeded["key"], "kind": rng.choice(["lc", "folded", "periodogram"]), "filename": "eas.js",
             "candidate_id": str(seeded["candidate"]), "star_id": "TIC <b>1</b>",
             "fmt": rng.choice(["csv", "votable", "json", "png", "pdf"]), "plot": "fraction"}
    routes = _routes(app)
    statuses: dict[int, int] = {}
    for n in range(1400):
        rule = routes[n % len(routes)]
        path = re.sub(r"<(?:(\w+):)?(\w+)>",
                      lambda m: _segment(rng, m.group(1) or "string", valid[m.group(2)]), rule)
        query = []
        for _ in range(rng.randint(0, 3)):
            name = rng.choice(PARAMS)
            value = rng.choice(RAW) if rng.random() < 0.15 else quote(rng.choice(HOSTILE), safe="")
            query += [f"{name}={value}"] * rng.choice([1, 1, 2])
        if "job" not in " ".join(query) and rng.random() < 0.3:     # reach the per-job tables
            query += [f"job={seeded['job']}", "task_type=null"]
        response = checked(client, path + ("?" + "&".join(query) if query else ""))
        statuses[response.status_code] = statuses.get(response.status_code, 0) + 1
    # The fuzz reached real answers as well as refusals (else it tested nothing but routing).
    assert statuses.get(200, 0) > 100 and statuses.get(400, 0) > 100 and statuses.get(404, 0) > 50, statuses


@pytest.mark.parametrize("url, status, names", [
    ("/api/jobs?page=9223372036854775808", 400, ["page", "from 0 to 1000000000"]),
    ("/jobs?page=9223372036854775808", 400, ["page", "from 0 to 1000000000"]),
    ("/api/errors?job=" + "1" * 31, 400, ["job", f"from 1 to {MAX_ID}"]),
    ("/api/tasks?job=10**30", 400, ["job", f"from 1 to {MAX_ID}", "10**30"]),
    ("/api/logs?task=9223372036854775808", 400, ["task", f"from 1 to {MAX_ID}"]),
    ("/api/tasks?subtree=-1", 400, ["subtree", f"from 1 to {MAX_ID}"]),
    ("/api/errors?since=99999999w", 400, ["since", "36600d"]),
    ("/errors?since=99999999w", 400, ["since", "36600d"]),
    ("/api/dead-letters?since=9999-12-31T23:59:59-14:00", 400, ["since", "out of range"]),
    ("/api/activity?since=1h&until=99999999w", 400, ["until", "36600d"]),
    ("/api/activity?lanes=9223372036854775808", 400, ["lanes", "from 1 to 200"]),
    ("/timings.csv?job=9223372036854775808&task_type=null", 400, ["job", f"from 1 to {MAX_ID}"]),
    ("/api/products?page=9223372036854775808", 400, ["page"]),
    ("/api/products/file/inbox/lc.fits?page_size=0", 400, ["page_size", "from 1 to 1000"]),
    ("/api/errors?task_type=%00", 400, ["task_type", "control characters"]),
    ("/api/jobs/9223372036854775808", 404, ["no page", f"from 1 to {MAX_ID}"]),
    ("/jobs/" + "1" * 30, 404, ["no page"]),
    ("/tasks/" + "9" * 5000, 404, ["no page"]),
    ("/products/download/9223372036854775808", 404, ["no page"]),
    ("/api/tasks/9223372036854775807", 404, ["no task 9223372036854775807"]),
    ("/api/products/file/..%2F..%2Fetc%2Fpasswd", 404, ["no product"]),
    ("/api/products/file/" + "k" * 1100, 400, ["key", "1024 bytes"]),
])
def test_defect_7_issue_values_are_4xx_naming_the_parameter_and_range(seeded, url, status, names):
    response = checked(seeded["client"], url)
    assert response.status_code == status, (url[:100], response.status_code, message_of(response))
    message = message_of(response)
    for name in names:
        assert name in message, (url[:100], message)
    assert len(message) < 400, "a message echoes at most a short prefix of the value"


def test_defect_7_job_bodies_nested_too_deeply_or_not_json_are_400(resources):
    client = create_app(resources.__class__(resources.settings.replace(api_token="t"), send=resources.send,
                                            store=resources.store, db=resources.db)).test_client()
    auth = {"Authorization": "Bearer t"}
    for body, kind in (("[" * 100_000 + "]" * 100_000, "application/json"),
                       ('{"job_name": "x", "task_list": ' + "[" * 5000 + "]" * 5000 + "}", "application/json"),
                       ("\xff\xfe not json", "application/json"), ("{}", "text/plain"), ("", "application/json")):
        response = client.post("/api/jobs", data=body.encode("latin-1"), content_type=kind, headers=auth)
        assert response.status_code == 400 and response.get_json()["error"], (body[:40], response.status_code)
    assert "nested too deeply" in client.post("/api/jobs", data="[" * 100_000, content_type="application/json",
                                              headers=auth).get_json()["error"]


# --------------------------------------------------------------------------- defect 12: headers
def test_defect_12_security_headers_on_html_json_png_csv_static_and_errors(seeded):
    client, job, version = seeded["client"], seeded["job"], seeded["version"]
    answers = {
        "html": client.get("/jobs"), "json": client.get("/api/jobs"),
        "png": client.get(f"/plots/{version}/lc.png"),
        "csv": client.get(f"/timings.csv?job={job}&task_type=null"),
        "download": client.get(f"/products/download/{version}"),
        "static": client.get("/static/eas.js"),
        "400 html": client.get("/errors?since=99999999w"), "400 json": client.get("/api/jobs?page=x"),
        "404 json": client.get("/api/tasks/9223372036854775807"), "404 unmatched": client.get("/no/such/page"),
        "405": client.post("/jobs"), "plot error": client.get(f"/plots/{version}/nosuchkind.png"),
    }
    expected = {"html": ("text/html", 200), "json": ("application/json", 200), "png": ("image/png", 200),
                "csv": ("text/csv", 200), "static": ("text/javascript", 200)}
    for name, response in answers.items():
        if name in expected:
            assert (response.mimetype, response.status_code) == expected[name], name
        for header, value in HEADERS.items():
            assert response.headers.get(header) == value, (name, header)
        response.close()
    csp = HEADERS["Content-Security-Policy"]
    assert "script-src 'self'" in csp and "frame-ancestors 'none'" in csp and "unsafe" not in csp
    assert HEADERS["X-Frame-Options"] == "DENY" and HEADERS["X-Content-Type-Options"] == "nosniff"


INLINE = [(re.compile(r"<script(?![^>]*\bsrc=)[^>]*>", re.I), "an inline script"),
          (re.compile(r"\sstyle\s*=", re.I), "a style attribute"), (re.compile(r"<style", re.I), "a style element"),
          (re.compile(r"\son[a-z]+\s*=", re.I), "an event handler attribute"),
          (re.compile(r"javascript:", re.I), "a javascript: URL")]


def test_defect_12_pages_keep_the_csp_no_inline_script_handler_or_style(seeded):
    """What the CSP forbids is nowhere in the rendered pages (the browser tests load them in
    Chromium, where a violation is a console error)."""
    client, job, task, key = seeded["client"], seeded["job"], seeded["task"], seeded["key"]
    pages = ["/", "/jobs", f"/jobs/{job}", "/products", f"/products/file/{key}", "/tasks", "/tasks/running",
             f"/tasks/{task}", "/errors", "/dead-letters", "/progress", "/timings", f"/timings?job={job}&task_type=null",
             f"/passfail?job={job}&task_type=null", "/logs", "/activity?since=2h", "/functions",
             "/errors?since=99999999w", "/jobs/9223372036854775807", "/products/file/none"]
    for page in pages:
        body = client.get(page).get_data(as_text=True)
        for pattern, what in INLINE:
            found = pattern.search(body)
            assert not found, f"{page} has {what}: {body[max(0, found.start() - 80):found.end() + 80]!r}"


# --------------------------------------------------------------------------- defect 12: CLI
def eas(*args: str, **kw) -> subprocess.Popen:
    """``eas ARGS`` as a real process of this checkout, on the test's EAS_HOME."""
    env = {**os.environ, "PYTHONPATH": str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    return subprocess.Popen([sys.executable, "-m", "eas_runtime.cli", *args], env=env, cwd=kw.pop("cwd", None),
                            stdout=kw.pop("stdout", subprocess.PIPE), stderr=subprocess.PIPE, **kw)


@pytest.fixture
def busy_database(resources):
    """1,000 jobs with long names and a failed attempt with a 100 kB traceback: every listing
    below is larger than a pipe's buffer, so the reader's exit meets a blocked writer."""
    now = dt.datetime.now(dt.timezone.utc)
    with resources.db.session() as s:
        s.execute(insert(Job.__table__), [{"name": f"job-{i:04d}-" + "n" * 150, "working_directory": f"w{i}",
                                           "cancelled": False, "created_at": now} for i in range(1000)])
    rows = Rows(resources.db)
    task = rows.task(1, "null", state="failed")
    rows.attempt(task, error_kind="science", error_text="Traceback (most recent call last):\n" + "x" * 100_000)
    return resources


@pytest.mark.timeout(120)
@pytest.mark.parametrize("command", [["jobs", "--page-size", "1000"], ["jobs", "--json"], ["errors"],
                                     ["status"], ["timings"], ["inflight"], ["tree"], ["logs"], ["progress"]])
def test_defect_12_closed_pipe_ends_quietly_without_a_traceback(busy_database, command):
    """The reader has gone before the command prints (its end of the pipe is closed at once):
    every printing command exits 141 (or 0 when it wrote nothing) with an empty stderr."""
    proc = eas(*command)
    proc.stdout.close()
    err = proc.stderr.read().decode()
    status = proc.wait()
    assert "Traceback" not in err and "BrokenPipeError" not in err and err == "", err[-2000:]
    assert status in (141, 0), (command, status)


@pytest.mark.timeout(120)
def test_defect_12_eas_jobs_into_head_through_a_shell_pipe(busy_database):
    env = {**os.environ, "PYTHONPATH": str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    for command in ("jobs --page-size 1000", "errors"):
        done = subprocess.run(["bash", "-c", f"set -o pipefail; {sys.executable} -m eas_runtime.cli {command} | head -1"],
                              env=env, capture_output=True, text=True, timeout=100)
        assert done.stdout.count("\n") == 1 and done.stdout.strip(), done.stdout[:500]
        assert "Traceback" not in done.stderr and done.stderr == "", done.stderr[-2000:]
        assert done.returncode == 141, (command, done.returncode)


@pytest.mark.timeout(120)
def test_defect_12_upload_refuses_a_bad_prefix_or_key_in_one_line(resources, tmp_path):
    data = tmp_path / "f.csv"
    data.write_text("time,flux\n1,2\n")
    for args, named in ((["--prefix", "../.."], "--prefix '../..'"), (["--key", "../x.csv"], "--key '../x.csv'"),
                        (["--key", "/etc/x.csv"], "--key '/etc/x.csv'"), (["--prefix", "a//b"], "--prefix 'a//b'")):
        proc = eas("upload", *args, str(data))
        out, err = (b.decode() for b in proc.communicate(timeout=100))
        assert proc.returncode == 2, (args, proc.returncode, err)
        assert "Traceback" not in err and err.count("\n") == 1 and named in err, err
        assert "uploaded" not in out
    proc = eas("upload", "--key", "inbox/one.csv", str(data), str(data))
    err = proc.communicate(timeout=100)[1].decode()
    assert proc.returncode == 2 and "--key names one object" in err and "Traceback" not in err
    assert not any(p.is_file() for p in resources.settings.store_path.rglob("*")), "nothing may be uploaded"


@pytest.mark.parametrize("argv, named", [
    (["jobs", "--page", "9223372036854775808"], "--page"), (["task", "1" * 30], "task_id"),
    (["errors", "--since", "99999999w"], "since"), (["logs", "--job", "-1"], "--job"),
    (["cancel", "9223372036854775808"], "job"), (["retry", "1", "--task", "1" * 5000], "--task"),
    (["inflight", "--dead-letters", "1000000"], "--dead-letters"), (["tree", "--page-size", "0"], "--page-size"),
])
def test_defect_12_cli_numbers_out_of_range_are_refused_by_name(busy_database, capsys, argv, named):
    from eas_runtime import cli
    try:
        status = cli.main(argv)
    except SystemExit as exc:           # argparse's refusal
        status = exc.code
    err = capsys.readouterr().err
    assert status == 2 and named in err and "Traceback" not in err, (argv, status, err[-500:])


@pytest.mark.parametrize("argv", [["status"], ["cancel", "5"], ["retry", "5"], ["jobs"], ["errors"]])
def test_defect_12_commands_on_a_home_without_a_database_say_so_in_one_line(capsys, argv):
    from eas_runtime import cli
    status = cli.main(argv)
    err = capsys.readouterr().err
    assert status == 1 and "Traceback" not in err and err.count("\n") == 1, (argv, status, err[-500:])
    assert "schema" in err or "no task database" in err, err
