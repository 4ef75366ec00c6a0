"""The dry run: a compiled job's task tree as text, and its counts as a JSON-ready summary."""
from __future__ import annotations

import re

from eas_runtime.jobs.plan import CompiledJob, PlannedTask, certain, count_types

_ITERATION = re.compile(r"@\d+")

#: For-loops longer than this show their first iterations and a summary line (``full`` shows all).
SHOWN_ITERATIONS = 2


def summary(compiled: CompiledJob) -> dict:
    """Counts of a compiled job.

    ``task_counts`` maps each function task type to the number of tasks that certainly run:
    those created at submission, plus the first iteration of every do-while loop and the body
    of a chain that waits for run-time metadata. ``control_counts`` does the same for the
    control-flow task types (the prototype's extra root ``execution_chain`` is the job row here
    and is not counted). A conditional counts as its own task only: each of its branches is
    listed under ``deferred`` with its counts, as is every part evaluated at run time (one
    entry per place in the job, with ``count`` the number of loop iterations that have one).
    """
    counts = compiled.task_counts()
    return {
        "job_name": compiled.job_name,
        "working_directory": compiled.working_directory,
        "rows": compiled.rows,
        "tasks": sum(counts.values()),
        "task_counts": counts,
        "control_counts": compiled.control_counts(),
        "deferred": _grouped(compiled.deferred),
        "external_inputs": sorted(compiled.external_inputs),
    }


def _grouped(nodes: list[PlannedTask]) -> list[dict]:
    """Deferred parts, one entry per place in the job: loop iterations are folded into one
    entry (``@*`` in ``path``) with their number in ``count``."""
    groups: dict[tuple, dict] = {}
    for node in nodes:
        branches = {label: {"task_counts": count_types(certain(b), control=False),
                            "control_counts": count_types(certain(b), control=True)}
                    for label, b in (node.probes or {}).items()}
        pattern = _ITERATION.sub("@*", node.path)
        key = (pattern, node.task_type, node.note, repr(branches))
        if key in groups:
            groups[key]["count"] += 1
        else:
            groups[key] = {"path": pattern, "first": node.path, "count": 1, "task_type": node.task_type,
                           "note": node.note, "branches": branches}
    return list(groups.values())


def render(compiled: CompiledJob, *, full: bool = False) -> list[str]:
    """One line per task, indented by depth; long for-loops are abbreviated unless ``full``."""
    lines = [f"job {compiled.job_name!r} in {compiled.working_directory or '(store root)'}"]
    for root in compiled.roots:
        _render(root, 1, lines, full)
    return lines


def _label(node: PlannedTask) -> str:
    parts = [node.path, node.task_type]
    if node.name:
        parts.append(f"name={node.name}")
    if node.task_type == "execution_chain" and node.path.rsplit("@", 1)[-1].isdigit():
        md = node.params.get("metadata", {})
        loop = [k[:-6] for k in md if k.endswith("_index") and k[:-6] in md]
        if loop:
            p = loop[-1]
            parts.append(f"{p}={md[p]!r}")
    if node.inputs:
        parts.append("in: " + ", ".join(node.inputs.values()))
    if node.outputs:
        parts.append("out: " + ", ".join(node.outputs.values()))
    if node.late:
        parts.append("(parameters bound at run time)")
    if node.probes is not None:
        parts.append(f"(evaluated at run time{': ' + node.note if node.note else ''})")
    return "  ".join(parts)


def _render(node: PlannedTask, depth: int, lines: list[str], full: bool) -> None:
    pad = "  " * depth
    lines.append(pad + _label(node))
    children = node.children
    if not full and node.task_type == "execution_for_loop" and len(children) > SHOWN_ITERATIONS:
        for child in children[:SHOWN_ITERATIONS]:
            _render(child, depth + 1, lines, full)
        rest = children[SHOWN_ITERATIONS:]
        size = sum(1 for c in rest for _ in c.walk())
        word = "iteration" if len(rest) == 1 else "iterations"
        lines.append(f"{pad}  ... {len(rest)} more {word} ({size} tasks; --full shows them)")
    else:
        for child in children:
            _render(child, depth + 1, lines, full)
    for label, branch in (node.probes or {}).items():
        lines.append(f"{pad}  [{label}]")
        for child in branch:
            _render(child, depth + 2, lines, full)
