"""Control-flow tasks run by eas-control: conditionals, do-while loops, deferred chains and loops,
late-bound parameters; each with duplicate delivery, failures and recovery."""
from __future__ import annotations

import copy
import datetime as dt
from collections import Counter

from sqlalchemy import select, update

from eas_runtime import events
from eas_runtime.control import scheduler
from eas_runtime.db import metadata as md
from eas_runtime.db.models import (
    A_FINISHED,
    A_QUEUED,
    CANCELLED,
    DONE,
    FAILED,
    WAITING,
    Attempt,
    Job,
    LogMessage,
    Task,
    TaskOutput,
    utcnow,
)
from tests.jobs.prototype_model import Model


def _attempts(resources, task_id):
    with resources.db.read() as s:
        return list(s.scalars(select(Attempt).where(Attempt.task_id == task_id).order_by(Attempt.number)))


def _results(resources, attempt_id):
    with resources.db.read() as s:
        return md.get_metadata(s, "attempt", attempt_id)


CONDITIONAL = {"job_name": "cond", "working_directory": "c", "task_list": [
    {"task": "null", "name": "a"},
    {"task": "execution_conditional", "name": "if", "requires_metadata_from": ["a"],
     "criterion": "(requested_metadata['a']['outcome'] == 'PASS')",
     "task_list": [{"task": "null", "name": "yes", "outputs": {"r": "'yes_{n}.json'.format(**metadata)"}}],
     "else_task_list": [{"task": "null", "name": "no1"}, {"task": "null", "name": "no2"}]}]}


def _looped(spec):
    spec = copy.deepcopy(spec)
    spec["task_list"] = [{"task": "execution_for_loop", "parameter": "n", "values": [5], "task_list": spec["task_list"]}]
    return spec


def _run_conditional(player, outcome):
    player.submit(_looped(CONDITIONAL))
    player.run(lambda task: {"outcome": outcome} if task.name == "a" else {})
    return player.tasks(task_type="execution_conditional")[0]


def test_conditional_runs_the_task_list_when_the_criterion_holds(resources, player):
    cond = _run_conditional(player, "PASS")
    assert cond.state == DONE and cond.path == "task_list[0]@0.task_list[1]"
    children = player.tasks(parent_id=cond.id)
    assert [(c.task_type, c.path, c.state) for c in children] == [
        ("execution_chain", "task_list[0]@0.task_list[1].task_list", DONE)]
    branch = player.tasks(parent_id=children[0].id)
    assert [(t.name, t.path, t.state) for t in branch] == [("yes", "task_list[0]@0.task_list[1].task_list[0]", DONE)]
    assert branch[0].params["metadata"] == {"n": 5, "n_index": 0}            # metadata inherited
    with resources.db.read() as s:
        assert s.scalar(select(TaskOutput.key).where(TaskOutput.task_id == branch[0].id)) == "c/yes_5.json"
    (attempt,) = _attempts(resources, cond.id)
    assert attempt.host == "eas-control" and not attempt.error and attempt.all_products_passed_qc
    assert _results(resources, attempt.id) == {"criterion": True, "branch": "task_list"}
    assert not player.tasks(name="no1")


def test_conditional_runs_the_else_task_list_otherwise(player):
    cond = _run_conditional(player, "FAIL")
    (chain,) = player.tasks(parent_id=cond.id)
    assert chain.path.endswith(".else_task_list")
    assert [t.name for t in player.tasks(parent_id=chain.id)] == ["no1", "no2"]
    assert all(t.state == DONE for t in player.tasks())


def test_do_while_body_runs_three_times_and_its_counter_starts_at_1(resources, player):
    job = {"working_directory": "w", "task_list": [
        {"task": "execution_do_while_loop", "name": "loop", "iteration_name": "it",
         "requires_metadata_from_child": ["step"],
         "repeat_criterion": "(requested_metadata['step']['outcome'] == 'PASS') and (metadata['it_index'] < 3)",
         "task_list": [{"task": "null", "name": "step", "outputs": {"r": "'r_{it_index}.json'.format(**metadata)"}}]}]}
    player.submit(job)
    assert player.run(lambda task: {"outcome": "PASS"}) == 3
    steps = player.tasks(name="step")
    assert [s.params["metadata"]["it_index"] for s in steps] == [1, 2, 3]
    assert [s.path for s in steps] == [f"task_list[0]@{i}.task_list[0]" for i in (1, 2, 3)]
    with resources.db.read() as s:
        keys = sorted(s.scalars(select(TaskOutput.key)))
    assert keys == ["w/r_1.json", "w/r_2.json", "w/r_3.json"]
    checks = player.tasks(task_type="execution_do_while_loop")
    assert [c.path for c in checks] == ["task_list[0]", "task_list[0]@1.repeat", "task_list[0]@2.repeat",
                                        "task_list[0]@3.repeat"]
    assert all(c.state == DONE for c in checks)
    decisions = [_results(resources, _attempts(resources, c.id)[0].id) for c in checks]
    assert decisions == [{"iteration": 0, "repeat": True}, {"iteration": 1, "repeat": True},
                         {"iteration": 2, "repeat": True}, {"iteration": 3, "repeat": False}]
    assert Counter(t.task_type for t in player.tasks()) == Counter(
        {"execution_do_while_loop": 4, "execution_chain": 3, "null": 3})


