"""Defect 3 of issue 11: the expression sandbox could be made to build and store huge values.

``([[0]*100000]*1000)`` (1,000 references to one list of 100,000) passed the per-list limit;
printing, summing or storing it took minutes and gigabytes. Now every value is sized deeply
before it is made, and the job, each task row and the description are bounded, on both routes
a job takes (``POST /api/jobs`` and a ``job.submitted`` event to eas-control).
"""
from __future__ import annotations

import json
import random
import re
import tracemalloc

import pytest
from sqlalchemy import func, select

from eas_runtime import events
from eas_runtime.control import Control
from eas_runtime.db.models import DeadLetter, Job, Task
from eas_runtime.jobs import JobError, compile_job
from eas_runtime.jobs._bounds import deep_size
from eas_runtime.jobs.expressions import (
    MAX_EVALUATION_ITEMS,
    MAX_ITEMS,
    Env,
    ExpressionError,
    evaluate,
)
from eas_runtime.jobs.plan import MAX_DESCRIPTION_ITEMS, MAX_JOB_EVALUATION_ITEMS, MAX_JOB_ITEMS, MAX_TASK_ITEMS
from eas_runtime.resources import Resources
from eas_runtime.site import create_app

TOKEN = "s3cret"
BOMB = "([[0]*100000]*1000)"
#: The issue's payload, exactly.
PAYLOAD = {"job_name": "x", "task_list": [{"task": "null", "duration": BOMB}]}
#: Generous: the refusal itself needs a few hundred kB; the defect took 842 MB in the site.
MEMORY_BOUND = 32 * 1024 * 1024
#: Longest JSON text of a value of MAX_ITEMS items (a list of 17-digit floats, 26 characters each).
TEXT_BOUND = 26 * MAX_ITEMS


def _peak_bytes(action) -> tuple[object, int]:
    """What ``action()`` returns and the peak of memory traced while it ran."""
    tracemalloc.start()
    try:
        tracemalloc.reset_peak()
        out = action()
        return out, tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def _ev(text: str, metadata: dict | None = None):
    return evaluate(text, Env(metadata or {}))


# ---------------------------------------------------------------------- the site route
@pytest.fixture
def site(settings, resources, event_log):
    res = Resources(settings.replace(api_token=TOKEN), send=event_log, store=resources.store, db=resources.db)
    return create_app(res).test_client()


@pytest.mark.timeout(120)
def test_defect_3_the_issue_payload_is_refused_by_the_site_with_the_limit_named(site, event_log):
    response, peak = _peak_bytes(lambda: site.post("/api/jobs", json=PAYLOAD,
                                                   headers={"Authorization": f"Bearer {TOKEN}"}))
    assert response.status_code == 400
    error = response.get_json()["error"]
    assert "task_list[0]" in error and f"more than {MAX_ITEMS}" in error, error
    assert peak < MEMORY_BOUND, f"the refusal traced {peak / 1e6:.1f} MB"
    assert event_log.events == []                            # nothing reached the broker


# ---------------------------------------------------------------------- the broker route
@pytest.mark.timeout(120)
def test_defect_3_the_issue_payload_as_an_event_is_a_dead_letter_and_stores_nothing(resources, event_log):
    event = events.make_event(events.JOB_SUBMITTED, "/test", PAYLOAD, id="bomb")
    summary, peak = _peak_bytes(lambda: Control(resources).handle(event))
    assert f"more than {MAX_ITEMS}" in summary["rejected"]
    assert peak < MEMORY_BOUND, f"eas-control traced {peak / 1e6:.1f} MB"
    with resources.db.read() as s:
        [letter] = s.scalars(select(DeadLetter)).all()
        assert letter.event_id == "bomb" and "task_list[0]" in letter.reason and str(MAX_ITEMS) in letter.reason
        assert s.scalar(select(func.count()).select_from(Task)) == 0
        # a refused job may be kept as a row with its reason, never with a big value in it
        assert all(len(json.dumps(spec)) < 10_000 for spec in s.scalars(select(Job.spec)))
    assert event_log.of_type("task.ready") == []


