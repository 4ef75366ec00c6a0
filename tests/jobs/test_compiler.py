"""The job compiler: the prototype's files compile unchanged, to the prototype's task rows."""
from __future__ import annotations

import copy
import json
import os
import tempfile
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from eas_runtime.jobs import JobError, compile_job
from eas_runtime.jobs.compiler import CHAIN, CONTROL_FLOW, object_key
from eas_runtime.jobs.tree import render, summary
from tests.jobs.prototype_model import Model


def certain_rows(compiled) -> Counter:
    """Rows per type the prototype makes for the certain part, its root chain included."""
    counts = Counter({**compiled.task_counts(), **compiled.control_counts()})
    counts[CHAIN] += 1
    return counts


def test_every_prototype_job_file_compiles_unchanged_to_the_prototypes_rows(prototype_jobs):
    assert len(prototype_jobs) == 18
    for name, spec in prototype_jobs.items():
        if name.endswith("detection_grid_2d.json"):
            continue                                         # its own test below
        compiled = compile_job(copy.deepcopy(spec))
        model = Model(decide=lambda row: False)
        expected = model.run_job(copy.deepcopy(spec))
        got = certain_rows(compiled)
        for part in summary(compiled)["deferred"]:          # conditionals: the else branch, as decided
            if part["task_type"] == "execution_conditional":
                got[CHAIN] += part["count"]
                for t, n in part["branches"]["else_task_list"]["task_counts"].items():
                    got[t] += n * part["count"]
        assert got == +expected, name
        outputs = sorted(object_key(compiled.working_directory, f) for f in model.outputs)
        mine = sorted(k for t in compiled.walk() for k in t.outputs.values())
        mine += sorted(k for part in compiled.deferred for b in part.probes.values() for n in b
                       for t in n.walk() for k in t.outputs.values())
        assert sorted(mine) == outputs, name


@pytest.fixture(scope="module")
def grid_2d(request):
    from tests.conftest import SHARED
    spec = json.loads((SHARED / "prototype/jobs/feature_tests/detection_grid_2d.json").read_text())
    return spec, compile_job(copy.deepcopy(spec))


def test_the_2d_detection_grid_is_20736_chains(grid_2d):
    spec, compiled = grid_2d
    innermost = [t for t in compiled.walk() if t.task_type == CHAIN and t.children
                 and not any(c.is_control for c in t.children)]
    assert len(innermost) == 20_736 == 3 * 1 * 24 * 24 * 12
    assert [c.task_type for c in innermost[0].children] == [
        "synthesis_psls", "synthesis_batman", "multiply", "verify", "transit_search_tls"]
    counts = summary(compiled)
    assert counts["task_counts"] == {"multiply": 20736, "synthesis_batman": 20736, "synthesis_psls": 20736,
                                     "transit_search_bls_reference": 6912, "transit_search_qats": 6912,
                                     "transit_search_tls": 6912, "verify": 20736}
    assert counts["control_counts"] == {"execution_chain": 22542, "execution_for_loop": 1807}
    assert counts["rows"] == 128_029                         # the prototype: 128,030 with its root chain
    assert certain_rows(compiled) == Model().run_job(copy.deepcopy(spec))


def test_loop_indices_are_integers_and_values_follow_numpy(prototype_jobs):
    spec = prototype_jobs["202102_planet_detection_limit/earth_vs_size_batman.json"]
    compiled = compile_job(spec)
    keys = [k for t in compiled.walk() for k in t.outputs.values()]
    assert "earth_vs_size_batman/evsize_batman_1_0_9.gz" in keys
    assert not any(".0." in k or ".0_" in k for k in keys)
    leaves = [t for t in compiled.walk() if t.task_type == "synthesis_batman"]
    md = leaves[-1].params["metadata"]
    assert md["tda"] == "bls_reference" and md["tda_index"] == 1 and isinstance(md["tda_index"], int)
    assert md["cadence"] == 25 and isinstance(md["cadence"], int)            # values: as given
    sizes = [t.params["metadata"]["size"] for t in leaves[:10]]
    assert sizes == [float(v) for v in np.logspace(np.log10(0.08911486 / 4), np.log10(0.08911486 * 4), 10)]
    assert all(type(s) is float for s in sizes)
    assert leaves[3].params["specs"]["planet_radius"] == sizes[3]            # expressions in parameters
    assert leaves[3].params["specs"]["noise"] == 0.000315
    assert leaves[3].params["specs"]["sampling_cadence"] == 900
    search = [t for t in compiled.walk() if t.name == "transit_detection"]
    assert {t.task_type for t in search} == {"transit_search_tls", "transit_search_bls_reference"}


