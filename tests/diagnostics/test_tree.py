"""The job tree: depth-first order, depth limit, subtree, running only, paging across jobs."""
from __future__ import annotations

import random

import pytest

from eas_runtime import diagnostics as diag
from eas_runtime.db.models import A_RUNNING


def _forest(rows, n_tasks=160, n_jobs=5, seed=7):
    """Jobs whose tasks are created interleaved (as loops unrolled later would be); returns
    {task_id: (job_id, parent_id)} and the job ids."""
    rng = random.Random(seed)
    jobs = [rows.job(f"job{j}") for j in range(n_jobs)]
    tasks: dict[int, tuple[int, int | None]] = {}
    for i in range(n_tasks):
        job = rng.choice(jobs)
        mine = [t for t, (j, _) in tasks.items() if j == job]
        parent = rng.choice(mine) if mine and rng.random() < 0.7 else None
        state = "running" if rng.random() < 0.1 else "done"
        tid = rows.task(job, f"type{i % 3}", parent=parent, name=f"t{i}", path=f"p{i}", state=state)
        if state == "running":
            rows.attempt(tid, state=A_RUNNING, heartbeat_age_s=5)
        tasks[tid] = (job, parent)
    return tasks, jobs


def _expected(tasks, jobs, roots=None, max_depth=None):
    """Depth-first order computed independently: [(task_id, depth)]."""
    children: dict[int | None, list[int]] = {}
    for tid, (_, parent) in sorted(tasks.items()):
        children.setdefault(parent, []).append(tid)
    out = []

    def visit(tid, depth):
        if max_depth is not None and depth > max_depth:
            return
        out.append((tid, depth))
        for c in children.get(tid, []):
            visit(c, depth + 1)
    if roots is not None:
        for r in roots:
            visit(r, 0)
        return out
    for job in sorted(jobs):
        for r in children.get(None, []):
            if tasks[r][0] == job:
                visit(r, 0)
    return out


def _all_pages(db, page_size, **filters):
    got, page = [], 0
    while True:
        data = diag.tree(db, page=page, page_size=page_size, **filters)
        got += [(i["task_id"], i["depth"]) for i in data["items"]]
        if page + 1 >= data["pages"]:
            return got, data["total"]
        page += 1


@pytest.mark.parametrize("page_size", [1, 7, 1000])
def test_pages_together_are_the_depth_first_order(db, rows, page_size):
    tasks, jobs = _forest(rows)
    got, total = _all_pages(db, page_size)
    assert got == _expected(tasks, jobs)
    assert total == len(tasks)


@pytest.mark.parametrize("depth", [0, 1, 2, 6])
def test_depth_limit(db, rows, depth):
    tasks, jobs = _forest(rows)
    got, total = _all_pages(db, 9, depth=depth)
    want = _expected(tasks, jobs, max_depth=depth)
    assert got == want and total == len(want)


def test_one_job_and_a_subtree(db, rows):
    tasks, jobs = _forest(rows)
    job = jobs[2]
    got, _ = _all_pages(db, 5, job_id=job)
    assert got == _expected({t: v for t, v in tasks.items() if v[0] == job}, [job])
    inner = next(t for t, (_, p) in sorted(tasks.items()) if p is not None and
                 any(q == t for _, q in tasks.values()))          # a task with a parent and children
    got, _ = _all_pages(db, 4, subtree=inner)
    assert got == _expected(tasks, jobs, roots=[inner])
    got, _ = _all_pages(db, 4, subtree=inner, depth=1)
    assert got == _expected(tasks, jobs, roots=[inner], max_depth=1)


