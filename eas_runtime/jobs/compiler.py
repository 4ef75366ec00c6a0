"""Compile a task-chain job (PARITY.md section 1) into a tree of planned task rows.

The tree has the prototype's shape: a control-flow entry is a task row too, a for-loop has one
``execution_chain`` child per value (path ``<loop>@<index>``), whose children are the loop body
(``<loop>@<index>.task_list[<j>]``). The prototype's extra root ``execution_chain`` for the job
file is our Job row.

What is known at submission is planned at submission: plain tasks, chains and for-loops whose
values do not depend on run-time results. Their control-flow rows are inserted already *done*
(``expanded``). The rest is *deferred*: a conditional, a do-while loop, and a chain or for-loop
that reads ``requested_metadata`` (it has ``requires_metadata_from``) are inserted waiting with
their raw description; eas-control evaluates them when they become ready
(:mod:`eas_runtime.control.flow`, which calls :func:`expand`). Deferred parts are still checked
at submission: both branches of a conditional and the first two iterations of a do-while body
are compiled as *probes* (validated, counted in the dry run, not inserted).

Checks, each reported with the task's path: names, types and shapes of every field; every
expression (:mod:`eas_runtime.jobs.expressions`); sibling names unique and
``requires_metadata_from`` naming earlier siblings; an output produced twice (except in the two
branches of one conditional); an input produced only by a later task, or only in the other
branch. Inputs that no task of the job produces are listed in ``external_inputs``: the
inserter (:mod:`eas_runtime.jobs.insert`) looks them up in the database and the store and
rejects the job unless they exist or the job says to wait for them (``wait_for_upload``).
"""
from __future__ import annotations

import math
import posixpath
from dataclasses import dataclass
from typing import Any

import numpy as np

from eas_runtime.jobs import expressions as ex
from eas_runtime.jobs._bounds import Budget
from eas_runtime.jobs.expressions import PENDING, Env, ExpressionError, NotYetKnown
from eas_runtime.jobs.plan import (
    _IDENTIFIER,
    _TASK_TYPE,
    CHAIN,
    COMMON_KEYS,
    CONDITIONAL,
    CONTROL_FLOW,
    CONTROL_KEYS,
    DO_WHILE,
    FOR_LOOP,
    JOB_KEYS,
    LEAF_FORBIDDEN,
    MAX_DESCRIPTION_ITEMS,
    MAX_JOB_EVALUATION_ITEMS,
    MAX_JOB_ITEMS,
    MAX_NESTING,
    MAX_PATH,
    MAX_TASK_ITEMS,
    MAX_TASKS,
    NOT_PARAMETERS,
    CompiledJob,
    JobError,
    PlannedTask,
    _kind,
    certain,
    count_types,
    object_key,
)

MAX_KEY = 1000                           # object keys (task_inputs.key, task_outputs.key)

__all__ = ["CHAIN", "CONDITIONAL", "CONTROL_FLOW", "DO_WHILE", "FOR_LOOP", "CompiledJob", "JobError",
           "PlannedTask", "certain", "compile_job", "count_types", "do_while_settings", "loop_parameter",
           "loop_values", "object_key"]


# ---------------------------------------------------------------------- scopes
@dataclass(slots=True)
class _Scope:
    metadata: dict
    requested: Any             # for the children's type, name, files: dict or PENDING
    job_name: str
    wd: str
    wait: bool
    probe: bool = False
    branch: tuple = ()         # ((conditional path, branch), ...) for exclusivity
    depth: int = 0
    _env: Any = None
    _own: Any = None

    @property
    def env(self) -> Env:
        """The environment of the children's type, name and files (shared, so that repeated
        expressions are evaluated once)."""
        if self._env is None:
            self._env = Env(self.metadata, self.requested)
        return self._env

    @property
    def own(self) -> Env:
        """The environment of a plain task's parameters when it reads no requested_metadata."""
        if self._own is None:
            self._own = Env(self.metadata, {})
        return self._own

    def child(self, **changes) -> _Scope:
        values = {"metadata": self.metadata, "requested": self.requested, "job_name": self.job_name,
                  "wd": self.wd, "wait": self.wait, "probe": self.probe, "branch": self.branch,
                  "depth": self.depth + 1}
        values.update(changes)
        return _Scope(**values)


