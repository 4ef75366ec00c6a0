"""/activity: a timeline of attempts per worker (host and process), bounded in time and size."""
from __future__ import annotations

import datetime as dt
import html
import re
from urllib.parse import quote

import pytest

from eas_runtime.db.models import utcnow
from eas_runtime.site import create_app
from tests.site.pages_helpers import Rows, ago


@pytest.fixture
def hosts(resources):
    """node-a pid 1 ran two attempts (done, then failed) and runs a third; node-b pid 7 ran one
    an hour and a half ago and one that started before the window and ended inside it. Made in
    the order they were queued, as the pipeline makes them (ids grow with time)."""
    rows = Rows(resources.db)
    job = rows.job("j")
    t = [rows.task(job, tt) for tt in ("verify", "<script>tt</script>", "transit_search_tls",
                                       "verify", "ingest_external_lcs")]
    a = {3: rows.attempt(t[3], started=ago(5400), ended=ago(5000), host="node-b", pid=7),
         4: rows.attempt(t[4], started=ago(4000), ended=ago(3000), host="node-b", pid=7),
         0: rows.attempt(t[0], started=ago(1800), ended=ago(1500), host="node-a", pid=1),
         1: rows.attempt(t[1], started=ago(1200), ended=ago(900), host="node-a", pid=1,
                         error_kind="science", error_text="boom"),
         2: rows.attempt(t[2], started=ago(300), ended=None, host="node-a", pid=1, state="running")}
    return {"client": create_app(resources).test_client(), "tasks": t, "attempts": a}


def lanes(data):
    return {(lane["host"], lane["pid"]): [x["task_id"] for x in lane["attempts"]] for lane in data["lanes"]}


def test_since_1h_is_the_last_hour(hosts):
    data = hosts["client"].get("/api/activity?since=1h").get_json()
    t = hosts["tasks"]
    assert lanes(data) == {("node-a", 1): [t[0], t[1], t[2]], ("node-b", 7): [t[4]]}
    a = {x["task_id"]: x for lane in data["lanes"] for x in lane["attempts"]}
    assert (a[t[0]]["outcome"], a[t[1]]["outcome"], a[t[2]]["outcome"]) == ("done", "failed", "running")
    assert a[t[2]]["ended"] is None and a[t[1]]["error_kind"] == "science"
    since = dt.datetime.fromisoformat(data["since"])
    assert abs((utcnow() - since).total_seconds() - 3600) < 60
    node_b = next(lane for lane in data["lanes"] if lane["host"] == "node-b")
    assert node_b["busy_s"] == pytest.approx(600, abs=5)     # only its part inside the window


def test_window_filters(hosts):
    t = hosts["tasks"]
    assert lanes(hosts["client"].get("/api/activity?since=2h").get_json())[("node-b", 7)] == [t[3], t[4]]
    until = ago(1400).replace(tzinfo=None).isoformat()
    data = hosts["client"].get(f"/api/activity?since=2h&until={until}").get_json()
    assert lanes(data) == {("node-a", 1): [t[0]], ("node-b", 7): [t[3], t[4]]}
    assert hosts["client"].get("/api/activity?since=2m").get_json()["lanes"][0]["attempts"][0]["task_id"] == t[2]


def test_bounded_lanes_and_attempts(hosts):
    t = hosts["tasks"]
    data = hosts["client"].get("/api/activity?since=2h&lanes=1").get_json()
    assert list(lanes(data)) == [("node-a", 1)] and data["lanes_total"] == 2   # the busiest lane
    assert (data["attempts_shown"], data["attempts_total"]) == (3, 5)
    data = hosts["client"].get("/api/activity?since=2h&limit=2").get_json()
    assert (data["attempts_read"], data["attempts_total"]) == (2, 5)
    assert lanes(data) == {("node-a", 1): [t[1], t[2]]}                     # the most recent
    data = hosts["client"].get("/api/activity?since=2h&limit=3&lanes=1").get_json()
    assert lanes(data) == {("node-a", 1): [t[0], t[1], t[2]]}
    page = hosts["client"].get("/activity?since=2h&lanes=1&limit=4").get_data(as_text=True)
    assert "Only the 4 most recent attempts are read." in page
    assert "Only the 1 busiest of their 2 workers are drawn (3 attempts)." in page