def test_do_while_body_runs_at_least_once(player):
    player.submit({"task_list": [{"task": "execution_do_while_loop", "iteration_name": "it",
                                  "repeat_criterion": "(False)", "task_list": [{"task": "null", "name": "once"}]}]})
    assert player.run() == 1
    (once,) = player.tasks(name="once")
    assert once.params["metadata"] == {"it_index": 1} and once.state == DONE


def test_prototype_feature_tests_make_the_prototypes_rows(player, prototype_jobs, resources):
    """if_then_else and while_loop played to the end: the same rows per type as the prototype
    makes for the same search results (PASS for the larger planets)."""
    passes = lambda md: md["size_index"] >= 4
    for n, name in enumerate(["feature_tests/if_then_else.json", "feature_tests/while_loop.json"]):
        spec = copy.deepcopy(prototype_jobs[name])
        before = player.counts()
        player.submit(spec, id=f"job-{n}")
        player.run(lambda task: {"outcome": "PASS" if passes(task.params["metadata"]) else "FAIL"}
                   if task.name == "transit_detection" else {})
        made = player.counts() - before

        def decide(row):
            if row.task_type == "execution_conditional":
                return passes(row.metadata)
            return passes(row.metadata) and row.metadata["my_while_loop_index"] < 3
        expected = Model(decide=decide).run_job(copy.deepcopy(spec))
        expected["execution_chain"] -= 1                                       # the prototype's root chain
        assert made == +expected, name
    with resources.db.read() as s:
        assert set(s.scalars(select(Task.state))) == {DONE}


def test_a_deferred_for_loop_takes_its_values_from_requested_metadata(player):
    player.submit({"task_list": [
        {"task": "null", "name": "plan"},
        {"task": "execution_for_loop", "parameter": "p", "requires_metadata_from": ["plan"],
         "values": "(requested_metadata['plan']['periods'])",
         "task_list": [{"task": "null", "name": "run", "period": "(metadata['p'])"}]}]})
    player.run(lambda task: {"periods": [1.5, 3.0, 4.5]} if task.name == "plan" else {})
    runs = player.tasks(name="run")
    assert [(r.params["period"], r.params["metadata"]["p_index"]) for r in runs] == [(1.5, 0), (3.0, 1), (4.5, 2)]


def test_a_chain_with_requires_evaluates_its_tasks_with_the_requested_metadata(player):
    player.submit({"working_directory": "w", "task_list": [
        {"task": "null", "name": "a"},
        {"task": "execution_chain", "requires_metadata_from": ["a"], "task_list": [
            {"task": "null", "name": "b", "outputs": {"x": "'b_{}.json'.format(requested_metadata['a']['tag'])"}}]}]})
    player.run(lambda task: {"tag": "t7"} if task.name == "a" else {})
    (b,) = player.tasks(name="b")
    assert b.state == DONE and b.path == "task_list[1].task_list[0]"


def test_parameters_reading_requested_metadata_are_bound_when_the_source_is_done(player, event_log):
    player.submit({"task_list": [
        {"task": "null", "name": "a"},
        {"task": "null", "name": "b", "requires_metadata_from": ["a"], "duration": "(requested_metadata['a']['slept_s'] * 0)",
         "label": "'after {}'.format(requested_metadata['a']['slept_s'])"}]})
    (b,) = player.tasks(name="b")
    assert not b.fully_configured and b.state == WAITING
    player.run(lambda task: {"slept_s": 0.25} if task.name == "a" else {})
    (b,) = player.tasks(name="b")
    assert b.fully_configured and b.state == DONE
    assert b.params == {"duration": 0.0, "label": "after 0.25"}


def test_a_failing_criterion_fails_the_control_task_with_the_expression(resources, player):
    spec = copy.deepcopy(CONDITIONAL)
    spec["task_list"][1]["criterion"] = "(requested_metadata['a']['sde'] > 7)"
    player.submit(_looped(spec))
    player.run(lambda task: {"outcome": "PASS"})
    (cond,) = player.tasks(task_type="execution_conditional")
    assert cond.state == FAILED
    (attempt,) = _attempts(resources, cond.id)
    assert attempt.error and attempt.error_kind == "parameters"
    assert "task_list[0]@0.task_list[1].criterion: expression \"(requested_metadata['a']['sde'] > 7)\" failed: " \
        "no key 'sde'" in attempt.error_text
    with resources.db.read() as s:
        assert "no key 'sde'" in s.scalar(select(LogMessage.text).where(LogMessage.attempt_id == attempt.id))
    assert player.tasks(parent_id=cond.id) == []


