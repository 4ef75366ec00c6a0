"""/tasks (tree, depth, subtree), /tasks/running and /tasks/<id> with every attempt."""
from __future__ import annotations

import html

import pytest

from eas_runtime.db.models import ProductVersion, TaskInput, TaskOutput
from eas_runtime.db.products import ensure_product
from eas_runtime.site import create_app
from tests.site.pages_helpers import Rows, ago


@pytest.fixture
def tree(resources):
    """Job "grid": loop (depth 0) -> 3 chains (depth 1) -> 2 tasks each (depth 2); job "flat":
    a running task (fresh heartbeat) and a stalled one (heartbeat older than stall_s)."""
    rows = Rows(resources.db)
    grid, flat = rows.job("grid"), rows.job("flat")
    loop = rows.task(grid, "execution_for_loop", path="task_list[0]")
    chains, leaves = [], []
    for i in range(3):
        chain = rows.task(grid, "execution_chain", parent=loop, path=f"task_list[0].task_list[{i}]")
        chains.append(chain)
        for j, task_type in enumerate(("synthesis_batman", "verify")):
            leaves.append(rows.task(grid, task_type, parent=chain, state="waiting",
                                    path=f"task_list[0].task_list[{i}].task_list[{j}]"))
    running = rows.task(flat, "transit_search_tls", state="running")
    rows.attempt(running, state="running", started=ago(30), ended=None, heartbeat_at=ago(0.5))
    stalled = rows.task(flat, "transit_search_bls_reference", state="running")
    rows.attempt(stalled, state="running", started=ago(100), ended=None, heartbeat_at=ago(60))
    rows.task(flat, "verify", state="done")
    return {"client": create_app(resources).test_client(), "grid": grid, "flat": flat, "loop": loop,
            "chains": chains, "leaves": leaves, "running": running, "stalled": stalled, "rows": rows}


def ids(client, query):
    response = client.get(query)
    assert response.status_code == 200, response.get_data(as_text=True)
    return [(t["task_id"], t["depth"]) for t in response.get_json()["items"]]


def test_tree_is_depth_first_with_depths(tree):
    got = ids(tree["client"], f"/api/tasks?job={tree['grid']}")
    c, leaf = tree["chains"], tree["leaves"]
    assert got == [(tree["loop"], 0), (c[0], 1), (leaf[0], 2), (leaf[1], 2), (c[1], 1), (leaf[2], 2),
                   (leaf[3], 2), (c[2], 1), (leaf[4], 2), (leaf[5], 2)]
    everything = tree["client"].get("/api/tasks").get_json()
    assert everything["total"] == 13 and set(everything["jobs"]) == {str(tree["grid"]), str(tree["flat"])}


@pytest.mark.parametrize("depth, count", [(0, 1), (1, 4), (2, 10), (6, 10)])
def test_depth_limits(tree, depth, count):
    got = ids(tree["client"], f"/api/tasks?job={tree['grid']}&depth={depth}")
    assert len(got) == count and max(d for _, d in got) == min(depth, 2)


def test_subtree_drill_down(tree):
    chain = tree["chains"][1]
    assert ids(tree["client"], f"/api/tasks?subtree={chain}") == [(chain, 0), (tree["leaves"][2], 1),
                                                                   (tree["leaves"][3], 1)]
    assert ids(tree["client"], f"/api/tasks?subtree={tree['loop']}&depth=1") == \
        [(tree["loop"], 0)] + [(c, 1) for c in tree["chains"]]
    page = tree["client"].get(f"/tasks?subtree={chain}").get_data(as_text=True)
    assert f'href="/tasks?subtree={tree["loop"]}"' in page          # up to the parent
    assert f'href="/tasks/{tree["leaves"][2]}"' in page and 'table id="tasks"' in page


def test_tree_paging(tree):
    client = tree["client"]
    first = client.get(f"/api/tasks?job={tree['grid']}&page_size=4").get_json()
    last = client.get(f"/api/tasks?job={tree['grid']}&page_size=4&page=2").get_json()
    assert (first["pages"], first["total"]) == (3, 10)
    assert [t["task_id"] for t in last["items"]] == tree["leaves"][4:]
    page = client.get(f"/tasks?job={tree['grid']}&page_size=4&page=1").get_data(as_text=True)
    assert "page 2 of 3" in page and 'rel="prev"' in page and 'rel="next"' in page


