"""The products area of the index site through Flask's test client, on SQLite and the local store.

Light curves and periodograms are real: a transit search (``transit_search_bls_reference``)
runs through its function's wrapper on a small batman light curve, as ``eas invoke`` does, so
its inputs, result metadata and periodogram product are recorded as the pipeline records them.
"""
from __future__ import annotations

import contextlib
import io
import json
from html import unescape
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pytest
from sqlalchemy import event, insert, select

from eas_runtime.db import metadata as md
from eas_runtime.db.models import Product, ProductVersion
from eas_runtime.db.products import ensure_product
from eas_runtime.invoke import create_task, load_runner
from eas_runtime.lightcurve import LightCurve, write_lightcurve
from eas_runtime.site import create_app, plots
from functions.synthesis_batman.science import synthesize
from tests.site.pages_helpers import Rows

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
SEARCH = "transit_search_bls_reference"
PERIOD_D = 2.3
EVIL = "inbox/<script>alert(1)</script>.csv"
EVIL_URL = "/products/file/inbox/%3Cscript%3Ealert(1)%3C/script%3E.csv"


# ---------------------------------------------------------------------- helpers
class _Tags(HTMLParser):
    def __init__(self):
        super().__init__()
        self.found: list[tuple[str, dict]] = []

    def handle_starttag(self, tag, attrs):
        self.found.append((tag, dict(attrs)))


def text(response) -> str:
    """The body as text, HTML entities decoded (so messages compare as written)."""
    return unescape(response.get_data(as_text=True))


def tags(html: str, name: str, **attrs) -> list[dict]:
    """Attributes of every ``<name>`` element whose attributes include ``attrs``."""
    parser = _Tags()
    parser.feed(html)
    return [a for t, a in parser.found
            if t == name and all(a.get(k.rstrip("_")) == v for k, v in attrs.items())]


@contextlib.contextmanager
def selects(db):
    """Counts the SELECT statements the site sends to the database."""
    count = [0]

    def on_execute(conn, cursor, statement, *args):
        if statement.lstrip().upper().startswith("SELECT"):
            count[0] += 1

    event.listen(db.read_engine, "before_cursor_execute", on_execute)
    try:
        yield count
    finally:
        event.remove(db.read_engine, "before_cursor_execute", on_execute)


def put(resources, key: str, data: bytes, **version) -> int:
    """Store ``data`` under ``key`` and record a version of it; returns the version id."""
    info = resources.store.put_bytes(key, data)
    return record(resources, key, etag=info.etag, size=info.size, **version)


def record(resources, key: str, *, etag: str, size: int = 10, passed_qc: bool = True,
           attempt_id: int | None = None, semantic_type: str = "upload",
           metadata: dict | None = None) -> int:
    with resources.db.session() as s:
        product = ensure_product(s, key, semantic_type=semantic_type)
        version = ProductVersion(product_id=product.id, etag=etag, size=size, passed_qc=passed_qc,
                                 attempt_id=attempt_id)
        s.add(version)
        s.flush()
        if metadata:
            md.set_metadata(s, "version", version.id, metadata)
        return version.id


def many_files(resources, directory: str, n: int) -> None:
    """``n`` products directly in ``directory``, one version each (bulk insert)."""
    with resources.db.session() as s:
        start = (s.scalar(select(Product.id).order_by(Product.id.desc()).limit(1)) or 0) + 1
        s.execute(insert(Product.__table__), [
            {"id": start + i, "key": f"{directory}/f{i:04d}.csv", "directory": directory,
             "filename": f"f{i:04d}.csv", "semantic_type": "upload", "mime_type": "text/csv"}
            for i in range(n)])
        s.execute(insert(ProductVersion.__table__), [
            {"product_id": start + i, "etag": f"{i:032x}", "size": i, "passed_qc": True}
            for i in range(n)])


def latest_version(resources, key: str) -> int:
    with resources.db.read() as s:
        return s.scalar(select(ProductVersion.id).join(Product).where(Product.key == key)
                        .order_by(ProductVersion.id.desc()).limit(1))


@pytest.fixture
def client(resources):
    return create_app(resources).test_client()


