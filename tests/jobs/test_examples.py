"""Every example job: compiles, round-trips through the task database, and has the prototype's
task counts."""
from __future__ import annotations

import copy
import json
from collections import Counter

import pytest
from sqlalchemy import func, select

from eas_runtime.control import watch
from eas_runtime.db.models import DONE, WAITING, Job, Task, TaskInput, TaskMetadataInput, TaskOutput
from eas_runtime.jobs import compile_job, insert_job
from eas_runtime.jobs.compiler import CHAIN
from eas_runtime.jobs.tree import summary
from tests.jobs.conftest import EXAMPLES, load
from tests.jobs.prototype_model import Model

EXAMPLE_FILES = sorted(p.name for p in EXAMPLES.glob("*.json"))
TEMPLATES = {"standard_search.json", "star_chain.json", "star_search.json"}
BIG = {"detection_grid_2d.json"}          # compiled in test_compiler; too large to insert in every run
#: Innermost chains (the experiment's grid points) per example.
GRID = {"earth_vs_size_batman.json": 40, "earth_vs_size_psls.json": 40, "hot_jupiter_vs_size_batman.json": 60,
        "hot_jupiter_vs_size_psls.json": 60, "earth_vs_snr.json": 10, "christiansen2016_20210223.json": 500,
        "christiansen2016_20210224.json": 500, "christiansen2016_20210225.json": 864, "detection_grid_1d.json": 60,
        "detection_grid_2d.json": 20_736, "tls_timing_full_span.json": 45, "bls_timing_full_span.json": 45,
        "tls_timing_long_periods.json": 21, "bls_timing_long_periods.json": 21, "if_then_else.json": 8,
        "while_loop.json": 8, "qats_test.json": 10, "ingest_lcsg.json": 3, "control_flow_demo.json": 2}


def _compile(name):
    spec = load(EXAMPLES / name)
    if name in TEMPLATES:
        return spec, watch.compile_template(spec, "inbox/", "inbox/star.csv", "0123456789abcdef")
    return spec, compile_job(copy.deepcopy(spec))


def test_every_example_is_listed_in_the_readme():
    readme = (EXAMPLES / "README.md").read_text()
    assert EXAMPLE_FILES and all(f"`{name}`" in readme or f"`{name.split('_2021')[0]}" in readme
                                 for name in EXAMPLE_FILES)
    assert set(GRID) | TEMPLATES == set(EXAMPLE_FILES)


@pytest.mark.parametrize("name", [n for n in EXAMPLE_FILES if n not in TEMPLATES | BIG])
def test_example_counts_match_the_prototype(name):
    spec, compiled = _compile(name)
    innermost = [t for t in compiled.walk() if t.task_type == CHAIN and "@" in t.path.rsplit(".", 1)[-1]
                 and not any(c.task_type == "execution_for_loop" for c in t.children)]
    assert len(innermost) == GRID[name]
    counts = Counter({**compiled.task_counts(), **compiled.control_counts()})
    counts[CHAIN] += 1                                                      # the prototype's root chain
    model = Model(decide=lambda row: False)
    expected = model.run_job(copy.deepcopy(spec))
    for part in summary(compiled)["deferred"]:
        if part["task_type"] == "execution_conditional":                # decided: the else branch
            counts[CHAIN] += part["count"]
            counts.update({t: n * part["count"] for t, n in part["branches"]["else_task_list"]["task_counts"].items()})
    assert counts == +expected


@pytest.mark.parametrize("name", [n for n in EXAMPLE_FILES if n not in BIG])
def test_example_round_trips_through_the_task_database(name, resources):
    spec, compiled = _compile(name)
    again = json.loads(json.dumps(spec))
    assert summary(_compile(name)[1]) == summary(compiled)                 # compiling is repeatable
    with resources.db.session() as s:
        job, created = insert_job(s, compiled, source_event=f"test {name}", spec=again,
                                  stat=lambda key: object())             # every external input exists
        job_id = job.id
    assert created
    with resources.db.read() as s:
        rows = s.scalars(select(Task).where(Task.job_id == job_id).order_by(Task.id)).all()
        by_id = {t.id: t for t in rows}
        outputs = sorted(s.scalars(select(TaskOutput.key)))
        inputs = s.scalar(select(func.count()).select_from(TaskInput))
        sources = s.scalar(select(func.count()).select_from(TaskMetadataInput))
        stored = s.get(Job, job_id)
    planned = list(compiled.walk())
    assert [(t.path, t.task_type, t.name) for t in sorted(rows, key=lambda r: r.path)] == \
        sorted((t.path, t.task_type, t.name) for t in planned)
    assert Counter(t.task_type for t in rows) == Counter(t.task_type for t in planned)
    for row in rows:                                                        # parent links follow the paths
        if row.parent_id is not None:
            assert row.path.startswith(by_id[row.parent_id].path)
        assert row.state == (DONE if row.task_type in ("execution_chain", "execution_for_loop")
                             and not row.path.endswith(".repeat") else WAITING)
    assert outputs == sorted(k for t in planned for k in t.outputs.values())
    assert inputs == sum(len(t.inputs) for t in planned)
    assert sources == sum(len(t.requires) for t in planned)
    assert stored.spec == again and stored.name == compiled.job_name


def test_the_standard_search_example_is_the_packaged_standard_path():
    """`eas watch add` without --job uses the packaged template; the example is its copy."""
    from eas_runtime.cli import STANDARD_SEARCH
    assert json.loads((EXAMPLES / "standard_search.json").read_text()) == \
        json.loads(STANDARD_SEARCH.read_text())
    from eas_runtime.cli import STAR_SEARCH
    assert json.loads((EXAMPLES / "star_search.json").read_text()) == \
        json.loads(STAR_SEARCH.read_text())