@dataclass(slots=True)
class _Made:
    path: str
    seq: int
    branch: tuple


def _exclusive(a: tuple, b: tuple) -> bool:
    """Two branch contexts exclude each other when they took different branches of one
    conditional."""
    picks = dict(a)
    return any(cond in picks and picks[cond] != which for cond, which in b)


class _Compiler:
    def __init__(self, *, at_run_time: bool = False):
        self.at_run_time = at_run_time
        self.rows = 0
        self.work = 0
        self.seq = 0
        self.outputs: dict[str, _Made] = {}
        self.consumers: list[tuple[str, str, int, tuple, bool]] = []   # key, path, seq, branch, wait
        self.deferred: list[PlannedTask] = []
        self.items = 0                  # size of the rows planned so far (MAX_JOB_ITEMS)
        self.meter = Budget(deadline=math.inf)     # remembers shared metadata's size

    # ------------------------------------------------------------------ lists and tasks
    def task_list(self, items: Any, path: str, scope: _Scope) -> list[PlannedTask]:
        if items is None:
            return []
        if not isinstance(items, list):
            raise JobError(f"{path}: must be a list of tasks, got {_kind(items)}")
        names: dict[str, PlannedTask] = {}
        out = []
        for i, item in enumerate(items):
            node = self.task(item, f"{path}[{i}]", scope, names)
            if node.name:
                if node.name in names:
                    raise JobError(f"{node.path}: the name {node.name!r} is already used by "
                                   f"{names[node.name].path}")
                names[node.name] = node
            out.append(node)
        return out

    def task(self, item: Any, here: str, scope: _Scope, names: dict) -> PlannedTask:
        if scope.depth > MAX_NESTING:
            raise JobError(f"{here}: control flow nested more than {MAX_NESTING} levels deep")
        if len(here) > MAX_PATH:
            raise JobError(f"{here[:80]}...: the task's path is longer than {MAX_PATH} characters")
        if not isinstance(item, dict):
            raise JobError(f"{here}: a task is a JSON object, got {_kind(item)}")
        self.work += 1
        if self.work > 2 * MAX_TASKS:
            raise JobError(f"{here}: the job would need more than {MAX_TASKS} tasks")
        if not scope.probe:
            self.rows += 1
            if self.rows > MAX_TASKS:
                raise JobError(f"{here}: the job would create more than {MAX_TASKS} tasks")
        self.seq += 1
        env = scope.env
        if "task" not in item:
            raise JobError(f"{here}: 'task' must name a task type")
        task_type = self.value(item["task"], f"{here}.task", env, scope)
        if task_type is None:               # a probe whose type is known at run time only
            return PlannedTask(here, "(known at run time)")
        if not isinstance(task_type, str) or not _TASK_TYPE.match(task_type):
            raise JobError(f"{here}.task: {task_type!r} is not a task type name "
                           "(letters, digits, '_', '.', '-')")
        name = self.text(item.get("name", ""), f"{here}.name", env, scope, allow_empty=True)
        job_name = self.text(item.get("job_name", scope.job_name), f"{here}.job_name", env, scope,
                             allow_empty=True)
        wd = scope.wd
        if "working_directory" in item:
            wd = _directory(self.text(item["working_directory"], f"{here}.working_directory", env, scope,
                                      allow_empty=True, limit=500), f"{here}.working_directory")
        requires = self.requires(item.get("requires_metadata_from", []), here, env, scope, names)
        wait = _wait_flag(item.get("wait_for_upload", None), f"{here}.wait_for_upload", scope.wait)
        node = PlannedTask(here, task_type, name or "", wd, job_name or "", requires=requires, wait=wait)
        if task_type in CONTROL_FLOW:
            self.control(node, item, scope, env)
        else:
            self.leaf(node, item, scope, env)
        if not scope.probe:
            self.account(node)
        return node

    def account(self, node: PlannedTask) -> None:
        """Size the parameters of a row to insert; refuse a row or a job that is too big."""
        size = self.meter.size
        items = len(node.params)
        for key, value in node.params.items():
            items += len(key) + size(value, MAX_TASK_ITEMS - items)
            if items > MAX_TASK_ITEMS:
                raise JobError(f"{node.path}: the task's parameters (inherited metadata included) pass "
                               f"{MAX_TASK_ITEMS} items, the limit per task (characters and list or dict members, "
                               "nested ones counted each time they are reached)")
        self.items += items
        if self.items > MAX_JOB_ITEMS:
            raise JobError(f"{node.path}: the parameters of the job's tasks pass {MAX_JOB_ITEMS} items in all, "
                           "the limit per job")

    def requires(self, value: Any, here: str, env: Env, scope: _Scope, names: dict) -> list:
        if not isinstance(value, list):
            raise JobError(f"{here}.requires_metadata_from: must be a list of task names, got {_kind(value)}")
        out = []
        for i, raw in enumerate(value):
            name = self.text(raw, f"{here}.requires_metadata_from[{i}]", env, scope)
            if name is None:
                continue
            if name not in names:
                known = sorted(names) or "none"
                raise JobError(f"{here}.requires_metadata_from: no earlier task named {name!r} in this "
                               f"list (earlier names: {known})")
            out.append(names[name])
        return out

    def leaf(self, node: PlannedTask, item: dict, scope: _Scope, env: Env) -> None:
        here = node.path
        bad = LEAF_FORBIDDEN & set(item)
        if bad:
            raise JobError(f"{here}: {sorted(bad)} cannot be used in a {node.task_type!r} task "
                           "('task_list' belongs to control-flow tasks; 'metadata' is reserved)")
        node.inputs = self.files(item.get("inputs", {}), f"{here}.inputs", node.working_directory, env, scope)
        node.outputs = self.files(item.get("outputs", {}), f"{here}.outputs", node.working_directory, env,
                                  scope)
        raw = {k: v for k, v in item.items() if k not in NOT_PARAMETERS}
        own = Env(scope.metadata, PENDING) if node.requires else scope.own
        try:
            params = ex.evaluate_structure(raw, own, limit=MAX_TASK_ITEMS)
        except NotYetKnown:
            try:
                ex.check(raw)
            except ExpressionError as exc:
                raise JobError(f"{here}: {exc}") from None
            params, node.late = raw, True
        except ExpressionError as exc:
            if not node.requires and _reads_requested(raw):
                raise JobError(f"{here}: reads requested_metadata but names no task in "
                               "requires_metadata_from") from None
            raise JobError(f"{here}: {exc}") from None
        _finite(params, here)
        if scope.metadata:
            params["metadata"] = scope.metadata
        node.params = params
        node.retry_science_failures = params.get("retry_science_failures") is True
        self.register(node, scope)

    def register(self, node: PlannedTask, scope: _Scope) -> None:
        for semantic, key in node.outputs.items():
            made = self.outputs.get(key)
            if made is not None and not _exclusive(made.branch, scope.branch):
                raise JobError(f"{node.path}.outputs.{semantic}: {key!r} is already produced by {made.path}")
            if made is None:
                self.outputs[key] = _Made(node.path, self.seq, scope.branch)
        waits = node.wait
        for semantic, key in node.inputs.items():
            if key in node.outputs.values():
                raise JobError(f"{node.path}.inputs.{semantic}: {key!r} is also an output of the same task")
            may_wait = waits is True or (isinstance(waits, frozenset) and semantic in waits)
            self.consumers.append((key, f"{node.path}.inputs.{semantic}", self.seq, scope.branch, may_wait))

    # ------------------------------------------------------------------ control flow
    def control(self, node: PlannedTask, item: dict, scope: _Scope, env: Env) -> None:
        here, kind = node.path, node.task_type
        allowed = COMMON_KEYS | CONTROL_KEYS[kind]
        unknown = set(item) - allowed
        if unknown:
            raise JobError(f"{here}: {kind} does not take {sorted(unknown)}; it takes {sorted(allowed)}")
        if item.get("outputs"):
            raise JobError(f"{here}.outputs: control-flow tasks produce no files")
        node.inputs = self.files(item.get("inputs", {}), f"{here}.inputs", node.working_directory, env, scope)
        if isinstance(node.wait, frozenset):
            raise JobError(f"{here}.wait_for_upload: a control-flow task takes true or false")
        self.register(node, scope)
        inner = scope.child(job_name=node.job_name, wd=node.working_directory, wait=bool(node.wait))
        lists = [k for k in ("task_list", "else_task_list", "task_list_else") if k in item]
        for k in lists:
            if not isinstance(item[k], list):
                raise JobError(f"{here}.{k}: must be a list of tasks, got {_kind(item[k])}")
        if scope.metadata:
            node.params["metadata"] = scope.metadata
        if kind in (CONDITIONAL, DO_WHILE) or node.requires:
            node.params["spec"] = item
            self.probe(node, item, inner)
            return
        node.expanded = True
        node.params["spec"] = {k: v for k, v in item.items() if k not in ("task_list",)}
        if kind == CHAIN:
            node.children = self.task_list(item.get("task_list"), f"{here}.task_list", inner.child(requested={}))
        else:
            self.for_loop(node, item, inner, env)

    def for_loop(self, node: PlannedTask, item: dict, inner: _Scope, env: Env) -> None:
        here = node.path
        parameter = loop_parameter(item, env, here)
        values = loop_values(item, Env(inner.metadata, {}), here)
        for index, value in enumerate(values):
            metadata = {**inner.metadata, parameter: value, f"{parameter}_index": index}
            if len(here) + 8 > MAX_PATH:
                raise JobError(f"{here[:80]}...: the task's path is longer than {MAX_PATH} characters")
            chain = PlannedTask(f"{here}@{index}", CHAIN, "", node.working_directory, node.job_name,
                                params={"metadata": metadata}, expanded=True)
            self.seq += 1
            if not inner.probe:
                self.rows += 1
                self.account(chain)
            chain.children = self.task_list(item.get("task_list"), f"{here}@{index}.task_list",
                                            inner.child(metadata=metadata, requested={}))
            node.children.append(chain)

    def probe(self, node: PlannedTask, item: dict, inner: _Scope) -> None:
        """Check a part that runs later; record it for the dry run."""
        here, kind = node.path, node.task_type
        probe = inner.child(probe=True)
        branches: dict[str, list] = {}
        note = ""
        if kind == CONDITIONAL:
            _check_expression(item.get("criterion"), f"{here}.criterion", required=True)
            for key in ("task_list", "else_task_list", "task_list_else"):
                if key in item:
                    label = "else_task_list" if key == "task_list_else" else key
                    branches[label] = self.task_list(item[key], f"{here}.{key}", probe.child(
                        requested={}, branch=probe.branch + ((here, label),)))
        elif kind == DO_WHILE:
            name, children_names = do_while_settings(item, here)
            _check_expression(item.get("repeat_criterion"), f"{here}.repeat_criterion", required=True)
            first = {**inner.metadata, f"{name}_index": 1}
            body = self.task_list(item.get("task_list"), f"{here}@1.task_list",
                                  probe.child(metadata=first, requested={}))
            present = {t.name for t in body if t.name}
            missing = [n for n in children_names if n not in present]
            if missing:
                raise JobError(f"{here}.requires_metadata_from_child: no task named {missing} at the top "
                               f"of the loop body (names: {sorted(present) or 'none'})")
            check = PlannedTask(f"{here}@1.repeat", DO_WHILE, "", node.working_directory, node.job_name)
            chain = PlannedTask(f"{here}@1", CHAIN, "", node.working_directory, node.job_name,
                                children=body + [check])
            branches["iteration 1"] = [chain]
            self._do_while_outputs_change(item, here, inner, name, body)
            note = f"repeats while {str(item.get('repeat_criterion'))[:120]}"
        elif kind == CHAIN:
            requested: Any = PENDING if node.requires else {}
            branches["body"] = self.task_list(item.get("task_list"), f"{here}.task_list",
                                              probe.child(requested=requested))
        else:   # a for-loop whose values may come from requested_metadata
            parameter = loop_parameter(item, Env(inner.metadata, {}), here)
            try:
                values = loop_values(item, Env(inner.metadata, PENDING), here)
            except NotYetKnown:
                values = None
            if values:
                metadata = {**inner.metadata, parameter: values[0], f"{parameter}_index": 0}
                branches["body"] = self.task_list(item.get("task_list"), f"{here}@0.task_list",
                                                  probe.child(metadata=metadata, requested={}))
                note = f"{len(values)} iterations"
            else:
                _check_tree(item.get("task_list"), f"{here}.task_list")
                note = "values known at run time"
        node.probes, node.note = branches, note
        if not inner.probe:
            self.deferred.append(node)

    def _do_while_outputs_change(self, item: dict, here: str, inner: _Scope, name: str, body: list) -> None:
        first = {key: t.path for t in body for n in t.walk() for key in n.outputs.values()}
        if not first:
            return
        other = _Compiler(at_run_time=self.at_run_time)
        second = other.task_list(item.get("task_list"), f"{here}@2.task_list", inner.child(
            metadata={**inner.metadata, f"{name}_index": 2}, requested={}, probe=True))
        for t in second:
            for n in t.walk():
                for key in n.outputs.values():
                    if key in first:
                        raise JobError(f"{n.path}: output {key!r} is the same in every iteration of the "
                                       f"do-while loop; put {{{name}_index}} in its name")

    # ------------------------------------------------------------------ values
    def value(self, raw: Any, where: str, env: Env, scope: _Scope) -> Any:
        try:
            return ex.evaluate(raw, env)
        except NotYetKnown:
            if scope.probe:
                return None
            raise JobError(f"{where}: reads requested_metadata, which is not known here "
                           "(only a task's own parameters and the tasks inside a control-flow task "
                           "with requires_metadata_from may read it)") from None
        except ExpressionError as exc:
            if not scope.requested and isinstance(scope.requested, dict) and _reads_requested(raw):
                raise JobError(f"{where}: reads requested_metadata, which is not known here: a task's "
                               "type, name and files read the metadata requested by the control-flow "
                               "task around them (one with requires_metadata_from), its parameters "
                               f"the metadata it requests itself ({exc})") from None
            raise JobError(f"{where}: {exc}") from None

    def text(self, raw: Any, where: str, env: Env, scope: _Scope, allow_empty: bool = False,
             limit: int = 200) -> str | None:
        """A string field; ``limit`` is the width of its database column."""
        value = self.value(raw, where, env, scope)
        if value is None and scope.probe:
            return None
        if not isinstance(value, str) or (not value and not allow_empty):
            raise JobError(f"{where}: must be a {'' if allow_empty else 'non-empty '}string, got {value!r}")
        if len(value) > limit:
            raise JobError(f"{where}: {value[:60]!r}... is {len(value)} characters long; the limit is {limit}")
        return value

    def files(self, value: Any, where: str, wd: str, env: Env, scope: _Scope) -> dict[str, str]:
        if not isinstance(value, dict):
            raise JobError(f"{where}: must map semantic names to file names, got {_kind(value)}")
        out = {}
        for raw_name, raw_file in value.items():
            semantic = self.text(raw_name, f"{where}.{raw_name}", env, scope, limit=100)
            filename = self.value(raw_file, f"{where}.{raw_name}", env, scope)
            if semantic is None or filename is None:
                continue                    # a probe: known at run time only
            if not isinstance(filename, str) or not filename:
                raise JobError(f"{where}.{semantic}: file name must be a non-empty string, got {filename!r}")
            try:
                out[semantic] = object_key(wd, filename)
            except ValueError as exc:
                raise JobError(f"{where}.{semantic}: {exc}") from None
            if len(out[semantic]) > MAX_KEY:
                raise JobError(f"{where}.{semantic}: the object key is longer than {MAX_KEY} characters")
        return out

    # ------------------------------------------------------------------ the end
    def resolve(self) -> dict[str, list[tuple[str, bool]]]:
        """Check every input against the outputs; return the inputs nobody in the job makes."""
        external: dict[str, list[tuple[str, bool]]] = {}
        for key, where, seq, branch, may_wait in self.consumers:
            made = self.outputs.get(key)
            if made is None:
                external.setdefault(key, []).append((where, may_wait))
            elif made.seq >= seq:
                raise JobError(f"{where}: {key!r} is produced by {made.path}, which comes later in the job; "
                               "a task can only read what an earlier task makes")
            elif _exclusive(made.branch, branch):
                raise JobError(f"{where}: {key!r} is produced by {made.path}, in the other branch of the "
                               "same conditional")
        return external


