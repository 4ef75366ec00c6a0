"""The planned-task model: what compiling a job gives (a tree of task rows to create), with
the constants of the job format.

A control-flow entry is a task row too: a for-loop has one ``execution_chain`` child per
value (path ``<loop>@<index>``), whose children are the loop body
(``<loop>@<index>.task_list[<j>]``). The prototype's extra root ``execution_chain`` for the job
file is the Job row here.
"""
from __future__ import annotations

import posixpath
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

CHAIN, FOR_LOOP, CONDITIONAL, DO_WHILE = ("execution_chain", "execution_for_loop",
                                          "execution_conditional", "execution_do_while_loop")
CONTROL_FLOW = frozenset({CHAIN, FOR_LOOP, CONDITIONAL, DO_WHILE})
JOB_KEYS = ("job_name", "working_directory", "task_list", "wait_for_upload")
COMMON_KEYS = frozenset({"task", "name", "inputs", "outputs", "requires_metadata_from", "job_name",
                         "working_directory", "wait_for_upload"})
CONTROL_KEYS = {
    CHAIN: frozenset({"task_list"}),
    FOR_LOOP: frozenset({"parameter", "values", "linear_range", "log_range", "task_list"}),
    CONDITIONAL: frozenset({"criterion", "task_list", "else_task_list", "task_list_else"}),
    DO_WHILE: frozenset({"iteration_name", "repeat_criterion", "requires_metadata_from_child",
                         "task_list"}),
}
#: Keys of a plain task that are not parameters of its function.
NOT_PARAMETERS = COMMON_KEYS
#: Keys a plain task may not use ("metadata" carries the inherited metadata in ``params``).
LEAF_FORBIDDEN = frozenset({"metadata", "task_list", "else_task_list"})
MAX_TASKS = 500_000
#: Size limits in items (characters and list or dict members, nested ones counted each time they
#: are reached; :mod:`eas_runtime.jobs._bounds`), so that no row and no job can be huge: the job
#: description as sent, the parameters of one task row (its evaluated parameters and inherited
#: metadata, or the part of the description a deferred control-flow task keeps), and all rows of
#: a job together. The largest example, detection_grid_2d.json, is 1,819 items, at most 234 per
#: row and 17.5 million in its 128,029 rows.
MAX_DESCRIPTION_ITEMS = 200_000
MAX_TASK_ITEMS = 300_000
MAX_JOB_ITEMS = 50_000_000
#: Items made by all the expressions evaluated while compiling one job (or expanding one
#: control-flow task) together: each evaluation is bounded, thousands of them add up. The
#: expressions of detection_grid_2d.json make 1.9 million.
MAX_JOB_EVALUATION_ITEMS = 50_000_000
MAX_NESTING = 64
MAX_PATH = 480
MAX_DO_WHILE_ITERATIONS = 10_000
_TASK_TYPE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,99}$")
_IDENTIFIER = re.compile(r"^[A-Za-z][A-Za-z0-9_]{0,99}$")


class JobError(ValueError):
    """A job description that cannot be run; the message names the task's path and the defect."""


class UnservedTaskType(JobError):
    """A task names a type that no function of this installation serves (its tasks would stay
    queued forever)."""


class JobConflict(JobError):
    """The job clashes with the database: an output another job plans, or an object that
    already exists. An HTTP front answers 409."""