def test_timeline_svg_with_two_hosts(hosts):
    page = hosts["client"].get("/activity?since=2h").get_data(as_text=True)
    svg = page[page.index('<svg id="activity"'):page.index("</svg>")]
    assert svg.count('<g class="lane"') == 2
    assert 'data-host="node-a pid 1"' in svg and 'data-host="node-b pid 7"' in svg
    bars = re.findall(r'<rect class="attempt (\w+) tt-\d+" x="([\d.]+)" y="([\d.]+)" width="([\d.]+)"', svg)
    assert sorted(b[0] for b in bars) == ["done", "done", "done", "failed", "running"]
    assert len({b[2] for b in bars}) == 2                           # one row per host
    for outcome, x, _, width in bars:                               # inside the drawing
        assert 190 <= float(x) and float(x) + float(width) <= 1190.01
    running = next(b for b in bars if b[0] == "running")
    assert float(running[1]) + float(running[3]) == pytest.approx(1190, abs=0.5)   # runs to "now"
    for task in hosts["tasks"]:
        assert f'<a href="/tasks/{task}">' in svg
    assert "<script>" not in page and "&lt;script&gt;tt&lt;/script&gt;" in svg


def test_empty_window(hosts):
    until = quote(ago(2.5 * 3600).isoformat())               # with its +00:00 zone
    page = hosts["client"].get(f"/activity?since=3h&until={until}")
    assert page.status_code == 200 and "No attempt ran in this window." in page.get_data(as_text=True)


@pytest.mark.parametrize("query, message", [
    ("since=tomorrow", "since='tomorrow' is neither"), ("until=later", "until='later' is neither"),
    ("since=1h&until=2h", "must be before until"), ("lanes=0", "lanes must be a whole number from 1 to 200"),
    ("lanes=500", "lanes must be a whole number from 1 to 200"), ("limit=x", "limit must be a whole number"),
    ("limit=20000", "limit must be a whole number from 1 to 10000"),
])
def test_bad_parameters(hosts, query, message):
    for path in ("/api/activity", "/activity"):
        response = hosts["client"].get(f"{path}?{query}")
        assert response.status_code == 400, path
        assert message in html.unescape(response.get_data(as_text=True)), path


def test_default_window_is_the_span_of_the_newest_job(hosts, resources):
    """With neither since nor until: from the newest job's first attempt to its last (now,
    while one runs), 2 % wider on each side; the JSON says why."""
    t = hosts["tasks"]
    data = hosts["client"].get("/api/activity").get_json()
    assert data["window"]["default"] and data["window"]["job_id"] is not None
    assert data["window"]["reason"].startswith(f"the attempts of job {data['window']['job_id']}")
    since, until = (dt.datetime.fromisoformat(data[k]) for k in ("since", "until"))
    # the first attempt began 5400 s ago and one still runs: 5400 s, plus 2 % before
    assert (utcnow() - since).total_seconds() == pytest.approx(5400 * 1.02, abs=60)
    assert abs((utcnow() - until).total_seconds()) < 60
    assert lanes(data) == {("node-a", 1): [t[0], t[1], t[2]], ("node-b", 7): [t[3], t[4]]}
    page = hosts["client"].get("/activity").get_data(as_text=True)
    assert f'<span id="window">the attempts of job {data["window"]["job_id"]}, the newest</span>' in page