# ---------------------------------------------------------------------- entry points
def compile_job(spec: Any, *, metadata: dict | None = None, default_working_directory: str = "",
                default_job_name: str = "untitled") -> CompiledJob:
    """Compile a job description; raises JobError naming the path of the first defect.

    ``metadata`` is visible to every expression (watch rules put the uploaded object's names
    there); ``default_working_directory`` applies when the job names none. The size limits
    (``MAX_*_ITEMS`` in :mod:`eas_runtime.jobs.plan`) hold here, whichever route the job came by.
    """
    with ex.shared_budget(MAX_JOB_EVALUATION_ITEMS, "the job"):
        return _compile_job(spec, metadata, default_working_directory, default_job_name)


def _compile_job(spec: Any, metadata: dict | None, default_working_directory: str,
                 default_job_name: str) -> CompiledJob:
    if not isinstance(spec, dict):
        raise JobError(f"a job description is a JSON object, got {_kind(spec)}")
    unknown = set(spec) - set(JOB_KEYS)
    if unknown:
        raise JobError(f"unknown top-level keys {sorted(map(str, unknown))}; allowed: {', '.join(JOB_KEYS)}")
    _finite(spec, "job")                # also refuses nesting deeper than MAX_DEPTH
    if Budget(deadline=math.inf).size(spec, MAX_DESCRIPTION_ITEMS) > MAX_DESCRIPTION_ITEMS:
        raise JobError(f"the job description has more than {MAX_DESCRIPTION_ITEMS} items, the limit per job "
                       "(characters and list or dict members, nested ones counted each time they are reached)")
    metadata = dict(metadata or {})
    env = Env(metadata, {})
    compiler = _Compiler()
    top = _Scope(metadata, {}, "", "", False)
    job_name = compiler.text(spec.get("job_name", default_job_name), "job_name", env, top, allow_empty=True)
    assert job_name is not None         # only a probe scope gives None; top is none
    wd = _directory(compiler.text(spec.get("working_directory", default_working_directory), "working_directory",
                                  env, top, allow_empty=True, limit=500), "working_directory")
    wait = _wait_flag(spec.get("wait_for_upload", None), "wait_for_upload", not wd)
    if isinstance(wait, frozenset):
        raise JobError("wait_for_upload: at the top level it is true or false")
    if "task_list" not in spec:
        raise JobError("task_list: a job needs a task_list")
    scope = _Scope(metadata, {}, job_name, wd, bool(wait))
    roots = compiler.task_list(spec["task_list"], "task_list", scope)
    external = compiler.resolve()
    job = CompiledJob(job_name, wd, roots, compiler.deferred, external)
    planned = job.outputs()
    job.deferred_outputs = {key: made.path for key, made in compiler.outputs.items() if key not in planned}
    return job


