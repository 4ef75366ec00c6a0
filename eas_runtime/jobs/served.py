"""Which task types this installation runs, and refusing a job that names another.

A task whose type nobody serves is never claimed by a function: its ``task.ready`` is resent
every redeliver interval until the reconcile tick gives the attempt up
(``max_unanswered_sends``), and then again for each of its attempts. So every front that takes a job
(``eas submit``, ``POST /api/jobs``, eas-control's ``job.submitted``) refuses it at submission,
naming the task's path and type and listing the types that are served.

Source of truth: the ``task.ready`` Triggers of the broker configuration
(``settings.broker_config_dir``, ``broker_config/`` by default), plus the control-flow types
eas-control runs itself. A Trigger, not a descriptor, is what routes a ``task.ready`` to a
function: the embedded broker reads exactly these files and a cluster applies the same ones, so
a descriptor whose Trigger is missing would still never receive its tasks. (``just generate``
writes the Triggers from the descriptors, and the routing check keeps the two equal.) The
manifest validator requires every ``task.ready`` Trigger to filter on an exact ``tasktype``, so
the exact filters are the whole set.

Where that folder does not exist (an image that ships only ``eas_runtime/``), the set is unknown
and jobs are not checked against it; ``EAS_BROKER_CONFIG_DIR`` can point at a mounted copy.
"""
from __future__ import annotations

import difflib
import logging
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from eas_runtime.jobs import expressions as ex
from eas_runtime.jobs.plan import (
    CONTROL_FLOW,
    FOR_LOOP,
    MAX_NESTING,
    CompiledJob,
    PlannedTask,
    UnservedTaskType,
)

log = logging.getLogger(__name__)
_cache: dict[str, tuple[tuple, frozenset[str] | None]] = {}
_lock = threading.Lock()
_LISTS = ("task_list", "else_task_list", "task_list_else")


def served_task_types(config_dir: str | Path) -> frozenset[str] | None:
    """Task types with a ``task.ready`` Trigger under ``config_dir``, plus the control-flow
    types; None when the folder holds no readable Trigger. Read again only when a file in the
    folder changed."""
    root = Path(config_dir)
    try:
        files = sorted(p for p in root.rglob("*") if p.suffix in (".yaml", ".yml") and p.is_file())
        signature = tuple((str(p), p.stat().st_mtime_ns, p.stat().st_size) for p in files)
    except OSError:
        files, signature = [], ()
    key = str(root.resolve()) if root.exists() else str(root)
    with _lock:
        cached = _cache.get(key)
        if cached is not None and cached[0] == signature:
            return cached[1]
    served = _read(root) if files else None
    if served is None:
        log.warning("no task.ready Triggers under %s: jobs are not checked for task types no function "
                    "serves (set EAS_BROKER_CONFIG_DIR)", root)
    with _lock:
        _cache[key] = (signature, served)
    return served


def _read(root: Path) -> frozenset[str] | None:
    from eas_runtime.deploy.routing import task_triggers
    from eas_runtime.manifests import ManifestError, load_documents
    try:
        docs = [doc for _, _, doc in load_documents([root])]
    except ManifestError as exc:
        log.warning("cannot read the Triggers under %s: %s", root, exc)
        return None
    types = set(task_triggers(docs))
    return frozenset(types | CONTROL_FLOW) if types else None


def check_served(compiled: CompiledJob, served: frozenset[str] | None) -> None:
    """Raise :class:`UnservedTaskType` for the first task, at submission or in a part that runs
    later, whose type is not in ``served`` (no check when ``served`` is None). A type computed at
    run time from requested metadata cannot be known here and is not checked."""
    if served is None:
        return
    for path, task_type in task_types(compiled):
        if task_type not in served:
            raise UnservedTaskType(unserved_message(path, task_type, served))


def unserved_message(path: str, task_type: str, served: frozenset[str]) -> str:
    functions = sorted(served - CONTROL_FLOW)
    close = difflib.get_close_matches(task_type, sorted(served), n=1, cutoff=0.6)
    hint = f" (did you mean {close[0]!r}?)" if close else ""
    return (f"{path}.task: no function serves task type {task_type!r}{hint}; served: "
            f"{', '.join(functions)}; control flow: {', '.join(sorted(CONTROL_FLOW))}")


def task_types(compiled: CompiledJob) -> Iterator[tuple[str, str]]:
    """(path, task type) of every task the job plans: the rows created at submission, the
    compiled probes of deferred parts, and the literal types in the body of a for-loop whose
    values are known at run time only (the compiler could not expand it)."""
    for root in compiled.roots:
        yield from _planned(root)


def _planned(root: PlannedTask) -> Iterator[tuple[str, str]]:
    for node in root.walk():
        if node.task_type != "(known at run time)":
            yield node.path, node.task_type
        for branch in (node.probes or {}).values():
            for child in branch:
                yield from _planned(child)
        if node.probes == {} and node.task_type == FOR_LOOP:
            yield from _literal(node.params.get("spec"), node.path)


def _literal(item: Any, here: str, depth: int = 0) -> Iterator[tuple[str, str]]:
    """Types written as plain strings in a raw description (expressions are skipped)."""
    if not isinstance(item, dict) or depth > MAX_NESTING:
        return
    for key in _LISTS:
        items = item.get(key)
        if not isinstance(items, list):
            continue
        for i, child in enumerate(items):
            where = f"{here}.{key}[{i}]"
            raw = child.get("task") if isinstance(child, dict) else None
            if isinstance(raw, str) and not ex.is_expression(raw):
                yield where, raw.strip()
            yield from _literal(child, where, depth + 1)
