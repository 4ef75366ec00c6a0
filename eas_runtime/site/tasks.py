"""Tasks: the job tree (filters, depth, drill into a subtree), the running view, one task in full."""
from __future__ import annotations

from flask import Blueprint, jsonify, render_template

from eas_runtime import diagnostics
from eas_runtime.diagnostics import MAX_DEPTH
from eas_runtime.diagnostics._common import MAX_PAGE
from eas_runtime.site._request import db, id_arg, install, int_arg, job_arg, page_args, stall_s, text_arg

bp = install(Blueprint("tasks", __name__))


def tree_data(running_only: bool = False) -> dict:
    """One page of the tree in depth-first order: ``job``, ``subtree`` (a task id: that task
    and what is below it), ``depth`` (0-6 levels below the roots) and ``page``."""
    return diagnostics.tree(db(), job_id=job_arg(), subtree=id_arg("subtree", "a task"),
                            depth=int_arg("depth", low=0, high=MAX_DEPTH),
                            running_only=running_only, stall_s=stall_s(), **page_args())


def task_data(task_id: int) -> dict:
    """The task with every attempt (results with their units: ``units``), inputs, outputs,
    metadata, the star its files are of (``star``: ``star_id`` and ``name``, or None), and one
    page of its log (``log_page``, ``severity``)."""
    from eas_runtime.planets.stars import star_of_keys

    detail = diagnostics.task_detail(db(), task_id, stall_s=stall_s())
    detail["star"] = star_of_keys(db(), [f["key"] for f in detail["inputs"] + detail["outputs"]])
    detail["log"] = diagnostics.logs(db(), task_id=task_id, severity=text_arg("severity"),
                                     page=int_arg("log_page", high=MAX_PAGE) or 0)
    return detail


@bp.get("/tasks")
def tasks():
    return render_template("tasks.html", data=tree_data(), running=False, max_depth=MAX_DEPTH)


@bp.get("/api/tasks")
def api_tasks():
    return jsonify(tree_data())


@bp.get("/tasks/running")
def running():
    return render_template("tasks.html", data=tree_data(running_only=True), running=True,
                           max_depth=MAX_DEPTH)


@bp.get("/api/tasks/running")
def api_running():
    return jsonify(tree_data(running_only=True))


@bp.get("/tasks/<int:task_id>")
def task(task_id: int):
    return render_template("task.html", t=task_data(task_id))


@bp.get("/api/tasks/<int:task_id>")
def api_task(task_id: int):
    return jsonify(task_data(task_id))