# ---------------------------------------------------------------------- helpers
def loop_parameter(item: dict, env: Env, here: str) -> str:
    raw = item["parameter"] if "parameter" in item else item.get("name")
    if raw is None:
        raise JobError(f"{here}.parameter: a for-loop needs the name of the parameter it sets")
    try:
        name = ex.evaluate(raw, env)
    except ExpressionError as exc:
        raise JobError(f"{here}.parameter: {exc}") from None
    if not isinstance(name, str) or not _IDENTIFIER.match(name):
        raise JobError(f"{here}.parameter: {name!r} must be a name (letters, digits, '_')")
    return name


def loop_values(item: dict, env: Env, here: str) -> list:
    """The values of a for-loop: ``values`` as given (after evaluating expressions),
    ``linear_range``/``log_range`` [start, end, n] as floats, end included (numpy's linspace and
    logspace, as the prototype)."""
    given = [k for k in ("values", "linear_range", "log_range") if k in item]
    if len(given) != 1:
        raise JobError(f"{here}: a for-loop takes exactly one of values, linear_range, log_range "
                       f"(got {given or 'none'})")
    key = given[0]
    try:
        value = ex.evaluate_structure(item[key], env)
    except ExpressionError as exc:
        raise JobError(f"{here}.{key}: {exc}") from None
    if not isinstance(value, list):
        raise JobError(f"{here}.{key}: must be a list, got {_kind(value)}")
    if key == "values":
        if len(value) > MAX_TASKS:
            raise JobError(f"{here}.values: more than {MAX_TASKS} values")
        _finite(value, f"{here}.values")
        return value
    if len(value) != 3:
        raise JobError(f"{here}.{key}: must be [start, end, number of values], got {value!r}")
    start, end, n = value
    for label, v in (("start", start), ("end", end)):
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
            raise JobError(f"{here}.{key}: {label} must be a finite number, got {v!r}")
    if isinstance(n, float) and n.is_integer():
        n = int(n)
    if isinstance(n, bool) or not isinstance(n, int) or n < 0 or n > MAX_TASKS:
        raise JobError(f"{here}.{key}: the number of values must be an integer from 0 to {MAX_TASKS}, got {n!r}")
    if key == "linear_range":
        return [float(v) for v in np.linspace(start, end, n)]
    if start <= 0 or end <= 0:
        raise JobError(f"{here}.log_range: start and end must be positive, got {start!r}, {end!r}")
    # np.log10, as the prototype: math.log10 and numpy's vectorised log10 can differ by one ulp
    # (AVX-512 on some CPUs), which moves a loop value off the prototype's.
    values = [float(v) for v in np.logspace(np.log10(float(start)), np.log10(float(end)), n)]
    _finite(values, f"{here}.log_range")
    return values


