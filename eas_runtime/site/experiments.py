"""The experiment report of a job: what its transit searches found, keyed by its loop parameters.

``/jobs/<id>/report`` (JSON twin ``/api/jobs/<id>/report``) shows the TDA comparison table and
each plot the job's loop parameters allow (``eas_runtime.diagnostics.experiments`` decides and
defines every number): the PASS fraction against one parameter per TDA, the completeness map
over two, and search time against light-curve length on log axes with the fitted exponent.
Each plot has a PNG (``/jobs/<id>/report/<plot>.png``) and a CSV (``.../<plot>.csv``) of the
numbers drawn; ``/jobs/<id>/report/tdas.csv`` is the table.

Query parameters (every route; a bad value is a 400 naming it): ``x`` (the fraction plot's
parameter), ``map_x`` and ``map_y`` (the map's), ``length`` (the length parameter), ``by`` (a
parameter splitting the series of the fraction and timing plots), ``time`` (``cpu`` or
``wall``). Nothing is cached: a running job's report changes as its searches end.
"""
from __future__ import annotations

import io
import re
from typing import Any, Callable
from urllib.parse import urlencode

from flask import Blueprint, Response, jsonify, render_template, request

from eas_runtime.db.models import Job
from eas_runtime.diagnostics import NotFound
from eas_runtime.diagnostics import experiments as ex
from eas_runtime.site import experiment_plots as draw
from eas_runtime.site._request import db, install, text_arg

bp = install(Blueprint("experiments", __name__))
CHOICES = ("x", "by", "map_x", "map_y", "length", "time")
#: Plot name: (query, PNG drawing, CSV writer, query arguments).
PLOTS: dict[str, tuple[Callable[..., Any], Callable[..., Any], Callable[..., Any], tuple[str, ...]]] = {
    "fraction": (ex.fraction, draw.fraction_png, draw.fraction_csv, ("x", "by")),
    "completeness": (ex.completeness, draw.completeness_png, draw.completeness_csv, ("map_x", "map_y")),
    "timing": (ex.timing, draw.timing_png, draw.timing_csv, ("length", "by", "time"))}
#: The data functions' keyword for each query parameter.
_KEYWORDS = {"map_x": "x", "map_y": "y"}


def choices() -> dict:
    return {name: text_arg(name) for name in CHOICES}


def _plot_data(job_id: int, plot: str, given: dict) -> dict:
    query = PLOTS[plot][0]
    return query(db(), job_id, **{_KEYWORDS.get(n, n): given[n] for n in PLOTS[plot][3]})


def report_data(job_id: int) -> dict:
    """The report (``experiments.report``) with the job's name; a choice given for a plot the
    job does not allow is a 400 naming it."""
    given = choices()
    data = ex.report(db(), job_id, **given)
    for name in CHOICES:
        if name == "time" or given[name] is None:      # time: a setting, not a parameter
            continue
        plots = [plot for plot, (*_, names) in PLOTS.items() if name in names]
        if all(data[plot] is None for plot in plots):
            raise ex.ExperimentError(f"{name}={given[name]!r} cannot be used: job {job_id} has no "
                                     f"{' or '.join(plots)} plot (its searches are not looped over such "
                                     f"parameters, or read transit-free light curves only)")
    with db().read() as s:
        data["name"] = s.get(Job, job_id).name
    return data


def _available(job_id: int, plot: str, given: dict) -> None:
    """Every choice checked (400), and 404 unless the report of the job shows ``plot``."""
    if not ex.validate(db(), job_id, **given)["plots"][plot]:
        raise NotFound(f"job {job_id} has no {plot} plot: its searches are not looped over such "
                       f"parameters, or read transit-free light curves only")


def _query() -> str:
    kept = {n: request.args[n] for n in CHOICES if request.args.get(n, "").strip()}
    return urlencode(kept)


def _name(job_id: int, plot: str, suffix: str) -> str:
    return f"job{job_id}-{re.sub(r'[^A-Za-z0-9_.-]+', '_', plot)}.{suffix}"


@bp.get("/jobs/<int:job_id>/report")
def report(job_id: int):
    return render_template("experiment.html", r=report_data(job_id), q=_query(),
                           choices=choices())


@bp.get("/api/jobs/<int:job_id>/report")
def api_report(job_id: int):
    return jsonify(report_data(job_id))


@bp.get("/jobs/<int:job_id>/report/<plot>.png")
def plot_png(job_id: int, plot: str):
    if plot not in PLOTS:
        raise NotFound(f"no plot {plot!r}: the plots are {', '.join(PLOTS)}")
    given = choices()
    _available(job_id, plot, given)
    png = PLOTS[plot][1](_plot_data(job_id, plot, given))
    return Response(png, mimetype="image/png",
                    headers={"Content-Disposition": f'inline; filename="{_name(job_id, plot, "png")}"'})


@bp.get("/jobs/<int:job_id>/report/<plot>.csv")
def plot_csv(job_id: int, plot: str):
    buffer = io.StringIO()
    given = choices()
    if plot == "tdas":
        ex.validate(db(), job_id, **given)
        draw.tdas_csv(buffer, ex.tda_table(db(), job_id))
    elif plot in PLOTS:
        _available(job_id, plot, given)
        PLOTS[plot][2](buffer, _plot_data(job_id, plot, given))
    else:
        raise NotFound(f"no table {plot!r}: the tables are {', '.join(PLOTS)}, tdas")
    return Response(buffer.getvalue(), mimetype="text/csv",
                    headers={"Content-Disposition": f'attachment; filename="{_name(job_id, plot, "csv")}"'})
