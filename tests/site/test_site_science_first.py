"""The science first (issue 14, item 6): units beside results, stars by name, timings with the
results before the bookkeeping, failures by their cause before the traceback."""
from __future__ import annotations

import traceback

import pytest
from sqlalchemy import select

from eas_runtime.db.models import CatalogueEntry, ProductVersion
from eas_runtime.db.products import ensure_product
from eas_runtime.diagnostics._units import suffix_unit, unit_of, units_of
from eas_runtime.diagnostics.errors import error_cause
from eas_runtime.task_api import ParameterError
from eas_runtime.site import create_app
from tests.site.pages_helpers import Rows, ago


@pytest.mark.parametrize("key, unit", [
    ("slept_s", "s"), ("wall_s", "s"), ("lc_duration_days", "d"), ("period_d", "d"),
    ("scatter_ppm", "ppm"), ("duration_h", "h"), ("window_hours", "h"), ("size_bytes", "B"),
    ("period", ""), ("outcome", ""), ("_s", ""), ("attempts", ""), ("task_id", ""),
    ("n_periods", ""), ("cadence_seconds", "s"),
])
def test_suffix_units(key, unit):
    assert suffix_unit(key) == unit


def test_a_recorded_unit_wins_over_the_suffix():
    assert unit_of("period", {"period": "d"}) == "d"
    assert unit_of("gap_s", {"gap_s": "min"}) == "min"
    assert unit_of("gap_s", {}) == "s" and unit_of("power", None) == ""
    assert units_of({"period": 1.0, "outcome": "PASS", "slept_s": 2}, {"period": "d"}) == {
        "period": "d", "slept_s": "s"}


def _traceback_of(exc: BaseException) -> str:
    try:
        raise exc
    except BaseException as caught:          # noqa: BLE001 - the text is what is tested
        return "".join(traceback.format_exception(caught))


def test_the_cause_is_the_exception_line_of_a_traceback():
    text = _traceback_of(ValueError("flux is empty"))
    assert text.startswith("Traceback") and error_cause(text) == "ValueError: flux is empty"
    try:
        try:
            raise KeyError("x")
        except KeyError as inner:
            raise RuntimeError("while reading\nthe header") from inner
    except RuntimeError as outer:
        chained = "".join(traceback.format_exception(outer))
    assert error_cause(chained) == "RuntimeError: while reading the header (caused by KeyError: 'x')"
    try:
        try:
            {}["NAXIS"]
        except KeyError:
            raise ParameterError("no image header")          # raised while handling the first
    except ParameterError as outer:
        implicit = "".join(traceback.format_exception(outer))
    assert implicit.count("Traceback") == 2 and "eas_runtime.task_api.ParameterError" in implicit
    assert error_cause(implicit) == "ParameterError: no image header (while handling KeyError: 'NAXIS')"


def test_the_cause_of_a_summary_first_text_is_its_first_line():
    assert error_cause("timeout: stopped after 3.0 s\nTraceback (most recent call last):\n"
                       '  File "x.py", line 1\nTaskTimeout: late') == "timeout: stopped after 3.0 s"
    assert error_cause("QC failed: flux all NaN") == "QC failed: flux all NaN"
    assert error_cause("") == "" and error_cause(None) == ""
    assert len(error_cause("x" * 5000)) == 500


@pytest.fixture
def science(resources):
    """A job with two searches (recorded units on period), a failed one, and a star with a
    light curve whose object name ingest recorded."""
    rows, db = Rows(resources.db), resources.db
    job = rows.job("grid")
    searches = []
    for i, size in enumerate((0.5, 2.0)):
        task = rows.task(job, "transit_search_tls", metadata={"size": size, "size_index": i},
                         params={"lc_duration_days": 30})
        rows.attempt(task, started=ago(100), ended=ago(90), wall_s=1.5 + i, cpu_s=1.0,
                     results={"period": 3.5 + i, "outcome": "PASS", "depth": 800.0},
                     units={"period": "d", "depth": "ppm"})
        searches.append(task)
    failed = rows.task(job, "verify", state="failed")
    rows.attempt(failed, started=ago(50), ended=ago(40), error_kind="science",
                 error_text=_traceback_of(ValueError("the light curve has 3 gaps longer than 2 d")))
    with db.session() as s:
        product = ensure_product(s, "inbox/tess-wasp126.fits")
        product.star_id = "TIC 25155310"
        version = ProductVersion(product_id=product.id, etag="e1", size=10, passed_qc=True)
        s.add(version)
        unnamed = ensure_product(s, "inbox/kplr.fits")
        unnamed.star_id = "KIC 9002278"
        s.add(ProductVersion(product_id=unnamed.id, etag="e2", size=10, passed_qc=True))
        s.flush()
        version_id = version.id
    rows.metadata("version", version_id, {"object": "WASP-126", "time_system": "BTJD"})
    client = create_app(resources).test_client()
    return {"client": client, "job": job, "searches": searches, "failed": failed, "db": db}


