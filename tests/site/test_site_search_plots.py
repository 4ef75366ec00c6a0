"""A search's task page shows what it found first: its periodogram and the light curve it read
folded at the period and epoch it found, drawn from its own products (issue 14, item 6, part 2)."""
from __future__ import annotations

import struct

from eas_runtime.site import plots
from tests.site.pages_helpers import Rows
from tests.site.test_site_products import PNG_MAGIC, client, latest_version, searched, tags  # noqa: F401


def png_size(data: bytes) -> tuple[int, int]:
    """Width and height [px] from a PNG's IHDR chunk."""
    assert data.startswith(PNG_MAGIC) and data[12:16] == b"IHDR"
    return struct.unpack(">II", data[16:24])


def test_a_search_task_shows_its_periodogram_and_fold(resources, client, searched):  # noqa: F811
    task = searched["task_id"]
    lc_version = latest_version(resources, searched["lc"])
    pg_version = latest_version(resources, searched["periodogram"])
    data = client.get(f"/api/tasks/{task}").get_json()
    assert data["search"]["attempt_id"] == searched["attempt_id"]
    assert data["search"]["values"]["period"] == searched["results"]["period"]
    assert data["search"]["units"]["period"] == "d"
    assert [(p["kind"], p["version_id"], p["png"]) for p in data["plots"]] == [
        ("folded", lc_version, f"/plots/{lc_version}/folded.png?task={task}"),
        ("periodogram", pg_version, f"/plots/{pg_version}/periodogram.png")]
    page = client.get(f"/tasks/{task}").get_data(as_text=True)
    # the plots come before the parameters and the attempts
    assert page.index('id="search-plots"') < page.index("<h2>Parameters and metadata</h2>") \
        < page.index("<h2>Attempts</h2>")
    images = tags(page, "img", class_="plot")
    assert [i["src"] for i in images] == [p["png"] for p in data["plots"]]
    assert all((i["width"], i["height"]) == tuple(str(n) for n in plots.PIXELS) for i in images)
    found = page[page.index('<div id="found">'):page.index("</div>", page.index('<div id="found">'))]
    assert '<td>period</td><td class="num">%.6g</td><td class="unit">d</td>' % searched["results"]["period"] in found
    # what was found, in the order a reader looks for it: period, epoch, duration, depth...
    names = [row.split("</td>")[0] for row in found.split("<tr><td>")[1:]]
    assert names[:4] == ["period", "epoch", "duration", "depth"]
    for image in images:
        response = client.get(image["src"])
        assert response.status_code == 200 and png_size(response.data) == plots.PIXELS
    fold = client.get(data["plots"][0]["json"]).get_json()
    assert fold["search"]["task_id"] == task and fold["search"]["period"] == searched["results"]["period"]


def test_a_task_that_found_no_period_shows_no_search_plots(resources, client):  # noqa: F811
    rows = Rows(resources.db)
    task = rows.task(rows.job(), "verify")
    rows.attempt(task, results={"n_samples": 10, "gaps": 0})
    data = client.get(f"/api/tasks/{task}").get_json()
    assert data["search"] is None and data["plots"] == []
    assert 'id="search-plots"' not in client.get(f"/tasks/{task}").get_data(as_text=True)


def test_a_search_that_found_no_period_still_shows_its_periodogram(resources, client):  # noqa: F811
    from tests.site.test_site_products import record

    rows = Rows(resources.db)
    task = rows.task(rows.job(), "planet_search")
    attempt = rows.attempt(task, results={"n_candidates": 1, "n_periodic": 0, "period": None,
                                          "epoch": 1.5})
    version = record(resources, "processed/x/planet_search_periodogram.fits", etag="p" * 32,
                     attempt_id=attempt, semantic_type="periodogram")
    data = client.get(f"/api/tasks/{task}").get_json()
    assert data["search"] is None
    assert [(p["kind"], p["version_id"]) for p in data["plots"]] == [("periodogram", version)]
    page = client.get(f"/tasks/{task}").get_data(as_text=True)
    assert 'id="search-plots"' in page and "No periodic signal: no period to fold at." in page
    assert [i["src"] for i in tags(page, "img", class_="plot")] == [f"/plots/{version}/periodogram.png"]