def do_while_settings(item: dict, here: str) -> tuple[str, list[str]]:
    name = item.get("iteration_name")
    if not isinstance(name, str) or not _IDENTIFIER.match(name):
        raise JobError(f"{here}.iteration_name: must be a name (letters, digits, '_'), got {name!r}")
    children = item.get("requires_metadata_from_child", [])
    if not isinstance(children, list) or not all(isinstance(c, str) for c in children):
        raise JobError(f"{here}.requires_metadata_from_child: must be a list of task names, got {children!r}")
    return name, children


def _reads_requested(raw: Any) -> bool:
    try:
        return ex.uses_requested_metadata(raw)
    except ExpressionError:
        return False


def _check_expression(raw: Any, where: str, required: bool = False) -> None:
    if raw is None and required:
        raise JobError(f"{where}: missing")
    try:
        ex.check(raw)
    except ExpressionError as exc:
        raise JobError(f"{where}: {exc}") from None


def _check_tree(raw: Any, where: str) -> None:
    """Parse every expression of a part that cannot be compiled at submission."""
    try:
        ex.check(raw)
    except ExpressionError as exc:
        raise JobError(f"{where}: {exc}") from None


def _directory(value: str | None, where: str) -> str:
    if not value:
        return ""
    wd = posixpath.normpath(value.strip("/"))
    if wd in (".", "..") or wd.startswith("../") or "\\" in wd or "\x00" in wd:
        raise JobError(f"{where}: {value!r} is not a folder inside the store")
    return wd


def _wait_flag(value: Any, where: str, inherited: bool) -> bool | frozenset:
    if value is None:
        return inherited
    if isinstance(value, bool):
        return value
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return frozenset(value)
    raise JobError(f"{where}: must be true, false or a list of input names, got {value!r}")


def _finite(value: Any, where: str, depth: int = 0) -> None:
    if depth > ex.MAX_DEPTH:
        raise JobError(f"{where}: nested more than {ex.MAX_DEPTH} levels deep")
    if isinstance(value, float) and not math.isfinite(value):
        raise JobError(f"{where}: {value!r} is not a finite number")
    if isinstance(value, dict):
        for v in value.values():
            _finite(v, where, depth + 1)
    elif isinstance(value, list):
        for v in value:
            _finite(v, where, depth + 1)