def test_linear_range_values_are_floats_end_included(prototype_jobs):
    compiled = compile_job(prototype_jobs["202102_christiansen16/christiansen2016_20210223.json"])
    impacts = sorted({t.params["metadata"]["impact"] for t in compiled.walk() if t.task_type == "verify"})
    assert impacts == [0.0, 0.25, 0.5, 0.75, 1.0] and all(type(v) is float for v in impacts)
    t = next(t for t in compiled.walk() if t.task_type == "synthesis_psls")
    assert t.params["specs"]["semi_major_axis"] == pytest.approx((0.5 / 365.25) ** (2 / 3))


def test_paths_parents_and_tree():
    job = {"job_name": "j", "working_directory": "w", "task_list": [
        {"task": "null", "name": "a", "outputs": {"x": "a.json"}},
        {"task": "execution_chain", "task_list": [
            {"task": "execution_for_loop", "parameter": "k", "values": [7, 8, 9],
             "task_list": [{"task": "null", "inputs": {"x": "a.json"},
                            "outputs": {"y": "'b_{k_index}_{k}.json'.format(**metadata)"}}]}]}]}
    compiled = compile_job(job)
    paths = [t.path for t in compiled.walk()]
    assert paths == ["task_list[0]", "task_list[1]", "task_list[1].task_list[0]",
                     "task_list[1].task_list[0]@0", "task_list[1].task_list[0]@0.task_list[0]",
                     "task_list[1].task_list[0]@1", "task_list[1].task_list[0]@1.task_list[0]",
                     "task_list[1].task_list[0]@2", "task_list[1].task_list[0]@2.task_list[0]"]
    last = list(compiled.walk())[-1]
    assert last.outputs == {"y": "w/b_2_9.json"} and last.inputs == {"x": "w/a.json"}
    assert last.params == {"metadata": {"k": 9, "k_index": 2}}
    text = "\n".join(render(compiled))
    assert "task_list[1].task_list[0]@1  execution_chain  k=8" in text
    assert "... 1 more iteration (2 tasks" in text


def test_files_from_the_store_root_and_overrides():
    job = {"working_directory": "runs/a", "task_list": [
        {"task": "verify", "inputs": {"lightcurve": "/inbox/x.fits"}},
        {"task": "verify", "working_directory": "other", "job_name": "special", "inputs": {"lightcurve": "../y.fits"}}]}
    first, second = compile_job(job).roots
    assert first.inputs == {"lightcurve": "inbox/x.fits"}
    assert second.inputs == {"lightcurve": "y.fits"} and second.job_name == "special"
    assert compile_job(job).external_inputs == {"inbox/x.fits": [("task_list[0].inputs.lightcurve", False)],
                                                "y.fits": [("task_list[1].inputs.lightcurve", False)]}


def test_top_level_job_name_and_folder_are_expressions():
    compiled = compile_job({"job_name": "'run_{n}'.format(**metadata)", "working_directory": "('out/' + metadata['n'])",
                            "task_list": [{"task": "null"}]}, metadata={"n": "x1"})
    assert (compiled.job_name, compiled.working_directory) == ("run_x1", "out/x1")


# ---------------------------------------------------------------------- errors name the path
def _error(job) -> str:
    with pytest.raises(JobError) as info:
        compile_job(job)
    return str(info.value)