def test_stars_are_listed_by_name(science):
    client = science["client"]
    items = client.get("/api/stars").get_json()["items"]
    assert {i["star_id"]: i["name"] for i in items} == {"KIC 9002278": "", "TIC 25155310": "WASP-126"}
    page = client.get("/stars").get_data(as_text=True)
    assert ('<a class="star" href="/stars/TIC%2025155310"><strong>WASP-126</strong> '
            '<span class="muted">TIC 25155310</span></a>') in page
    assert '<a class="star" href="/stars/KIC%209002278">KIC 9002278</a>' in page
    for search in ("wasp-126", "WASP", "2515"):                          # by name or by id
        found = client.get(f"/api/stars?search={search}").get_json()["items"]
        assert [i["star_id"] for i in found] == ["TIC 25155310"], search
    assert client.get("/api/stars?search=kepler-1").get_json()["items"] == []
    star = client.get("/stars/TIC%2025155310").get_data(as_text=True)
    assert "<h1>WASP-126 <span class=\"muted\">TIC 25155310</span></h1>" in star
    assert client.get("/api/stars/TIC%2025155310").get_json()["name"] == "WASP-126"


def test_a_candidate_without_a_star_name_takes_the_light_curves(science):
    with science["db"].session() as s:
        s.add(CatalogueEntry(task_id=science["searches"][0], job_id=science["job"], number=1,
                             star_id="TIC 25155310", star_name="", kind="periodic", period=3.5,
                             epoch=1.0, duration=0.1, depth=800.0, snr=12.0, verdict="planet candidate",
                             reasons=[], lightcurve_key="inbox/tess-wasp126.fits"))
        s.flush()
        cid = s.scalar(select(CatalogueEntry.id))
    client = science["client"]
    assert client.get("/api/candidates").get_json()["items"][0]["star_name"] == "WASP-126"
    assert client.get(f"/api/candidates/{cid}").get_json()["star_name"] == "WASP-126"
    assert "<strong>WASP-126</strong>" in client.get("/candidates").get_data(as_text=True)
    assert "<h1>WASP-126: candidate 1" in client.get(f"/candidates/{cid}").get_data(as_text=True)


def test_timings_show_results_before_bookkeeping_with_units(science):
    client, job = science["client"], science["job"]
    query = f"job={job}&task_type=transit_search_tls"
    data = client.get(f"/api/timings?{query}").get_json()
    # the JSON and CSV order is unchanged (task_id first: scripts read the CSV by position)
    assert data["columns"][:5] == ["task_id", "name", "path", "state", "attempts"]
    csv_header = client.get(f"/timings.csv?{query}").get_data(as_text=True).splitlines()[0]
    assert csv_header.split(",") == data["columns"]
    assert data["shown_columns"] == ["size", "size_index", "lc_duration_days",
                                     "period", "outcome", "depth",
                                     "wall_s", "cpu_s", "cpu_children_s",
                                     "task_id", "name", "path", "state", "attempts"]
    assert sorted(data["shown_columns"]) == sorted(data["columns"])
    assert data["units"] == {"lc_duration_days": "d", "period": "d", "depth": "ppm", "wall_s": "s",
                             "cpu_s": "s", "cpu_children_s": "s"}
    page = client.get(f"/timings?{query}").get_data(as_text=True)
    head = page[page.index("<thead>"):page.index("</thead>")]
    order = [head.index(f">{name}<") if f">{name}<" in head else head.index(f">{name} <")
             for name in ("size", "period", "wall_s", "task_id", "attempts")]
    assert order == sorted(order)
    assert 'period <span class="unit">[d]</span>' in head and 'depth <span class="unit">[ppm]</span>' in head
    first_row = page[page.index("<tbody>"):page.index("</tr>", page.index("<tbody>"))]
    assert first_row.index("3.5") < first_row.index(f'href="/tasks/{science["searches"][0]}"')


def test_passfail_shows_the_outcome_before_bookkeeping(science):
    client, job = science["client"], science["job"]
    data = client.get(f"/api/passfail?job={job}&task_type=transit_search_tls").get_json()
    assert data["columns"][-1] == "outcome"
    assert data["shown_columns"] == ["size", "size_index", "outcome",
                                     "task_id", "name", "path", "state", "attempts"]


def test_errors_show_the_cause_before_the_folded_traceback(science):
    client = science["client"]
    item = client.get("/api/errors").get_json()["items"][0]
    assert item["cause"] == "ValueError: the light curve has 3 gaps longer than 2 d"
    assert item["error"].startswith("Traceback (most recent call last):")
    page = client.get("/errors").get_data(as_text=True)
    cause = page.index('<p class="cause fail">ValueError: the light curve has 3 gaps longer than 2 d</p>')
    details = page.index('<details class="traceback"><summary>traceback</summary>')
    trace = page.index("Traceback (most recent call last):")
    assert cause < details < trace
    assert "<details open" not in page