@pytest.mark.timeout(120)
def test_defect_3_no_stored_parameter_row_passes_the_row_limit(resources, event_log):
    """Values that pass one by one, many of them: refused as a row and as a job; a job just
    under the limits is stored, each row under the row limit."""
    wide = {f"p{i}": "('a' * 99000)" for i in range(4)}          # 396,000 characters in one task
    control = Control(resources)
    summary = control.handle(events.make_event(events.JOB_SUBMITTED, "/test", {
        "job_name": "wide", "task_list": [{"task": "null", **wide}]}, id="wide"))
    assert f"pass {MAX_TASK_ITEMS} items" in summary["rejected"]
    copied = {"job_name": "copied", "task_list": [{"task": "execution_for_loop", "parameter": "i",
                                                   "values": list(range(600)), "task_list": [
                                                       {"task": "null", "p": "a" * 90000}]}]}
    with pytest.raises(JobError, match=f"pass {MAX_JOB_ITEMS} items in all"):
        compile_job(copied)                         # one literal, in 600 rows: 54 million items
    computed = {"job_name": "computed", "task_list": [{"task": "execution_for_loop", "parameter": "i",
                                                       "values": list(range(600)), "task_list": [
                                                           {"task": "null", "n": "(len(str([0] * 30000)) + metadata['i'])"}]}]}
    with pytest.raises(JobError, match=f"make more than {MAX_JOB_EVALUATION_ITEMS} items in all"):
        compile_job(computed)                       # small rows, but 600 costly evaluations
    fine = {"job_name": "fine", "task_list": [{"task": "null", "p": "('a' * 90000)", "q": "([[0] * 99] * 900)"}]}
    assert "job_id" in control.handle(events.make_event(events.JOB_SUBMITTED, "/test", fine, id="fine"))
    with resources.db.read() as s:
        rows = s.scalars(select(Task.params)).all()
        assert s.scalar(select(func.count()).select_from(Job).where(Job.name == "fine")) == 1
    assert len(rows) == 1 and deep_size(rows[0], 10 ** 9) <= MAX_TASK_ITEMS      # the wide job has none
    assert max(len(json.dumps(p)) for p in rows) < 2 * MAX_TASK_ITEMS


def test_defect_3_a_huge_description_is_refused():
    spec = {"job_name": "big", "task_list": [{"task": "null", "blob": "x" * (MAX_DESCRIPTION_ITEMS + 1)}]}
    with pytest.raises(JobError, match=f"more than {MAX_DESCRIPTION_ITEMS} items"):
        compile_job(spec)


# ---------------------------------------------------------------------- the operations of the issue
@pytest.mark.timeout(60)
@pytest.mark.parametrize("text", [
    BOMB,
    "(str([[0] * 100] * 1000))", "(str([[0] * 99] * 1000))", "(len(str([0] * 100000)))",
    "(sum([[0] * 100] * 1000, []))", "(sum([[[0] * 99] * 1000] * 2, []))",
    "('{0}'.format([[0] * 99] * 1000))", "('{0!r}'.format([[0] * 99] * 1000))", "('{0!s}'.format(['a' * 50000] * 2))",
    "('{0}{0}'.format('a' * 60000))", "([[0] * 99] * 1000 + [[0] * 99] * 1000)", "({'a': [[0] * 99] * 1000, 'b': [0]})",
    "([[0] * 99999, [0] * 99999])", "(str({'k': ['a' * 1000] * 100}))", "(pow(3, 2 ** 200, 7 ** 5000))",
])
def test_defect_3_printing_summing_or_growing_big_values_is_refused(text):
    with pytest.raises(ExpressionError) as info:
        _, peak = _peak_bytes(lambda: _ev(text))
    message = str(info.value)
    assert any(str(limit) in message for limit in (MAX_ITEMS, MAX_EVALUATION_ITEMS, 4096)), message


def test_defect_3_values_within_the_limits_still_evaluate():
    assert _ev("(len(str([[0] * 9] * 1000)))") == len(str([[0] * 9] * 1000))
    assert _ev("(sum([[1, 2]] * 3, [0]))") == [0, 1, 2, 1, 2, 1, 2]
    assert _ev("('{0}-{1!r}'.format([1, 'a', None, {'k': 2.5}], 'x'))") == "[1, 'a', None, {'k': 2.5}]-'x'"
    assert _ev("(str({'a': [1, (2,)], 'b': True}))") == "{'a': [1, [2]], 'b': True}"      # tuples are lists here
    assert len(_ev("([0] * 100000)")) == MAX_ITEMS and len(_ev("('a' * 100000)")) == MAX_ITEMS
    assert _ev("(sum([1.5] * 100000))") == 150000.0 and _ev("(pow(3, 5, 7))") == 5
    big = {"grid": list(range(50_000))}
    assert _ev("(len(metadata['grid'][::2] + metadata['grid'][1::2]))", big) == 50_000