def test_a_late_parameter_that_fails_fails_its_task(resources, player):
    player.submit({"task_list": [{"task": "null", "name": "a"},
                                 {"task": "null", "name": "b", "requires_metadata_from": ["a"],
                                  "x": "(requested_metadata['a']['missing'])"}]})
    player.run()
    (b,) = player.tasks(name="b")
    assert b.state == FAILED
    (attempt,) = _attempts(resources, b.id)
    assert attempt.error_kind == "parameters" and "no key 'missing'" in attempt.error_text


def test_duplicate_delivery_of_a_control_tasks_ready_event_is_a_no_op(resources, control, event_log):
    job = {"task_list": [{"task": "execution_do_while_loop", "iteration_name": "it", "repeat_criterion": "(False)",
                          "task_list": [{"task": "null", "name": "x"}]}]}
    control.handle(events.make_event(events.JOB_SUBMITTED, "/t", job, id="j"))
    (loop,) = [t for t in _all(resources) if t.path == "task_list[0]"]
    (attempt,) = _attempts(resources, loop.id)
    again = scheduler.Ready(loop.id, attempt.id, loop.task_type, loop.job_id).event()
    before = len(_all(resources))
    assert control.handle(again)["claimed"] == 0
    assert control.send(again) is True
    assert len(_all(resources)) == before and len(_attempts(resources, loop.id)) == 1


def _all(resources):
    with resources.db.read() as s:
        return list(s.scalars(select(Task).order_by(Task.id)))


def test_a_control_task_claimed_but_never_run_is_run_by_the_reconcile_tick(resources, control, event_log):
    event_log.fail = True                                 # nothing leaves: pretend control died after the claim
    job = {"task_list": [{"task": "execution_conditional", "criterion": "(True)", "task_list": [{"task": "null"}]}]}
    with resources.db.session() as s:
        from eas_runtime.jobs import compile_job, insert_job
        insert_job(s, compile_job(job), source_event="x")
    (cond,) = _all(resources)
    ready = scheduler.claim(resources.db, cond.id)         # claimed; its task.ready was lost
    event_log.fail = False
    with resources.db.session() as s:
        s.execute(update(Attempt).values(sent_at=utcnow() - dt.timedelta(seconds=60)))
    summary = control.reconcile()
    assert summary["resent"] == 1
    tasks = _all(resources)
    assert [t.task_type for t in tasks] == ["execution_conditional", "execution_chain", "null"]
    assert tasks[0].state == DONE and _attempts(resources, cond.id)[0].id == ready.attempt_id
    assert [e["tasktype"] for e in event_log.of_type("task.ready")] == ["null"]


def test_a_cancelled_job_runs_no_control_task(resources, control, event_log):
    job = {"task_list": [{"task": "null", "name": "a"},
                         {"task": "execution_conditional", "requires_metadata_from": ["a"], "criterion": "(True)",
                          "task_list": [{"task": "null"}]}]}
    control.handle(events.make_event(events.JOB_SUBMITTED, "/t", job, id="j"))
    cond = next(t for t in _all(resources) if t.task_type == "execution_conditional")
    with resources.db.session() as s:
        s.execute(update(Task).where(Task.id == cond.id).values(state="queued", attempt_count=1))
        attempt = Attempt(task_id=cond.id, number=1, state=A_QUEUED, sent_at=utcnow())
        s.add(attempt)
        s.flush()
        ready = scheduler.Ready(cond.id, attempt.id, cond.task_type, cond.job_id)
        s.execute(update(Job).values(cancelled=True))
    control.send(ready.event())
    (cond,) = [t for t in _all(resources) if t.id == cond.id]
    assert cond.state == CANCELLED and len(_all(resources)) == 2             # no branch inserted
    (attempt,) = _attempts(resources, cond.id)
    assert attempt.state == A_FINISHED and attempt.error_kind == "cancelled"


def test_branch_outputs_planned_elsewhere_are_rejected_at_submission(player):
    player.submit({"working_directory": "w", "task_list": [{"task": "null", "outputs": {"x": "taken.json"}}]}, id="first")
    spec = {"working_directory": "w2", "task_list": [
        {"task": "execution_conditional", "criterion": "(True)",
         "task_list": [{"task": "null", "outputs": {"x": "/w/taken.json"}}]}]}
    summary = player.submit(spec, id="second")
    assert "task_list[0].task_list[0]: output 'w/taken.json' is already planned by task" in summary["rejected"]


def test_branch_outputs_taken_after_submission_fail_the_conditional(resources, player):
    player.submit({"working_directory": "w", "task_list": [
        {"task": "null", "name": "a"},
        {"task": "execution_conditional", "requires_metadata_from": ["a"], "criterion": "(True)",
         "task_list": [{"task": "null", "outputs": {"x": "late.json"}}]}]}, id="first")
    player.submit({"working_directory": "w", "task_list": [{"task": "null", "outputs": {"x": "late.json"}}]},
                  id="second")                                              # planned in the meantime
    player.run()
    (cond,) = player.tasks(task_type="execution_conditional")
    (attempt,) = _attempts(resources, cond.id)
    assert cond.state == FAILED and "output 'w/late.json' is already planned by task" in attempt.error_text
    assert player.tasks(parent_id=cond.id) == []