@pytest.mark.parametrize("tasks, fragment", [
    ([{"task": "null", "outputs": {"x": "a"}}, {"task": "null", "outputs": {"x": "a"}}],
     "task_list[1].outputs.x: 'w/a' is already produced by task_list[0]"),
    ([{"task": "execution_for_loop", "parameter": "i", "values": [1, 2], "task_list": [
        {"task": "null", "outputs": {"x": "same.gz"}}]}],
     "task_list[0]@1.task_list[0].outputs.x: 'w/same.gz' is already produced by task_list[0]@0.task_list[0]"),
    ([{"task": "verify", "inputs": {"lightcurve": "b"}}, {"task": "null", "outputs": {"x": "b"}}],
     "task_list[0].inputs.lightcurve: 'w/b' is produced by task_list[1], which comes later"),
    ([{"task": "null", "requires_metadata_from": ["later"]}, {"task": "null", "name": "later"}],
     "task_list[0].requires_metadata_from: no earlier task named 'later'"),
    ([{"task": "null", "name": "a"}, {"task": "null", "name": "a"}], "task_list[1]: the name 'a' is already used"),
    ([{"task": "execution_chain", "task_list": [{"task": "null", "inputs": {"x": 3}}]}],
     "task_list[0].task_list[0].inputs.x: file name must be a non-empty string, got 3"),
    ([{"task": "execution_for_loop", "values": [1], "task_list": []}], "task_list[0].parameter"),
    ([{"task": "execution_for_loop", "parameter": "p", "values": [1], "linear_range": [0, 1, 2]}],
     "exactly one of values, linear_range, log_range"),
    ([{"task": "execution_for_loop", "parameter": "p", "log_range": [0, 1, 2]}], "must be positive"),
    ([{"task": "execution_for_loop", "parameter": "p", "linear_range": [0, 1, 2.5]}], "must be an integer"),
    ([{"task": "execution_for_loop", "parameter": "p", "linear_rnage": [0, 1, 2]}], "does not take ['linear_rnage']"),
    ([{"task": "execution_chain", "outputs": {"x": "y"}}], "control-flow tasks produce no files"),
    ([{"task": "null", "size": "(metadata['size'])"}], "task_list[0]: expression \"(metadata['size'])\" failed: no key"),
    ([{"task": "'transit_search_{tda}'.format(**metadata)"}], "task_list[0].task: expression"),
    ([{"task": "(1 + 1)"}], "task_list[0].task: 2 is not a task type name"),
    ([{"task": "null", "x": "(requested_metadata['a']['b'])"}], "reads requested_metadata but names no task"),
    ([{"task": "null", "outputs": {"x": "(requested_metadata['a'])"}}], "reads requested_metadata, which is not known"),
    ([{"task": "null", "metadata": {}}], "'metadata' is reserved"),
    ([{"task": "null", "task_list": []}], "belongs to control-flow tasks"),
    ([{"task": "null", "x": float("nan")}], "not a finite number"),
    ([{"task": "null", "x": "(__import__('os'))"}], "name '__import__' is not allowed"),
    ([{"task": "execution_conditional", "criterion": "(lambda: 1)", "task_list": []}],
     "task_list[0].criterion: expression '(lambda: 1)' is not allowed: lambda"),
    ([{"task": "execution_conditional", "task_list": []}], "task_list[0].criterion: missing"),
    ([{"task": "null", "name": "n", "outputs": {"x": "a"}}, {"task": "execution_conditional", "criterion": "(True)",
      "task_list": [{"task": "null", "outputs": {"x": "a"}}]}],
     "task_list[1].task_list[0].outputs.x: 'w/a' is already produced by task_list[0]"),
    ([{"task": "execution_conditional", "criterion": "(True)", "task_list": [{"task": "null", "outputs": {"x": "a"}}],
       "else_task_list": [{"task": "verify", "inputs": {"x": "a"}}]}], "in the other branch of the same conditional"),
    ([{"task": "execution_do_while_loop", "iteration_name": "it", "repeat_criterion": "(False)",
       "task_list": [{"task": "null", "outputs": {"x": "fixed.json"}}]}],
     "is the same in every iteration of the do-while loop; put {it_index} in its name"),
    ([{"task": "execution_do_while_loop", "iteration_name": "it", "repeat_criterion": "(False)",
       "requires_metadata_from_child": ["nobody"], "task_list": [{"task": "null", "name": "x"}]}],
     "requires_metadata_from_child: no task named ['nobody']"),
    ([{"task": "execution_do_while_loop", "iteration_name": "bad name", "repeat_criterion": "(1)"}], "iteration_name"),
    ([{"task": "null", "wait_for_upload": "yes"}], "wait_for_upload: must be true, false or a list"),
    ([{"task": "null", "inputs": {"x": "../../outside"}}], "does not name an object in the store"),
    ([{"task": "null", "name": "('n' * 300)"}], "task_list[0].name: 'nnn"),
    ([{"task": "null", "outputs": {"x": "('f' * 1200)"}}], "the object key is longer than 1000 characters"),
    ([{"task": "null", "inputs": {"('s' * 101)": "x"}}], "is 101 characters long; the limit is 100"),
])
def test_defects_are_reported_with_the_tasks_path(tasks, fragment):
    assert fragment in _error({"working_directory": "w", "task_list": tasks})