@pytest.fixture
def searched(resources, tmp_path):
    """A batman light curve (P = 2.3 d, 20 d at 30 min) searched by BLS through the function's
    wrapper: ``{"lc": key, "periodogram": key, "task_id", "attempt_id", "results"}``."""
    lc = synthesize({"duration": 20, "sampling_cadence": 1800, "orbital_period": PERIOD_D,
                     "semi_major_axis": (PERIOD_D / 365.25) ** (2 / 3), "planet_radius": 0.3,
                     "noise": 1e-3, "t0": 1.3}, seed=23)
    path = write_lightcurve(lc, tmp_path / "star.fits")
    runner = load_runner(SEARCH, resources)
    ready = create_task(resources, SEARCH, {"lightcurve": path}, {}, {}, "job1")
    runner.run(ready.task_id, ready.attempt_id)
    with resources.db.read() as s:
        results = md.get_metadata(s, "attempt", ready.attempt_id)
        periodogram = s.scalar(select(Product.key).where(Product.semantic_type == "periodogram"))
    assert results["outcome"] == "PASS", results
    return {"lc": "job1/inputs/lightcurve/star.fits", "periodogram": periodogram,
            "task_id": ready.task_id, "attempt_id": ready.attempt_id, "results": results}


def cache_dir(resources) -> Path:
    return resources.settings.home_path / "plot-cache"


# ---------------------------------------------------------------------- directory listing
def test_listing_has_subdirectories_with_counts_then_files(resources, client):
    for key in ("inbox/a.csv", "inbox/b.csv", "processed/s1/x.fits", "processed/s1/y.fits",
                "processed/s2/deep/z.fits", "top.txt"):
        record(resources, key, etag="e" * 32)
    root = client.get("/api/products").get_json()
    assert [(i["kind"], i["name"]) for i in root["items"]] == [
        ("directory", "inbox"), ("directory", "processed"), ("file", "top.txt")]
    assert [i.get("files") for i in root["items"][:2]] == [2, 3]
    assert root["total"] == 3 and root["directories"] == 2 and root["files"] == 1
    assert root["parent"] is None and root["prefix"] == ""
    processed = client.get("/api/products?prefix=processed").get_json()  # the '/' is optional
    assert processed["prefix"] == "processed/" and processed["parent"] == ""
    assert [(i["name"], i["files"], i["url"]) for i in processed["items"]] == [
        ("s1", 2, "/products?prefix=processed/s1/"), ("s2", 1, "/products?prefix=processed/s2/")]
    s1 = client.get("/api/products?prefix=processed/s1/").get_json()
    assert [i["key"] for i in s1["items"]] == ["processed/s1/x.fits", "processed/s1/y.fits"]
    assert s1["parent"] == "processed/" and s1["items"][0]["latest"]["md5"] == "e" * 32
    assert s1["breadcrumbs"] == [{"name": "processed", "prefix": "processed/"},
                                 {"name": "s1", "prefix": "processed/s1/"}]


def test_listing_page_links_directories_and_files(resources, client):
    rows = Rows(resources.db)
    task = rows.task(rows.job(), SEARCH)
    attempt = rows.attempt(task, 2)
    record(resources, "processed/s1/out.fits", etag="f" * 32, size=2880, attempt_id=attempt,
           passed_qc=False)
    page = client.get("/products?prefix=processed/").get_data(as_text=True)
    assert tags(page, "table", id="products")
    assert tags(page, "a", href="/products?prefix=processed/s1/")
    assert tags(page, "a", href="/products")  # the parent: the top
    s1 = client.get("/products?prefix=processed/s1/").get_data(as_text=True)
    assert tags(s1, "a", href="/products/file/processed/s1/out.fits")
    assert tags(s1, "a", href=f"/tasks/{task}") and "(attempt 2)" in s1
    assert "2880" in s1 and "f" * 32 in s1 and 'class="fail"' in s1
    assert not tags(s1, "img"), "a listing must not load any plot"


def test_prefix_matches_percent_and_underscore_literally_and_case(resources, client):
    for key in ("a_b/1.csv", "a_b/in/7.csv", "axb/x/2.csv", "a%b/3.csv", "a%xb/q/9.csv",
                "aXb/4.csv", "A_B/y/5.csv"):
        record(resources, key, etag="e" * 32)
    names = lambda prefix: [i["name"] for i in client.get(
        "/api/products", query_string={"prefix": prefix}).get_json()["items"]]
    assert names("a_b/") == ["in", "1.csv"]
    assert names("a%b/") == ["3.csv"]
    assert names("A_B/") == ["y"]
    assert names("") == sorted(["A_B", "a%b", "a%xb", "a_b", "aXb", "axb"])  # code point order
    response = client.get("/api/products", query_string={"prefix": "a__/"})
    assert response.status_code == 404 and "a__/" in response.get_json()["error"]


