"""Tasks: the job tree (filters, depth, drill into a subtree), the running view, one task in full."""
from __future__ import annotations

import math

from flask import Blueprint, jsonify, render_template, url_for
from sqlalchemy import select

from eas_runtime import diagnostics
from eas_runtime.db.models import Product, ProductVersion
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
    page of its log (``log_page``, ``severity``), and for a search its plots (``plots``, see
    :func:`search_plots`)."""
    from eas_runtime.planets.stars import star_of_keys

    detail = diagnostics.task_detail(db(), task_id, stall_s=stall_s())
    detail["star"] = star_of_keys(db(), [f["key"] for f in detail["inputs"] + detail["outputs"]])
    detail["search"] = found_by(detail)
    detail["plots"] = search_plots(detail)
    detail["log"] = diagnostics.logs(db(), task_id=task_id, severity=text_arg("severity"),
                                     page=int_arg("log_page", high=MAX_PAGE) or 0)
    return detail


#: Results of a search shown beside its plots (all of them are in the attempts table).
FOUND_KEYS = ("period", "epoch", "duration", "depth", "snr", "sde", "power", "transit_count",
              "n_candidates", "outcome")


def _number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def found_by(detail: dict) -> dict | None:
    """What a search found: the newest attempt that recorded a period > 0 and an epoch
    (any search task: transit_search_bls_reference, _bls_kovacs, _tls, _qats, planet_search...):
    ``attempt_id``, ``values`` (its :data:`FOUND_KEYS`) and their ``units``; None for a task
    that is not a search or found nothing."""
    for a in reversed(detail["attempts"]):
        meta = a.get("metadata") or {}
        if _number(meta.get("period")) and meta["period"] > 0 and _number(meta.get("epoch")):
            values = {k: meta[k] for k in FOUND_KEYS if k in meta}
            units = a.get("units") or {}
            return {"attempt_id": a["attempt_id"], "values": values,
                    "units": {k: units[k] for k in values if k in units}}
    return None


def search_plots(detail: dict) -> list[dict]:
    """The plots of a search. ``folded``: the light curve the attempt of :func:`found_by`
    (``detail["search"]``) read, folded at its period and epoch (the products area's fold of
    that version by this task; nothing is searched again); ``periodogram``: the periodogram
    that attempt wrote, or, for a search that found no period (a planet_search whose strongest
    candidate is a single transit), the one its newest attempt wrote (versions of type
    periodogram). Each item: ``kind``, ``key``, ``version_id``, ``png``, ``json``; empty for a
    task that is no search."""
    search = detail.get("search")
    out = []

    def add(kind: str, key: str, version_id: int | None, **args) -> None:
        if version_id is not None:
            out.append({"kind": kind, "key": key, "version_id": version_id,
                        "png": url_for("products.plot_png", version_id=version_id, kind=kind, **args),
                        "json": url_for("products.plot_json", version_id=version_id, kind=kind, **args)})

    inputs = detail["inputs"]
    lc = next((f for f in inputs if f["name"] == "lightcurve"), inputs[0] if inputs else None)
    if search is not None and lc is not None:
        found = next(a for a in detail["attempts"] if a["attempt_id"] == search["attempt_id"])
        read = next((r["version_id"] for r in found.get("read") or []
                     if r["key"] == lc["key"] and r["version_id"]), None)
        add("folded", lc["key"], read or (lc["versions"][-1]["id"] if lc["versions"] else None),
            task=detail["task_id"])
    # Declared outputs or not (a task run by ``eas invoke`` declares none): what the attempt wrote.
    attempts = [search["attempt_id"]] if search else [a["attempt_id"] for a in detail["attempts"]]
    if attempts:
        with db().read() as s:
            written = s.execute(select(ProductVersion.attempt_id, ProductVersion.id, Product.key)
                                .join(Product).where(ProductVersion.attempt_id.in_(attempts),
                                                     Product.semantic_type == "periodogram")
                                .order_by(ProductVersion.id)).all()
        newest = max((a for a, _, _ in written), default=None)
        for attempt_id, version_id, key in written:
            if attempt_id == newest:
                add("periodogram", key, version_id)
    return out


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
    from eas_runtime.site.plots import PIXELS

    return render_template("task.html", t=task_data(task_id), plot_px=PIXELS)


@bp.get("/api/tasks/<int:task_id>")
def api_task(task_id: int):
    return jsonify(task_data(task_id))