def test_top_level_defects():
    assert "a job description is a JSON object" in _error([1])
    assert "unknown top-level keys ['tasks']" in _error({"tasks": []})
    assert "task_list: a job needs a task_list" in _error({})
    assert "task_list: must be a list of tasks" in _error({"task_list": {"task": "null"}})
    assert "working_directory" in _error({"working_directory": "../up", "task_list": []})


def test_branches_of_one_conditional_may_make_the_same_file_and_later_tasks_may_read_it():
    compiled = compile_job({"working_directory": "w", "task_list": [
        {"task": "null", "name": "a"},
        {"task": "execution_conditional", "requires_metadata_from": ["a"], "criterion": "(requested_metadata['a']['ok'])",
         "task_list": [{"task": "null", "outputs": {"r": "result.json"}}],
         "else_task_list": [{"task": "null", "outputs": {"r": "result.json"}}]},
        {"task": "verify", "inputs": {"x": "result.json"}}]})
    assert compiled.external_inputs == {} and compiled.deferred_outputs == {"w/result.json": "task_list[1].task_list[0]"}
    assert [t.path for t in compiled.walk()] == ["task_list[0]", "task_list[1]", "task_list[2]"]


def test_parameters_that_read_requested_metadata_are_bound_later():
    compiled = compile_job({"task_list": [
        {"task": "null", "name": "a"},
        {"task": "null", "requires_metadata_from": ["a"], "duration": "(requested_metadata['a']['slept_s'] * 2)",
         "fixed": "(1 + 1)"}]})
    late = compiled.roots[1]
    assert late.late and late.params == {"duration": "(requested_metadata['a']['slept_s'] * 2)", "fixed": "(1 + 1)"}
    assert "(parameters bound at run time)" in "\n".join(render(compiled))


def test_wait_for_upload_flags():
    job = {"working_directory": "w", "task_list": [
        {"task": "verify", "inputs": {"lightcurve": "a"}},
        {"task": "verify", "wait_for_upload": True, "inputs": {"lightcurve": "b"}},
        {"task": "multiply", "wait_for_upload": ["lightcurve_2"], "inputs": {"lightcurve_1": "c", "lightcurve_2": "d"}},
        {"task": "execution_chain", "wait_for_upload": True, "task_list": [{"task": "verify", "inputs": {"x": "e"}}]}]}
    external = compile_job(job).external_inputs
    assert {k: [w for _, w in v] for k, v in external.items()} == {
        "w/a": [False], "w/b": [True], "w/c": [False], "w/d": [True], "w/e": [True]}
    everything = compile_job({**job, "wait_for_upload": True}).external_inputs      # a task's own setting wins
    assert {k: [w for _, w in v] for k, v in everything.items()} == {
        "w/a": [True], "w/b": [True], "w/c": [False], "w/d": [True], "w/e": [True]}
    no_folder = compile_job({"task_list": [{"task": "verify", "inputs": {"x": "later/lc.fits"}}]})
    assert no_folder.external_inputs == {"later/lc.fits": [("task_list[0].inputs.x", True)]}