def test_paging_runs_directories_then_files(resources, client):
    for d in ("d1", "d2", "d3"):
        record(resources, f"big/{d}/x.csv", etag="e" * 32)
    many_files(resources, "big", 150)
    first = client.get("/api/products?prefix=big/").get_json()
    assert (first["total"], first["pages"], first["page_size"]) == (153, 2, 100)
    assert [i["kind"] for i in first["items"]].count("directory") == 3
    assert len(first["items"]) == 100 and first["items"][-1]["name"] == "f0096.csv"
    second = client.get("/api/products?prefix=big/&page=1").get_json()
    assert [i["name"] for i in second["items"]] == [f"f{i:04d}.csv" for i in range(97, 150)]
    small = client.get("/api/products?prefix=big/&page=1&page_size=2").get_json()
    assert [i["name"] for i in small["items"]] == ["d3", "f0000.csv"] and small["pages"] == 77
    beyond = client.get("/api/products?prefix=big/&page=9").get_json()
    assert beyond["items"] == [] and beyond["total"] == 153
    html = client.get("/products?prefix=big/").get_data(as_text=True)
    assert tags(html, "a", href="/products?prefix=big/&page=1", rel="next")
    html = client.get("/products?prefix=big/&page=1").get_data(as_text=True)
    assert tags(html, "a", href="/products?prefix=big/&page=0", rel="prev")
    assert not tags(html, "a", rel="next")


def test_a_page_takes_the_same_few_queries_for_5_or_150_files(resources, client):
    many_files(resources, "small", 5)
    record(resources, "small/sub/x.csv", etag="e" * 32)
    many_files(resources, "large", 150)
    for n in range(20):
        record(resources, f"large/sub{n}/x.csv", etag="e" * 32)
    counts = {}
    for prefix in ("small/", "large/"):
        with selects(resources.db) as count:
            assert client.get(f"/products?prefix={prefix}&page_size=200").status_code == 200
        counts[prefix] = count[0]
    assert counts["small/"] == counts["large/"] <= 4, counts
    with selects(resources.db) as root:
        client.get("/api/products")
    assert root[0] <= 4


def test_bad_listing_arguments_are_400_or_404_with_a_message(client):
    cases = [("/products?page=x", 400, "page must be a whole number"),
             ("/products?page=-1", 400, "page must be a whole number from 0 to"),
             ("/products?page_size=0", 400, "page_size"),
             ("/products?page_size=5000", 400, "page_size must be a whole number from 1 to 1000"),
             ("/products?prefix=/etc/", 400, "no leading '/'"),
             ("/products?prefix=a/../b/", 400, "'..'"),
             ("/products?prefix=nothing/here/", 404, "no products under 'nothing/here/'")]
    for url, status, message in cases:
        html = client.get(url)
        assert html.status_code == status and message in text(html), url
        api = client.get("/api" + url)
        assert api.status_code == status and message in api.get_json()["error"], url


# ---------------------------------------------------------------------- one file
def test_file_page_lists_every_version_with_task_attempt_qc_and_downloads(resources, client):
    rows = Rows(resources.db)
    task = rows.task(rows.job(), "detrend")
    first = rows.attempt(task, 1, error_kind="qc")
    second = rows.attempt(task, 2)
    key = "processed/s1/star.detrend.csv"
    old = record(resources, key, etag="0" * 32, size=5, attempt_id=first, passed_qc=False,
                 metadata={"qc_problems": ["flux has 12 NaN values"]})
    new = put(resources, key, b"0.0,1.0\n1.0,1.0\n", attempt_id=second)
    page = client.get(f"/products/file/{key}")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert tags(html, "table", id="versions")
    assert [r["data-version"] for r in tags(html, "tr") if "data-version" in r] == [str(new), str(old)]
    assert tags(html, "a", href=f"/tasks/{task}") and "0" * 32 in html
    assert "flux has 12 NaN values" in html and "not kept by the store" in html
    assert tags(html, "a", href=f"/products/download/{new}")
    assert not tags(html, "a", href=f"/products/download/{old}")
    data = client.get(f"/api/products/file/{key}").get_json()
    versions = data["versions"]["items"]
    assert [(v["id"], v["attempt"], v["task_id"], v["task_type"], v["passed_qc"], v["held"])
            for v in versions] == [(new, 2, task, "detrend", True, True),
                                   (old, 1, task, "detrend", False, False)]
    assert versions[0]["size"] == 16 and versions[1]["qc_problems"] == ["flux has 12 NaN values"]
    assert versions[0]["download"] == f"/products/download/{new}" and versions[1]["download"] is None
    assert data["store"]["etag"] == versions[0]["md5"]
    with selects(resources.db) as few:
        client.get(f"/api/products/file/{key}")
    for n in range(30):
        record(resources, key, etag=f"{n:032x}")
    with selects(resources.db) as many:
        client.get(f"/api/products/file/{key}")
    assert few[0] == many[0] <= 6