def test_running_only_keeps_running_tasks_at_their_depth(db, rows):
    tasks, jobs = _forest(rows)
    full = dict(_expected(tasks, jobs))
    order = [t for t, _ in _expected(tasks, jobs)]
    data = diag.tree(db, running_only=True, page_size=1000)
    items = data["items"]
    assert items and all(i["state"] == "running" for i in items)
    assert [i["task_id"] for i in items] == [t for t in order if _is_running(db, t)]
    assert all(i["depth"] == full[i["task_id"]] for i in items)
    assert data["total"] == len(items)
    two, _ = _all_pages(db, 2, running_only=True)        # paged the same way
    assert [t for t, _ in two] == [i["task_id"] for i in items]
    one_job = diag.tree(db, running_only=True, job_id=jobs[0])["items"]
    assert {i["job_id"] for i in one_job} <= {jobs[0]}


def _is_running(db, task_id):
    return diag.task_detail(db, task_id)["stored_state"] == "running"


def test_a_running_task_with_a_late_heartbeat_shows_as_stalled_in_the_running_view(db, rows):
    job = rows.job()
    loop = rows.task(job, "execution_for_loop", state="done")
    late = rows.task(job, "verify", parent=loop, state="running")
    rows.attempt(late, state=A_RUNNING, heartbeat_age_s=10_000)
    items = diag.tree(db, running_only=True)["items"]
    assert [(i["task_id"], i["depth"], i["state"]) for i in items] == [(late, 1, "stalled")]


def test_item_fields_and_job_names(db, rows):
    job = rows.job("grid")
    loop = rows.task(job, "execution_for_loop", name="loop", path="task_list[0]", state="done")
    child = rows.task(job, "verify", parent=loop, name="v", path="task_list[0].task_list[0]", state="failed")
    rows.attempt(child, error_kind="science")
    rows.attempt(child, error_kind="science")
    data = diag.tree(db)
    assert data["items"][1] == {"task_id": child, "job_id": job, "parent_id": loop, "depth": 1,
                                "task_type": "verify", "name": "v", "state": "failed", "attempts": 2,
                                "path": "task_list[0].task_list[0]"}
    assert data["jobs"] == {str(job): {"name": "grid", "cancelled": False}}
    assert {"page", "page_size", "total", "pages", "filters"} <= set(data)


def test_bad_arguments(db, rows):
    with pytest.raises(diag.DiagnosticsError, match="depth"):
        diag.tree(db, depth=7)
    with pytest.raises(diag.DiagnosticsError, match="page_size"):
        diag.tree(db, page_size=0)
    with pytest.raises(diag.DiagnosticsError, match="page"):
        diag.tree(db, page=-1)
    with pytest.raises(diag.NotFound, match="no task 99"):
        diag.tree(db, subtree=99)
    other = rows.task(rows.job(), "x")
    with pytest.raises(diag.DiagnosticsError, match="not in job"):
        diag.tree(db, subtree=other, job_id=rows.job())
    assert diag.tree(db, page=5)["items"] == []
    with pytest.raises(diag.NotFound, match="no job 4242"):
        diag.tree(db, job_id=4242)


def test_running_only_within_a_subtree_and_a_depth(db, rows):
    job = rows.job()
    outer = rows.task(job, "execution_for_loop", state="done")
    inner = rows.task(job, "execution_for_loop", parent=outer, state="done")
    deep = rows.task(job, "verify", parent=inner, state="running")
    shallow = rows.task(job, "verify", parent=outer, state="running")
    elsewhere = rows.task(job, "verify", state="running")
    for t in (deep, shallow, elsewhere):
        rows.attempt(t, state=A_RUNNING, heartbeat_age_s=1)
    view = lambda **kw: [(i["task_id"], i["depth"]) for i in diag.tree(db, running_only=True, **kw)["items"]]  # noqa: E731
    assert view() == [(deep, 2), (shallow, 1), (elsewhere, 0)]
    assert view(subtree=outer) == [(deep, 2), (shallow, 1)]
    assert view(subtree=inner) == [(deep, 1)]
    assert view(depth=1) == [(shallow, 1), (elsewhere, 0)]
    assert view(subtree=outer, depth=1) == [(shallow, 1)]
    assert view(subtree=deep) == [(deep, 0)]