# ---------------------------------------------------------------------- fuzz
# Expressions built by type, so that most are well typed and reach the size limits: repetition
# by large counts, nesting, printing and summing of what was repeated, and a few of anything.
N = ["0", "1", "2", "7", "99", "1000", "30000", "100000", "10 ** 5", "2 ** 64", "len(metadata['grid'])", "-3"]
#: Templates by the type they make; <l> <s> <n> <d> stand for a list, string, integer or dict
#: expression, <x> for any.
MAKE = {
    "list": ["[0]", "[]", "[[0]]", "metadata['grid']", "metadata['nest']", "[<x>]", "[<x>, <x>]", "[<l>, <s>, <n>]",
             "(<l>) * (<n>)", "(<n>) * (<l>)", "(<l>) + (<l>)", "sum([<l>, <l>], [])", "sum(<l>, [])", "(<l>)[1:]",
             "(<l>)[::3]", "(<s>).split(',')", "[<d>] * (<n>)", "max(<l>, <l>)", "(<l>) if (<n>) else (<l>)"],
    "str": ["'a'", "'ab,c'", "metadata['word']", "str(<x>)", "'{0}'.format(<x>)", "'{0!r}-{1}'.format(<x>, <x>)",
            "(<s>) * (<n>)", "(<s>) + (<s>)", "(<s>).upper()", "(<s>).replace('a', 'aaaa')", "(<s>).zfill(999)",
            "(<s>)[::2]", "'{k}{0}'.format(<x>, **<d>)", "str(<l>) + str(<d>)"],
    "int": N + ["len(<x>)", "(<n>) * (<n>)", "(<n>) ** 3", "(<n>) + (<n>)", "sum(<l>)", "pow(<n>, <n>, 97)",
                "int(str(<n>))", "min(<n>, <n>)"],
    "dict": ["{'k': <x>}", "{'k': <x>, 'j': <x>}", "metadata.get('none', <d>)", "{'a': <l>, 'b': <s>}"],
}
KINDS = {"l": "list", "s": "str", "n": "int", "d": "dict"}
META = {"grid": list(range(1000)), "word": "tls", "nest": [[1, 2]] * 100}


def _expression(rng: random.Random, kind: str, depth: int) -> str:
    if depth == 0:
        return {"list": "[0]", "str": "'a'", "int": rng.choice(N), "dict": "{'k': 1}"}[kind]

    def sub(match: re.Match) -> str:
        return _expression(rng, KINDS.get(match.group(1)) or rng.choice(list(MAKE)), depth - 1)
    return re.sub(r"<([lsndx])>", sub, rng.choice(MAKE[kind]))


@pytest.mark.timeout(600)
def test_defect_3_fuzzed_expressions_evaluate_within_the_bounds_or_are_refused():
    rng = random.Random(20260311)
    outcomes = {"value": 0, "refused at a limit": 0, "refused otherwise": 0}
    limits = (str(MAX_ITEMS), str(MAX_EVALUATION_ITEMS))
    tracemalloc.start()
    try:
        for _ in range(1500):
            text = "(" + _expression(rng, rng.choice(list(MAKE)), rng.randint(2, 7)) + ")"
            if len(text) > 2000:
                continue
            tracemalloc.reset_peak()
            try:
                value = _ev(text, META)
            except ExpressionError as exc:                   # anything else fails the test
                message = str(exc)
                assert message.startswith("expression "), (text, message)
                outcomes["refused at a limit" if any(x in message for x in limits) else "refused otherwise"] += 1
            else:
                assert deep_size(value, 10 ** 9) <= MAX_ITEMS, text
                assert len(json.dumps(value)) <= TEXT_BOUND, text
                outcomes["value"] += 1
            peak = tracemalloc.get_traced_memory()[1]
            assert peak < MEMORY_BOUND, f"{text}: {peak / 1e6:.1f} MB"
    finally:
        tracemalloc.stop()
    assert sum(outcomes.values()) >= 1000 and min(outcomes.values()) >= 100, outcomes