def test_versions_are_paged_newest_first(resources, client):
    for n in range(130):
        record(resources, "inbox/often.csv", etag=f"{n:032x}", size=n)
    first = client.get("/api/products/file/inbox/often.csv").get_json()["versions"]
    assert (first["total"], first["pages"], len(first["items"])) == (130, 2, 100)
    assert [v["size"] for v in first["items"][:2]] == [129, 128]
    second = client.get("/api/products/file/inbox/often.csv?page=1").get_json()["versions"]
    assert [v["size"] for v in second["items"]] == list(range(29, -1, -1))
    html = client.get("/products/file/inbox/often.csv").get_data(as_text=True)
    assert tags(html, "a", href="/products/file/inbox/often.csv?page=1", rel="next")
    assert client.get("/products/file/inbox/often.csv?page=x").status_code == 400


def test_unknown_file_is_404_with_a_message(client):
    assert client.get("/products/file/no/such.fits").status_code == 404
    assert "no product with the key 'no/such.fits'" in text(client.get("/products/file/no/such.fits"))
    api = client.get("/api/products/file/no/such.fits")
    assert api.status_code == 404 and api.get_json() == {
        "error": "no product with the key 'no/such.fits'"}


def test_planned_product_without_a_version(resources, client):
    with resources.db.session() as s:
        ensure_product(s, "plan/later.fits", semantic_type="lightcurve")
    item = client.get("/api/products?prefix=plan/").get_json()["items"][0]
    assert item["latest"] is None and item["versions"] == 0
    assert "planned, no version yet" in client.get("/products?prefix=plan/").get_data(as_text=True)
    page = client.get("/products/file/plan/later.fits").get_data(as_text=True)
    assert "No version yet." in page and not tags(page, "img")


# ---------------------------------------------------------------------- downloads
def test_download_streams_the_file_with_its_name(resources, client):
    data = bytes(range(256)) * 40
    version = put(resources, "inbox/star one.fits", data)
    response = client.get(f"/products/download/{version}")
    assert response.status_code == 200 and response.data == data
    assert response.headers["Content-Disposition"] == 'attachment; filename="star one.fits"'
    assert response.headers["Content-Type"] == "application/fits"
    assert response.headers["Content-Length"] == str(len(data))
    assert response.headers["ETag"].strip('"') == latest_md5(resources, version)


def latest_md5(resources, version_id: int) -> str:
    with resources.db.read() as s:
        return s.get(ProductVersion, version_id).etag


def test_download_of_an_overwritten_or_deleted_version_is_410(resources, client):
    old = put(resources, "inbox/a.csv", b"1,2\n")
    new = put(resources, "inbox/a.csv", b"1,3\n")
    response = client.get(f"/products/download/{old}")
    assert response.status_code == 410
    text = response.get_data(as_text=True)
    assert "inbox/a.csv" in text and "latest content of a key only" in text
    assert client.get(f"/products/download/{new}").data == b"1,3\n"
    resources.store.delete("inbox/a.csv")
    gone = client.get(f"/products/download/{new}")
    assert gone.status_code == 410 and "holds no object under that key" in gone.get_data(as_text=True)


def test_download_of_an_unknown_version_is_404(client):
    response = client.get("/products/download/4242")
    assert response.status_code == 404 and "no product version 4242" in response.get_data(as_text=True)