def test_default_window_of_a_finished_job_ends_with_it(resources):
    rows = Rows(resources.db)
    old = rows.job("old")
    rows.attempt(rows.task(old, "verify"), started=ago(90000), ended=ago(89000))
    new = rows.job("new")
    for start in (8000, 7000):
        rows.attempt(rows.task(new, "detrend"), started=ago(start), ended=ago(start - 1000))
    data = create_app(resources).test_client().get("/api/activity").get_json()
    assert data["window"]["job_id"] == new
    since, until = (dt.datetime.fromisoformat(data[k]) for k in ("since", "until"))
    assert (utcnow() - since).total_seconds() == pytest.approx(8000 + 2000 * 0.02, abs=30)
    assert (utcnow() - until).total_seconds() == pytest.approx(6000 - 2000 * 0.02, abs=30)
    assert [a["task_type"] for lane in data["lanes"] for a in lane["attempts"]] == ["detrend", "detrend"]


def test_default_window_is_at_most_a_day_and_a_day_when_nothing_ran(resources):
    client = create_app(resources).test_client()
    empty = client.get("/api/activity").get_json()
    since, until = (dt.datetime.fromisoformat(empty[k]) for k in ("since", "until"))
    assert (until - since).total_seconds() == pytest.approx(86400, abs=1)
    assert empty["window"] == {"default": True, "job_id": None, "reason": "no attempt has run: the last 24 h"}
    rows = Rows(resources.db)
    long = rows.job("long")
    rows.attempt(rows.task(long, "planet_search"), started=ago(3 * 86400), ended=ago(3600))
    data = client.get("/api/activity").get_json()
    since, until = (dt.datetime.fromisoformat(data[k]) for k in ("since", "until"))
    # the last 24 h of the job (it ended 1 h ago), plus 2 % of a day on each side
    assert (utcnow() - until).total_seconds() == pytest.approx(3600 - 0.02 * 86400, abs=60)
    assert (until - since).total_seconds() == pytest.approx(86400 * 1.04, abs=1)
    assert data["window"]["reason"].endswith("(its last 24 h)")


def test_bars_are_coloured_by_task_type_with_a_legend(hosts):
    from eas_runtime.site.activity import KNOWN_TYPES, PALETTE, colour_index

    data = hosts["client"].get("/api/activity?since=2h").get_json()
    assert data["colours"] == {t: PALETTE[colour_index(t)] for t in
                               ("<script>tt</script>", "ingest_external_lcs", "transit_search_tls", "verify")}
    assert data["colours"]["verify"] == PALETTE[1] and data["colours"]["ingest_external_lcs"] == PALETTE[0]
    assert len(KNOWN_TYPES) <= len(PALETTE)
    assert len({colour_index(t) for t in KNOWN_TYPES}) == len(KNOWN_TYPES)    # no two alike
    assert colour_index("my_new_task") == colour_index("my_new_task") < len(PALETTE)
    page = hosts["client"].get("/activity?since=2h").get_data(as_text=True)
    svg = page[page.index('<svg id="activity"'):page.index("</svg>")]
    verify = colour_index("verify")
    for task in (hosts["tasks"][0], hosts["tasks"][3]):                      # both verify tasks
        bar = svg[svg.index(f'<a href="/tasks/{task}">'):]
        assert bar.split(">", 2)[1].startswith(f'<rect class="attempt done tt-{verify}"')
    legend = page[page.index('<ul id="legend"'):page.index("</ul>", page.index('<ul id="legend"'))]
    assert [re.sub(r"<[^>]+>", "", li).strip() for li in re.findall(r"<li>(.*?)</li>", legend, re.S)] == [
        "&lt;script&gt;tt&lt;/script&gt;", "ingest_external_lcs", "transit_search_tls", "verify"]
    assert f'tt-{verify}"' in legend


def test_every_palette_colour_is_a_css_class():
    from eas_runtime.settings import PROJECT_ROOT
    from eas_runtime.site.activity import PALETTE

    css = (PROJECT_ROOT / "eas_runtime" / "site" / "static" / "eas.css").read_text()
    for i, colour in enumerate(PALETTE):
        assert f".tt-{i} {{ fill: {colour}; }}" in css