@pytest.mark.parametrize("query, status, message", [
    ("depth=7", 400, "depth must be a whole number from 0 to 6"),
    ("depth=-1", 400, "depth must be a whole number from 0 to 6"),
    ("depth=deep", 400, "depth must be a whole number"),
    ("subtree=x", 400, "subtree must be a task id"),
    ("job=999", 404, "no job 999"),
    ("subtree=99999", 404, "no task 99999"),
])
def test_bad_tree_filters(tree, query, status, message):
    for path in ("/api/tasks", "/tasks", "/tasks/running"):
        response = tree["client"].get(f"{path}?{query}")
        assert response.status_code == status, path
        assert message in html.unescape(response.get_data(as_text=True)), path


def test_subtree_in_another_job_is_400(tree):
    response = tree["client"].get(f"/api/tasks?job={tree['flat']}&subtree={tree['loop']}")
    assert response.status_code == 400 and "not in job" in response.get_json()["error"]


def test_running_view(tree):
    data = tree["client"].get("/api/tasks/running").get_json()
    states = {t["task_id"]: t["state"] for t in data["items"]}
    assert states == {tree["running"]: "running", tree["stalled"]: "stalled"}
    assert tree["client"].get(f"/api/tasks/running?job={tree['grid']}").get_json()["items"] == []
    page = tree["client"].get("/tasks/running").get_data(as_text=True)
    assert "transit_search_tls" in page and "state-stalled" in page and "verify" not in page
    empty = tree["client"].get(f"/tasks/running?job={tree['grid']}").get_data(as_text=True)
    assert "No task is running." in empty


@pytest.fixture
def task_page(tree, resources):
    """A search task with two attempts (a lost one, then a finished one), an input and an
    output with versions, parameters, loop metadata, and 250 log lines."""
    rows, db = tree["rows"], resources.db
    task = rows.task(tree["flat"], "transit_search_tls", state="done", name="<i>search</i>",
                     params={"specs": {"duration": 3}}, metadata={"size": 0.5, "size_index": 2})
    first = rows.attempt(task, 1, started=ago(900), ended=ago(500), host="node-a", pid=11,
                         error_kind="infrastructure", error_text="Traceback (most recent call last):\nstalled: no heartbeat")
    second = rows.attempt(task, 2, started=ago(400), ended=ago(300), host="node-b", pid=22,
                          wall_s=99.5, cpu_s=97.25, cpu_children_s=0.0, all_products_passed_qc=True,
                          results={"period": 4.2, "outcome": "PASS", "slept_s": 1.5},
                          units={"period": "d"})
    with db.session() as s:
        for key, attempt in (("inbox/star a.fits", None), ("processed/star/periodogram.fits", second)):
            product = ensure_product(s, key)
            s.add(ProductVersion(product_id=product.id, etag="md5-" + key[-6:], size=321,
                                 passed_qc=True, attempt_id=attempt))
        s.add(TaskInput(task_id=task, semantic_name="lightcurve", key="inbox/star a.fits"))
        s.add(TaskOutput(task_id=task, semantic_name="periodogram", key="processed/star/periodogram.fits"))
    rows.log(first, [("ERROR", "lost <b>heartbeat</b>")], start=ago(800))
    rows.log(second, [("INFO" if i % 10 else "WARNING", f"line {i}") for i in range(249)], start=ago(350))
    return {**tree, "task": task, "attempts": (first, second)}


def test_task_page_shows_every_attempt(task_page):
    client, task = task_page["client"], task_page["task"]
    data = client.get(f"/api/tasks/{task}").get_json()
    assert [a["number"] for a in data["attempts"]] == [1, 2]
    assert data["attempts"][0]["error_kind"] == "infrastructure" and data["attempts"][1]["host"] == "node-b"
    assert data["attempts"][1]["metadata"] == {"period": 4.2, "outcome": "PASS", "slept_s": 1.5}
    assert data["params"] == {"specs": {"duration": 3}} and data["metadata"]["size_index"] == 2
    page = client.get(f"/tasks/{task}").get_data(as_text=True)
    # the attempts table ends where the log begins (results are small tables inside it)
    attempts = page[page.index('<table id="attempts">'):page.index('<h2 id="log">')]
    assert attempts.count('<tr class="attempt') == 2
    assert '<pre class="traceback">Traceback (most recent call last):\nstalled: no heartbeat</pre>' in attempts
    assert "node-a" in attempts and "node-b" in attempts and "99.5" in attempts
    # inputs and outputs link to the products area, keys quoted
    assert 'href="/products/file/inbox/star%20a.fits"' in page
    assert 'href="/products/file/processed/star/periodogram.fits"' in page
    assert "specs" in page and "size_index" in page
    assert "&lt;i&gt;search&lt;/i&gt;" in page and "<i>search</i>" not in page