# ---------------------------------------------------------------------- plots
def test_light_curve_a_search_read_has_raw_and_folded_plots(resources, client, searched):
    key = searched["lc"]
    version = latest_version(resources, key)
    page = client.get(f"/products/file/{key}").get_data(as_text=True)
    images = tags(page, "img", class_="plot")
    assert [i["src"] for i in images] == [f"/plots/{version}/lc.png",
                                          f"/plots/{version}/folded.png?task={searched['task_id']}"]
    assert all(i["loading"] == "lazy" for i in images)
    for image in images:
        response = client.get(image["src"])
        assert response.status_code == 200 and response.mimetype == "image/png"
        assert response.data.startswith(PNG_MAGIC)
    assert client.get(f"/plots/{version}/folded.png").data.startswith(PNG_MAGIC)  # newest search


def test_folded_plot_uses_the_period_and_epoch_the_search_recorded(resources, client, searched):
    version = latest_version(resources, searched["lc"])
    results = searched["results"]
    data = client.get(f"/api/plots/{version}/folded?task={searched['task_id']}").get_json()
    assert data["search"]["period"] == results["period"] and data["search"]["epoch"] == results["epoch"]
    assert data["search"]["attempt_id"] == searched["attempt_id"]
    assert abs(results["period"] / PERIOD_D - 1) < 0.01
    x, y = np.array(data["x"]["values"]), np.array(data["y"]["values"])
    assert data["x"]["unit"] == "d" and data["n_samples"] == 960
    assert x.min() >= -results["period"] / 2 and x.max() < results["period"] / 2
    # folded at the right epoch, the transit sits at 0: the lowest fluxes are within a duration
    assert np.all(np.abs(x[np.argsort(y)[:10]]) < results["duration"])
    zoom = np.array(data["zoom"]["x"]["values"])
    assert np.all(np.abs(zoom) <= 2.5 * results["duration"] + 1e-12)


def test_periodogram_plot_marks_the_peak_at_the_period_found(resources, client, searched):
    key = searched["periodogram"]
    version = latest_version(resources, key)
    page = client.get(f"/products/file/{key}").get_data(as_text=True)
    assert [i["src"] for i in tags(page, "img", class_="plot")] == [f"/plots/{version}/periodogram.png"]
    assert client.get(f"/plots/{version}/periodogram.png").data.startswith(PNG_MAGIC)
    data = client.get(f"/api/plots/{version}/periodogram").get_json()
    assert data["peak"]["period"] == pytest.approx(searched["results"]["period"], rel=1e-12)
    assert data["peak"]["power"] == pytest.approx(searched["results"]["power"], rel=1e-12)
    x = np.array(data["x"]["values"])
    assert data["n_points"] == x.size <= plots.MAX_POINTS < data["n_samples"] and data["binned"]
    assert np.all(np.diff(x) >= 0) and data["peak"]["period"] in x
    assert data["units"] == {"period": "d", "power": ""}


def test_plots_are_cached_and_not_rendered_again(resources, client, searched):
    version = latest_version(resources, searched["lc"])
    first = client.get(f"/plots/{version}/lc.png")
    cached = list(cache_dir(resources).glob(f"{version}-*-lc.png"))
    assert len(cached) == 1
    before = cached[0].stat()
    second = client.get(f"/plots/{version}/lc.png")
    after = cached[0].stat()
    assert (after.st_ino, after.st_mtime_ns) == (before.st_ino, before.st_mtime_ns)
    assert second.data == first.data and second.headers["ETag"] == first.headers["ETag"]
    assert "max-age=86400" in second.headers["Cache-Control"]
    revalidated = client.get(f"/plots/{version}/lc.png",
                             headers={"If-None-Match": first.headers["ETag"]})
    assert revalidated.status_code == 304
    assert not list(cache_dir(resources).glob(".tmp-*")), "a temporary file was left behind"


def test_long_light_curve_is_binned_for_drawing(resources, client, tmp_path):
    time = np.arange(50_000) * (120 / 86400)
    flux = 1 + 1e-4 * np.sin(time)
    path = write_lightcurve(LightCurve(time, flux), tmp_path / "long.fits")
    version = put(resources, "inbox/long.fits", path.read_bytes())
    data = client.get(f"/api/plots/{version}/lc").get_json()
    assert data["binned"] and data["n_samples"] == 50_000 and data["n_points"] <= plots.MAX_POINTS
    x = np.array(data["x"]["values"])
    assert x[0] >= time[0] and x[-1] <= time[-1] and np.all(np.diff(x) > 0)
    assert client.get(f"/plots/{version}/lc.png").data.startswith(PNG_MAGIC)


