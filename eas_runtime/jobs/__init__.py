"""Jobs: task-chain JSON (PARITY.md section 1) compiled into task rows.

This first compiler handles plain tasks and ``execution_chain``; every name, input, output and
parameter is checked at submission and a problem is reported with the task's path in the job
(``task_list[2].task_list[0]``). Dependencies are never declared: a task waits for the objects it
names as inputs and for the tasks it names in ``requires_metadata_from``.
"""
from __future__ import annotations

import posixpath
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from eas_runtime.db import metadata as md
from eas_runtime.db.models import Job, Task, TaskInput, TaskMetadataInput, TaskOutput

RESERVED = {"task", "name", "inputs", "outputs", "requires_metadata_from", "job_name",
            "working_directory", "task_list", "else_task_list"}
CONTROL_FLOW = {"execution_chain", "execution_for_loop", "execution_conditional",
                "execution_do_while_loop"}


class JobError(ValueError):
    """A job description that cannot be run; the message names the task's path and the defect."""


@dataclass
class TaskSpec:
    path: str
    task_type: str
    name: str
    job_name: str
    working_directory: str
    params: dict[str, Any]
    inputs: dict[str, str]
    outputs: dict[str, str]
    requires_metadata_from: list[str] = field(default_factory=list)


@dataclass
class CompiledJob:
    job_name: str
    working_directory: str
    tasks: list[TaskSpec]

    def task_counts(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for t in self.tasks:
            counts[t.task_type] = counts.get(t.task_type, 0) + 1
        return dict(sorted(counts.items()))


def object_key(working_directory: str, filename: str) -> str:
    key = posixpath.normpath(posixpath.join(working_directory, filename)) if working_directory else filename
    if key.startswith(("/", "../")) or key in ("", ".", ".."):
        raise ValueError(f"file name {filename!r} leaves the store")
    return key


def compile_job(spec: Any) -> CompiledJob:
    if not isinstance(spec, dict):
        raise JobError(f"a job description is a JSON object, got {type(spec).__name__}")
    unknown = set(spec) - {"job_name", "working_directory", "task_list"}
    if unknown:
        raise JobError(f"unknown top-level keys {sorted(unknown)}; allowed: job_name, working_directory, task_list")
    job_name = _str(spec.get("job_name", "untitled"), "job_name")
    wd = _str(spec.get("working_directory", ""), "working_directory")
    tasks: list[TaskSpec] = []
    _compile_list(spec.get("task_list"), "task_list", job_name, wd, tasks)
    produced: dict[str, str] = {}
    for t in tasks:
        for key in t.outputs.values():
            if key in produced:
                raise JobError(f"{t.path}: output {key!r} is already produced by {produced[key]}")
            produced[key] = t.path
    return CompiledJob(job_name, wd, tasks)


def _compile_list(items: Any, path: str, job_name: str, wd: str, out: list[TaskSpec]) -> None:
    if not isinstance(items, list):
        raise JobError(f"{path}: must be a list of tasks, got {type(items).__name__}")
    names_here: set[str] = set()
    for i, item in enumerate(items):
        here = f"{path}[{i}]"
        if not isinstance(item, dict):
            raise JobError(f"{here}: a task is a JSON object, got {type(item).__name__}")
        task_type = item.get("task")
        if not isinstance(task_type, str) or not task_type:
            raise JobError(f"{here}: 'task' must name a task type")
        t_job = _str(item.get("job_name", job_name), f"{here}.job_name")
        t_wd = _str(item.get("working_directory", wd), f"{here}.working_directory")
        if task_type == "execution_chain":
            _compile_list(item.get("task_list"), f"{here}.task_list", t_job, t_wd, out)
            continue
        if task_type in CONTROL_FLOW:
            raise JobError(f"{here}: control-flow task {task_type!r} is not supported by this compiler")
        name = _str(item.get("name", ""), f"{here}.name")
        if name and name in names_here:
            raise JobError(f"{here}: the name {name!r} is used twice in {path}")
        if name:
            names_here.add(name)
        inputs = _files(item.get("inputs", {}), f"{here}.inputs", t_wd)
        outputs = _files(item.get("outputs", {}), f"{here}.outputs", t_wd)
        requires = item.get("requires_metadata_from", [])
        if not isinstance(requires, list) or not all(isinstance(r, str) for r in requires):
            raise JobError(f"{here}.requires_metadata_from: must be a list of task names")
        for r in requires:
            if r not in names_here - {name}:
                raise JobError(f"{here}.requires_metadata_from: no earlier task named {r!r} in {path}")
        params = {k: v for k, v in item.items() if k not in RESERVED}
        out.append(TaskSpec(here, task_type, name, t_job, t_wd, params, inputs, outputs, list(requires)))


def _str(value: Any, where: str) -> str:
    if not isinstance(value, str):
        raise JobError(f"{where}: must be a string, got {value!r}")
    return value


def _files(value: Any, where: str, wd: str) -> dict[str, str]:
    if not isinstance(value, dict):
        raise JobError(f"{where}: must map semantic names to file names, got {type(value).__name__}")
    out = {}
    for name, filename in value.items():
        if not isinstance(filename, str) or not filename:
            raise JobError(f"{where}.{name}: file name must be a non-empty string, got {filename!r}")
        try:
            out[name] = object_key(wd, filename)
        except ValueError as exc:
            raise JobError(f"{where}.{name}: {exc}") from None
    return out


def insert_job(session: Session, compiled: CompiledJob, *, source_event: str | None,
               spec: Any = None) -> tuple[Job, bool]:
    """Create the job and its tasks; return (job, created). A repeated ``source_event`` returns
    the existing job. Raises JobError when an output is already planned by another job."""
    if source_event:
        existing = session.scalar(select(Job).where(Job.source_event == source_event))
        if existing is not None:
            return existing, False
    taken = session.scalars(select(TaskOutput.key).where(
        TaskOutput.key.in_([k for t in compiled.tasks for k in t.outputs.values()]))).all()
    if taken:
        raise JobError(f"outputs already exist in the pipeline: {sorted(taken)[:5]}")
    job = Job(name=compiled.job_name, working_directory=compiled.working_directory,
              source_event=source_event, spec=spec if spec is not None else {})
    try:
        with session.begin_nested():
            session.add(job)
            session.flush()
    except IntegrityError:
        return session.scalar(select(Job).where(Job.source_event == source_event)), False
    by_name: dict[tuple[str, str], Task] = {}      # (enclosing list, name) -> task
    for t in compiled.tasks:
        scope = t.path.rsplit("[", 1)[0]
        task = Task(job_id=job.id, path=t.path, name=t.name, task_type=t.task_type,
                    working_directory=t.working_directory, params=t.params)
        session.add(task)
        session.flush()
        for semantic, key in t.inputs.items():
            session.add(TaskInput(task_id=task.id, semantic_name=semantic, key=key))
        for semantic, key in t.outputs.items():
            session.add(TaskOutput(task_id=task.id, semantic_name=semantic, key=key))
        for r in t.requires_metadata_from:
            session.add(TaskMetadataInput(task_id=task.id, source_task_id=by_name[scope, r].id))
        md.set_metadata(session, "task", task.id, {"path": t.path, "job_name": t.job_name})
        if t.name:
            by_name[scope, t.name] = task
    return job, True