def test_dry_run_counts_do_while_first_iteration_and_lists_conditional_branches(prototype_jobs):
    s = summary(compile_job(prototype_jobs["feature_tests/while_loop.json"]))
    assert s["task_counts"] == {"synthesis_psls": 8, "transit_search_tls": 8, "verify": 8}
    assert s["control_counts"] == {"execution_chain": 18, "execution_do_while_loop": 16, "execution_for_loop": 3}
    (part,) = s["deferred"]
    assert part["count"] == 8 and part["path"] == "task_list[0]@*.task_list[0]@*.task_list[0]@*.task_list[1]"
    s = summary(compile_job(prototype_jobs["feature_tests/if_then_else.json"]))
    (part,) = s["deferred"]
    assert part["branches"] == {"task_list": {"task_counts": {"null": 1}, "control_counts": {}},
                                "else_task_list": {"task_counts": {"null": 3}, "control_counts": {}}}
    assert s["tasks"] == 24 and s["rows"] == 45


# ---------------------------------------------------------------------- hypothesis: never a crash
MARKER = Path(tempfile.gettempdir()) / f"eas-job-marker-{os.getpid()}"
EXPRESSIONS = [f"(open({str(MARKER)!r}, 'w'))", f"(__import__('pathlib').Path({str(MARKER)!r}).touch())",
               "(metadata['i'])", "'{i_index}.gz'.format(**metadata)", "(requested_metadata['a']['x'])",
               "(__import__('os'))", "(1/0)", "(constants.Rearth * 2)", "('a' * 10**9)", "(lambda: 0)",
               "(random.random())", "'{0.__class__}'.format(1)", "(", "plain", "((1, 2))", "(metadata)"]
scalars = (st.sampled_from(EXPRESSIONS) | st.text(max_size=12) | st.integers(-5, 30)
           | st.floats(allow_nan=True, allow_infinity=True) | st.booleans() | st.none())
names = st.sampled_from(["a", "b", "c", "", "i"])
task_types = st.sampled_from(sorted(CONTROL_FLOW) + ["null", "verify", "'x_{i}'.format(**metadata)", "", 7])
keys = st.sampled_from(["task", "name", "inputs", "outputs", "requires_metadata_from", "task_list",
                        "else_task_list", "parameter", "values", "linear_range", "log_range", "criterion",
                        "iteration_name", "repeat_criterion", "requires_metadata_from_child", "wait_for_upload",
                        "working_directory", "job_name", "specs", "metadata", "lc_duration"])


def _task(children):
    files = st.dictionaries(st.sampled_from(["x", "y", "lightcurve"]), scalars, max_size=2)
    return st.fixed_dictionaries(
        {"task": task_types},
        optional={"name": names, "inputs": files | scalars, "outputs": files | scalars,
                  "requires_metadata_from": st.lists(names, max_size=2) | scalars,
                  "task_list": st.lists(children, max_size=3) | scalars,
                  "else_task_list": st.lists(children, max_size=2), "parameter": st.just("i") | scalars,
                  "values": st.lists(scalars, max_size=4) | scalars,
                  "linear_range": st.lists(scalars, min_size=3, max_size=3) | st.just([0, 1, 3]),
                  "criterion": scalars, "iteration_name": st.just("it") | scalars,
                  "repeat_criterion": scalars, "requires_metadata_from_child": st.lists(names, max_size=2),
                  "specs": st.dictionaries(st.text(max_size=5), scalars, max_size=3),
                  "wait_for_upload": st.booleans() | scalars, "other": scalars})


job_entries = st.recursive(st.fixed_dictionaries({"task": task_types}), _task, max_leaves=12)
jobs = st.fixed_dictionaries({"task_list": st.lists(job_entries, max_size=4)},
                             optional={"job_name": scalars, "working_directory": scalars,
                                       "wait_for_upload": scalars}) | st.dictionaries(keys, scalars, max_size=3)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(jobs)
def test_generated_job_files_compile_or_fail_with_a_job_error(job):
    try:
        compiled = compile_job(job)
    except JobError as exc:
        assert str(exc)
    else:
        summary(compiled)
        render(compiled)
    assert not MARKER.exists()