@dataclass(slots=True, eq=False)
class PlannedTask:
    """One task row to create (or, inside a deferred part, to check only)."""

    path: str
    task_type: str
    name: str = ""
    working_directory: str = ""
    job_name: str = ""
    params: dict = field(default_factory=dict)
    inputs: dict = field(default_factory=dict)           # semantic name -> object key
    outputs: dict = field(default_factory=dict)          # semantic name -> object key
    requires: list = field(default_factory=list)         # earlier siblings (PlannedTask)
    children: list = field(default_factory=list)
    #: A control-flow task evaluated at compile time: its row is created done.
    expanded: bool = False
    #: A plain task whose parameters read ``requested_metadata``: bound when its sources ran.
    late: bool = False
    #: Semantic input names that may wait for an upload (every input when True).
    wait: bool | frozenset = False
    retry_science_failures: bool = False
    #: A deferred control-flow task: its parts compiled for checking only (``task_list`` and
    #: ``else_task_list`` of a conditional, ``iteration 1`` of a do-while loop, ``body`` of a
    #: chain or for-loop that reads requested_metadata).
    probes: dict | None = None
    note: str = ""

    @property
    def is_control(self) -> bool:
        return self.task_type in CONTROL_FLOW

    @property
    def metadata(self) -> dict:
        return self.params.get("metadata", {})

    def walk(self) -> Iterator[PlannedTask]:
        stack = [self]
        while stack:
            node = stack.pop()
            yield node
            stack.extend(reversed(node.children))


@dataclass
class CompiledJob:
    job_name: str
    working_directory: str
    roots: list
    #: The deferred control-flow tasks created at submission (with their probes).
    deferred: list = field(default_factory=list)
    #: Inputs no task of the job produces: object key -> [(path, may wait for upload)].
    external_inputs: dict = field(default_factory=dict)
    #: Outputs of deferred parts (checked against the database at submission too).
    deferred_outputs: dict = field(default_factory=dict)

    def walk(self) -> Iterator[PlannedTask]:
        for root in self.roots:
            yield from root.walk()

    @property
    def tasks(self) -> list[PlannedTask]:
        """The plain tasks created at submission (what functions will run)."""
        return [t for t in self.walk() if not t.is_control]

    @property
    def rows(self) -> int:
        return sum(1 for _ in self.walk())

    def outputs(self) -> dict[str, str]:
        return {key: t.path for t in self.walk() for key in t.outputs.values()}

    def task_counts(self) -> dict[str, int]:
        """Plain tasks per type that certainly run: those created at submission, the first
        iteration of every do-while body and the body of a deferred chain; not the branches of a
        conditional (see :attr:`deferred`) nor deferred for-loop bodies (their length is known
        at run time only)."""
        return count_types(self._certain(), control=False)

    def control_counts(self) -> dict[str, int]:
        """Control-flow tasks per type on the same terms as :meth:`task_counts`."""
        return count_types(self._certain(), control=True)

    def _certain(self) -> Iterator[PlannedTask]:
        return certain(self.roots)


def certain(nodes) -> Iterator[PlannedTask]:
    """The tasks that certainly exist once ``nodes`` ran: the nodes, and the first iteration of
    a do-while loop or the body of a deferred chain among them (recursively)."""
    for root in nodes:
        for node in root.walk():
            yield node
            if node.probes and (node.task_type == DO_WHILE or node.task_type == CHAIN):
                for branch in node.probes.values():
                    yield from certain(branch)


def count_types(nodes, *, control: bool) -> dict[str, int]:
    counts: dict[str, int] = {}
    for t in nodes:
        if t.is_control == control:
            counts[t.task_type] = counts.get(t.task_type, 0) + 1
    return dict(sorted(counts.items()))


def object_key(working_directory: str, filename: str) -> str:
    """Object key of ``filename``: relative to the working directory, or from the store's root
    when it starts with ``/``."""
    if filename.startswith("/"):
        joined = filename.lstrip("/")
    else:
        joined = posixpath.join(working_directory, filename) if working_directory else filename
    key = posixpath.normpath(joined) if joined else ""
    if key in ("", ".", "..") or key.startswith("../") or "\\" in key or "\x00" in key:
        raise ValueError(f"file name {filename!r} does not name an object in the store")
    return key


def _kind(value: Any) -> str:
    return {dict: "an object", list: "a list", str: "a string", bool: "a boolean", int: "a number",
            float: "a number", type(None): "null"}.get(type(value), type(value).__name__)