def test_envelope_keeps_every_peak():
    x = np.linspace(0.5, 10, 100_000)
    y = np.zeros_like(x)
    y[[7, 33_333, 99_998]] = [3.0, 5.0, 4.0]
    ex, ey = plots.envelope(x, y, 1000)
    assert ex.size <= 1000 and np.all(np.diff(ex) > 0)
    assert sorted(ey[ey > 0]) == [3.0, 4.0, 5.0]


def test_a_file_that_is_not_a_light_curve_is_422_naming_it(resources, client):
    version = put(resources, "inbox/notes.csv", b"hello,world\nthis is not,a light curve\n")
    response = client.get(f"/plots/{version}/lc.png")
    assert response.status_code == 422 and response.mimetype == "text/plain"
    message = response.get_data(as_text=True)
    assert message.startswith("inbox/notes.csv: not a readable light curve")
    api = client.get(f"/api/plots/{version}/lc")
    assert api.status_code == 422 and api.get_json()["error"] == message
    # the page now shows the message instead of an image
    page = client.get("/products/file/inbox/notes.csv").get_data(as_text=True)
    assert not tags(page, "img", class_="plot") and message in unescape(page)
    # every image that fails later is replaced by the server's message by the page's script
    assert tags(page, "script", src="/static/plots.js")
    assert "easPlotFailed" in client.get("/static/plots.js").get_data(as_text=True)


def test_corrupt_fits_and_wrong_kinds_are_422(resources, client, searched):
    corrupt = put(resources, "inbox/broken.fits", b"SIMPLE  = garbage" + b"\0" * 100)
    response = client.get(f"/plots/{corrupt}/lc.png")
    assert response.status_code == 422
    assert response.get_data(as_text=True).startswith("inbox/broken.fits: ")
    lc_version = latest_version(resources, searched["lc"])
    not_periodogram = client.get(f"/plots/{lc_version}/periodogram.png")
    assert not_periodogram.status_code == 422
    assert "not a periodogram" in not_periodogram.get_data(as_text=True)
    pg_version = latest_version(resources, searched["periodogram"])
    not_lc = client.get(f"/plots/{pg_version}/lc.png")
    assert not_lc.status_code == 422 and searched["periodogram"] in not_lc.get_data(as_text=True)


def test_folded_without_a_search_is_404_and_not_shown(resources, client, tmp_path):
    lc = LightCurve(np.arange(100) * 0.02, np.ones(100))
    version = put(resources, "inbox/quiet.fits", write_lightcurve(lc, tmp_path / "q.fits").read_bytes())
    response = client.get(f"/plots/{version}/folded.png")
    assert response.status_code == 404
    assert "no search that read it recorded a period and an epoch" in response.get_data(as_text=True)
    page = client.get("/products/file/inbox/quiet.fits").get_data(as_text=True)
    assert [i["src"] for i in tags(page, "img", class_="plot")] == [f"/plots/{version}/lc.png"]


def test_folded_with_a_task_that_did_not_read_the_file_is_404(resources, client, searched):
    version = latest_version(resources, searched["lc"])
    other = searched["task_id"] + 100
    response = client.get(f"/plots/{version}/folded.png?task={other}")
    assert response.status_code == 404 and f"task {other} did not read it" in response.get_data(as_text=True)
    bad = client.get(f"/plots/{version}/folded.png?task=x")
    assert bad.status_code == 400 and "task must be a task id, a whole number" in bad.get_data(as_text=True)


def test_unknown_plot_kind_or_version_is_404(resources, client):
    version = put(resources, "inbox/a.csv", b"0,1\n1,1\n")
    kind = client.get(f"/plots/{version}/spectrum.png")
    assert kind.status_code == 404
    assert "no plot kind 'spectrum'; kinds: lc, folded, periodogram" in kind.get_data(as_text=True)
    missing = client.get("/api/plots/999/lc")
    assert missing.status_code == 404 and missing.get_json() == {"error": "no product version 999"}