def test_task_log_paging_and_severity(task_page):
    client, task = task_page["client"], task_page["task"]
    log = client.get(f"/api/tasks/{task}").get_json()["log"]
    assert (log["total"], log["pages"], len(log["items"])) == (250, 3, 100)
    assert log["items"][0]["text"] == "lost <b>heartbeat</b>"          # oldest first
    last = client.get(f"/api/tasks/{task}?log_page=2").get_json()["log"]
    assert [m["text"] for m in last["items"]][-1] == "line 248" and len(last["items"]) == 50
    warnings = client.get(f"/api/tasks/{task}?severity=WARNING").get_json()["log"]
    assert warnings["total"] == 26 and {m["severity"] for m in warnings["items"]} == {"WARNING", "ERROR"}
    page = client.get(f"/tasks/{task}?log_page=1").get_data(as_text=True)
    assert "log page 2 of 3" in page and "log_page=2" in page
    assert "lost &lt;b&gt;heartbeat&lt;/b&gt;" in client.get(f"/tasks/{task}").get_data(as_text=True)


def test_task_page_errors(task_page):
    client = task_page["client"]
    assert client.get("/tasks/424242").status_code == 404
    assert client.get("/api/tasks/424242").get_json() == {"error": "no task 424242"}
    bad = client.get(f"/api/tasks/{task_page['task']}?severity=LOUD")
    assert bad.status_code == 400 and "severity 'LOUD' is not one of" in bad.get_json()["error"]
    assert client.get(f"/api/tasks/{task_page['task']}?log_page=-2").status_code == 400


def test_task_type_is_escaped_in_the_tree(tree):
    rows = tree["rows"]
    rows.task(tree["flat"], "<script>alert(1)</script>", name="<b>n</b>")
    page = tree["client"].get("/tasks").get_data(as_text=True)
    assert "<script>alert" not in page and "&lt;script&gt;alert(1)&lt;/script&gt;" in page


def test_task_page_shows_results_as_a_table_with_units(task_page):
    """Results are rows of name, value and unit: the unit the function recorded (period: d),
    else the one the key's suffix names (slept_s: s); the JSON twin carries the same units."""
    client, task = task_page["client"], task_page["task"]
    data = client.get(f"/api/tasks/{task}").get_json()
    assert data["attempts"][1]["units"] == {"period": "d", "slept_s": "s"}
    page = client.get(f"/tasks/{task}").get_data(as_text=True)
    assert "period = 4.2" not in page
    assert ('<tr><td>period</td><td class="num">4.2</td><td class="unit">d</td></tr>') in page
    assert ('<tr><td>slept_s</td><td class="num">1.5</td><td class="unit">s</td></tr>') in page
    assert ('<tr><td>outcome</td><td class="num">PASS</td><td class="unit"></td></tr>') in page


def test_task_page_puts_the_cause_above_a_folded_traceback(task_page):
    client, task = task_page["client"], task_page["task"]
    data = client.get(f"/api/tasks/{task}").get_json()
    assert data["attempts"][0]["error_cause"] == "stalled: no heartbeat"
    page = client.get(f"/tasks/{task}").get_data(as_text=True)
    cause = page.index('<p class="cause fail">stalled: no heartbeat</p>')
    folded = page.index('<details class="traceback"><summary>traceback</summary><pre class="traceback">')
    assert cause < folded


def test_task_page_names_the_star_of_its_files(task_page, resources):
    """The star of a task's light curve is shown by its object name, its designation beside."""
    from sqlalchemy import update

    from eas_runtime.db.models import Product

    client, task = task_page["client"], task_page["task"]
    rows = task_page["rows"]
    with resources.db.session() as s:
        s.execute(update(Product).where(Product.key == "inbox/star a.fits").values(star_id="TIC 25155310"))
        version = s.query(ProductVersion.id).join(Product).filter(Product.key == "inbox/star a.fits").scalar()
    rows.metadata("version", version, {"object": "WASP-126"})
    assert client.get(f"/api/tasks/{task}").get_json()["star"] == {"star_id": "TIC 25155310", "name": "WASP-126"}
    page = client.get(f"/tasks/{task}").get_data(as_text=True)
    assert ('<tr><th>star</th><td><a class="star" href="/stars/TIC%2025155310"><strong>WASP-126</strong> '
            '<span class="muted">TIC 25155310</span></a></td></tr>') in page
