"""Run-time expansion: a deferred control-flow task evaluated once its sources have run.

eas-control (:mod:`eas_runtime.control.flow`) calls :func:`expand` for a conditional, a
do-while loop or one of its iteration decisions, and a chain or for-loop that reads
``requested_metadata``, and inserts the subtrees it returns under the task. A plain task whose
parameters read ``requested_metadata`` gets them from :func:`bind_parameters`.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from eas_runtime.jobs import expressions as ex
from eas_runtime.jobs.compiler import (
    _Compiler,
    _finite,
    _Scope,
    do_while_settings,
    loop_parameter,
    loop_values,
)
from eas_runtime.jobs.expressions import Env, ExpressionError, NotYetKnown
from eas_runtime.jobs.plan import (
    CHAIN,
    CONDITIONAL,
    DO_WHILE,
    FOR_LOOP,
    MAX_DO_WHILE_ITERATIONS,
    MAX_JOB_EVALUATION_ITEMS,
    MAX_TASK_ITEMS,
    JobError,
    PlannedTask,
)


@dataclass
class Expansion:
    """What evaluating a deferred control-flow task at run time gives: the subtrees to insert
    under it, result metadata for its attempt, and a sentence for its log."""

    children: list
    metadata: dict
    message: str
    external_inputs: dict = field(default_factory=dict)


def expand(task_type: str, params: dict, *, path: str, working_directory: str, job_name: str,
           requested: dict, wait: bool = False) -> Expansion:
    """Evaluate a deferred control-flow task now that its sources have run."""
    with ex.shared_budget(MAX_JOB_EVALUATION_ITEMS, f"the expansion of {path}"):
        return _expand(task_type, params, path=path, working_directory=working_directory, job_name=job_name,
                       requested=requested, wait=wait)


def _expand(task_type: str, params: dict, *, path: str, working_directory: str, job_name: str,
            requested: dict, wait: bool = False) -> Expansion:
    spec = params.get("spec") or {}
    metadata = dict(params.get("metadata") or {})
    compiler = _Compiler(at_run_time=True)
    scope = _Scope(metadata, {}, job_name, working_directory, wait)
    env = Env(metadata, requested)
    children: list[PlannedTask] = []
    out: dict[str, Any]
    if task_type == CHAIN:
        children = compiler.task_list(spec.get("task_list"), f"{path}.task_list", scope.child(requested=requested))
        out, message = {"tasks": len(children)}, f"chain of {len(children)} tasks"
    elif task_type == FOR_LOOP:
        parameter = loop_parameter(spec, env, path)
        values = loop_values(spec, env, path)
        for index, value in enumerate(values):
            md = {**metadata, parameter: value, f"{parameter}_index": index}
            chain = PlannedTask(f"{path}@{index}", CHAIN, "", working_directory, job_name,
                                params={"metadata": md}, expanded=True)
            chain.children = compiler.task_list(spec.get("task_list"), f"{path}@{index}.task_list",
                                                scope.child(metadata=md))
            children.append(chain)
        out, message = {"iterations": len(values)}, f"{len(values)} iterations over {parameter}"
    elif task_type == CONDITIONAL:
        criterion = _evaluate(spec.get("criterion"), env, f"{path}.criterion")
        key = "task_list" if criterion else ("else_task_list" if "else_task_list" in spec else "task_list_else")
        label = "task_list" if criterion else "else_task_list"
        out = {"criterion": bool(criterion), "branch": label}
        if key in spec:
            chain = PlannedTask(f"{path}.{label}", CHAIN, "", working_directory, job_name,
                                params={"metadata": metadata} if metadata else {}, expanded=True)
            chain.children = compiler.task_list(spec[key], f"{path}.{label}", scope.child())
            children = [chain]
            message = f"criterion is {bool(criterion)}: running {label} ({len(chain.children)} tasks)"
        else:
            message = f"criterion is {bool(criterion)}: no {label}, nothing to run"
    elif task_type == DO_WHILE:
        name, children_names = do_while_settings(spec, path)
        iteration = params.get("iteration")
        if iteration is None:                      # the loop itself: the body runs at least once
            nxt, message = 1, "entering the loop: iteration 1"
            out = {"iteration": 0, "repeat": True}
        else:
            again = bool(_evaluate(spec.get("repeat_criterion"), env, f"{path}.repeat_criterion"))
            out = {"iteration": iteration, "repeat": again}
            if not again:
                return Expansion([], out, f"repeat criterion is false: the loop ends after iteration {iteration}")
            nxt = iteration + 1
            if nxt > MAX_DO_WHILE_ITERATIONS:
                raise JobError(f"{path}: more than {MAX_DO_WHILE_ITERATIONS} iterations")
            message = f"repeat criterion is true after iteration {iteration}: iteration {nxt}"
        base = _loop_path(path)
        md = {**metadata, f"{name}_index": nxt}
        chain = PlannedTask(f"{base}@{nxt}", CHAIN, "", working_directory, job_name,
                            params={"metadata": md}, expanded=True)
        body = compiler.task_list(spec.get("task_list"), f"{base}@{nxt}.task_list", scope.child(metadata=md))
        by_name = {t.name: t for t in body if t.name}
        missing = [n for n in children_names if n not in by_name]
        if missing:
            raise JobError(f"{path}.requires_metadata_from_child: no task named {missing} in the loop body")
        check = PlannedTask(f"{base}@{nxt}.repeat", DO_WHILE, "", working_directory, job_name,
                            params={"spec": spec, "metadata": md, "iteration": nxt},
                            requires=[by_name[n] for n in children_names])
        chain.children = body + [check]
        children = [chain]
    else:
        raise JobError(f"{path}: {task_type!r} is not a control-flow task")
    external = compiler.resolve()
    return Expansion(children, out, message, external)


def bind_parameters(params: dict, requested: dict, where: str) -> dict:
    """Evaluate the parameters of a task whose values read ``requested_metadata``."""
    metadata = params.get("metadata") or {}
    raw = {k: v for k, v in params.items() if k != "metadata"}
    try:
        bound = ex.evaluate_structure(raw, Env(metadata, requested), limit=MAX_TASK_ITEMS)
    except ExpressionError as exc:
        raise JobError(f"{where}: {exc}") from None
    _finite(bound, where)
    if metadata:
        bound["metadata"] = metadata
    return bound


def _loop_path(path: str) -> str:
    """The do-while loop's own path from the path of its loop task or of an iteration's check
    task (``<loop>@<n>.repeat``)."""
    if path.endswith(".repeat") and "@" in path:
        return path[: -len(".repeat")].rsplit("@", 1)[0]
    return path


def _evaluate(raw: Any, env: Env, where: str) -> Any:
    try:
        return ex.evaluate(raw, env)
    except NotYetKnown:
        raise JobError(f"{where}: reads requested_metadata, but the task names no task in "
                       "requires_metadata_from") from None
    except ExpressionError as exc:
        raise JobError(f"{where}: {exc}") from None