def test_plot_of_an_overwritten_version_is_410(resources, client):
    old = put(resources, "inbox/a.csv", b"0,1\n1,1\n2,1\n")
    put(resources, "inbox/a.csv", b"0,1\n1,1\n2,2\n")
    response = client.get(f"/plots/{old}/lc.png")
    assert response.status_code == 410 and "no longer in the object store" in response.get_data(as_text=True)


def test_files_without_a_preview_show_none(resources, client):
    put(resources, "jobs/spec.json", b"{}")
    page = client.get("/products/file/jobs/spec.json").get_data(as_text=True)
    assert not tags(page, "img") and "No preview for this kind of file." in page


# ---------------------------------------------------------------------- escaping
def test_names_are_text_everywhere_and_keys_are_quoted_in_links(resources, client):
    version = put(resources, EVIL, b"0,1\n1,1\n")
    top = client.get("/products?prefix=inbox/").get_data(as_text=True)
    assert "<script>" not in top and "&lt;script&gt;alert(1)&lt;/" in top
    directory = client.get("/api/products?prefix=inbox/").get_json()["items"][0]
    assert directory["url"] == "/products?prefix=inbox/%3Cscript%3Ealert(1)%3C/"
    assert tags(top, "a", href=directory["url"])
    inner = client.get(directory["url"]).get_data(as_text=True)
    assert "<script>" not in inner and tags(inner, "a", href=EVIL_URL)
    page = client.get(EVIL_URL)
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert "<script>alert" not in html and "&lt;script&gt;alert(1)&lt;/script&gt;.csv" in html
    assert tags(html, "a", href="/products?prefix=inbox/%3Cscript%3Ealert(1)%3C/")
    download = client.get(f"/products/download/{version}")
    assert download.data == b"0,1\n1,1\n"
    assert download.headers["Content-Disposition"] == 'attachment; filename="script>.csv"'
    data = client.get(f"/api/plots/{version}/lc").get_json()
    assert data["key"] == EVIL
    assert json.loads(client.get("/api" + EVIL_URL).data)["product"]["key"] == EVIL
    missing = client.get("/products/file/%3Cb%3Enope%3C/b%3E").get_data(as_text=True)
    assert "<b>" not in missing and "&lt;b&gt;nope" in missing


def test_plot_titles_with_dollar_signs_render(resources, client, tmp_path):
    lc = LightCurve(np.arange(50) * 0.1, np.ones(50))
    version = put(resources, "inbox/$x$_cost$.fits",
                  write_lightcurve(lc, tmp_path / "d.fits").read_bytes())
    response = client.get(f"/plots/{version}/lc.png")
    assert response.status_code == 200 and response.data.startswith(PNG_MAGIC)
    assert io.BytesIO(response.data).getbuffer().nbytes > 1000


def test_an_overwritten_version_with_a_store_version_is_still_served(resources, client):
    """The local store keeps each version's bytes: a version recorded with its store version id
    downloads and plots after the key was overwritten."""
    old_info = resources.store.put_bytes("inbox/kept.csv", b"0,1\n1,1\n2,1\n")
    old = record(resources, "inbox/kept.csv", etag=old_info.etag, size=old_info.size)
    with resources.db.session() as s:
        s.get(ProductVersion, old).object_version = old_info.version_id
    put(resources, "inbox/kept.csv", b"0,1\n1,1\n2,2\n")
    response = client.get(f"/products/download/{old}")
    assert response.status_code == 200 and response.data == b"0,1\n1,1\n2,1\n"
    assert client.get(f"/plots/{old}/lc.png").status_code == 200
    versions = client.get("/api/products/file/inbox/kept.csv").get_json()["versions"]["items"]
    assert [v["held"] for v in versions] == [True, True]


def test_a_version_recorded_under_a_key_the_store_refuses_is_410_not_500(resources, client):
    """Keys are checked where they enter now; a row recorded before that, under a key the store
    refuses, is answered 410 (the store cannot serve it), never 500."""
    version = record(resources, "inbox/../../etc/passwd", etag="0" * 32)
    for url in (f"/products/download/{version}", f"/plots/{version}/lc.png", f"/api/plots/{version}/lc"):
        answer = client.get(url)
        assert answer.status_code == 410, (url, answer.status_code)
        assert "invalid object key" in answer.get_data(as_text=True)
