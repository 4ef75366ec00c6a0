"""Experiment reports: what a job's transit searches found, keyed by its loop parameters.

The prototype's experiments loop over parameters (planet size, period, impact parameter, noise
``nsr``, cadence, light-curve length, the search itself) and end in one transit search per
chain. This module aggregates those searches for the report page (``/jobs/<id>/report``) and
for any other caller (the functions take a Database, return plain dicts):

- :func:`fraction`: the PASS fraction against one parameter, per TDA, with Wilson intervals;
- :func:`completeness`: the PASS fraction over two parameters (the others marginalised);
- :func:`timing`: search time against light-curve length per TDA, with the exponent of a
  power law fitted on log axes;
- :func:`tda_table`: per TDA the searches, detections, false alarms and CPU per search.

Decisions, each checked by ``tests/diagnostics/test_experiments.py``:

- **TDA** (transit-detection algorithm): the task type of a search, every type named
  ``transit_search_*``, shown without that prefix (``tls``, ``bls_reference``, ``qats``). A job
  that loops over a ``tda`` parameter builds the task type from it
  (``'transit_search_{tda}'``), so the type already says which TDA ran; the ``tda`` loop
  parameter is therefore not offered as an axis.
- **Loop parameters**: the metadata a search inherits from its loops, kept in its row's
  ``params["metadata"]`` (``eas_runtime.jobs``): the keys with an ``<name>_index`` companion
  (what ``execution_for_loop`` sets; read from the first and last :data:`SAMPLE_TASKS` searches
  of each type), excluding ``tda``, with at least two values among the searches. Values may
  be numbers or strings; numbers sort numerically, strings after them.
  A search without a value of the parameter is left out of that plot and counted in
  ``without_parameter``.
- **Outcome**: a search that ended (task state ``done``) counts; its ``outcome`` (the science
  QC: PASS when the found period is within 3 % of the injected one and the S/N reaches 7.1) is
  a **detection** when PASS on a light curve with a transit. Searches that failed, were
  cancelled or have not ended are **missing**: counted and shown, never counted as FAIL.
  The PASS fraction is detections / ended searches of light curves with a transit; a job
  whose ended searches all read transit-free light curves has no PASS-fraction plots.
- **Transit-free light curve**: the search copies the synthesis's signal metadata into its
  results; ``pixels_in_transit`` = 0 means no transit was injected (``enable_transits: 0``).
- **False alarm**: an ended search that reports a significant detection (``detected``: S/N >=
  7.1) that is not a detection: at a period not within 3 % of the injected one (``outcome``
  FAIL or UNDEFINED), or on a transit-free light curve whatever its period.
- **CPU per search**: the current attempt's ``cpu_children_s`` (the CPU of the replica's
  process tree during the task, its helpers included), else ``cpu_s``; wall time is
  ``wall_s``. Only ended searches count.
- **Light-curve length**: a numeric loop parameter whose name holds ``length``, ``duration``
  or ``baseline`` (``lc_length`` in the timing experiments), in days as the job gives it
  (``constants.day`` is 1); ``length=`` names another. The fit is least squares of
  log10(mean time per length) against log10(length), one point per length, so that lengths
  with more searches do not weigh more; the exponent is its slope.
- **Bounds**: everything is aggregated in SQL (GROUP BY over the searches with their metadata
  joined), so a request reads one row per group, never one per task: an axis may have at most
  :data:`MAX_AXIS_VALUES` values, a split (``by``) :data:`MAX_SERIES_VALUES`. The medians of
  the TDA table are read with one ORDER BY ... LIMIT query per TDA.
"""
from __future__ import annotations

import contextlib
import json
import statistics
from dataclasses import dataclass
from typing import Any, Iterable

from sqlalchemy import Float, Text, and_, case, cast, func, literal, literal_column, select
from sqlalchemy.orm import aliased

from eas_runtime.db.models import DONE, Attempt, Job, MetadataItem, Task
from eas_runtime.diagnostics._common import DiagnosticsError, NotFound, check_id, shown
from eas_runtime.diagnostics.experiment_stats import (WILSON_Z, PowerLaw, fit_power_law,  # noqa: F401
                                                       is_false_alarm, wilson)
from eas_runtime.diagnostics.states import current_attempt_join

SEARCH_PREFIX = "transit_search_"
TDA_PARAMETER = "tda"
LENGTH_WORDS = ("length", "duration", "baseline")
#: Most values of a parameter drawn on an axis (the 2-D grid has 24 per axis).
MAX_AXIS_VALUES = 200
#: Most values of the parameter that splits series (``by``).
MAX_SERIES_VALUES = 12
#: Searches of each type (first and last) whose metadata names the loop parameters.
SAMPLE_TASKS = 20
TIME_KINDS = ("cpu", "wall")
_INDEX = "_index"


class ExperimentError(DiagnosticsError):
    """A report parameter names no usable loop parameter (HTTP 400)."""


def tda_name(task_type: str) -> str:
    return task_type[len(SEARCH_PREFIX):] if task_type.startswith(SEARCH_PREFIX) else task_type


# ---------------------------------------------------------------------- parameters
@dataclass(frozen=True)
class Parameter:
    name: str
    values: tuple            # sorted: numbers, then strings
    numeric: bool

    def to_dict(self) -> dict:
        return {"name": self.name, "values": list(self.values), "numeric": self.numeric,
                "count": len(self.values)}


def _sort_key(value: Any):
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return (0, float(value), "")
    return (1, 0.0, str(value))


def _searches(job_id: int):
    return and_(Task.job_id == job_id, Task.task_type.like(SEARCH_PREFIX.replace("_", r"\_") + "%",
                                                          escape="\\"))


def _check_job(s, job_id: int) -> None:
    check_id("job", job_id)
    if s.get(Job, job_id) is None:
        raise NotFound(f"no job {job_id}")


class _Open:
    """One read transaction shared by the parts of a report, with what every part needs (the
    job checked, its parameters, the totals per TDA) computed once."""

    def __init__(self, s):
        self.s = s
        self.memo: dict = {}

    def context(self, job_id: int):
        """(types, params, counts, totals) of the job; NotFound for an unknown one."""
        if job_id not in self.memo:
            _check_job(self.s, job_id)
            self.memo[job_id] = (*parameters(self.s, job_id), grouped(self.s, job_id, []))
        return self.memo[job_id]


@contextlib.contextmanager
def _reading(db):
    if isinstance(db, _Open):
        yield db
    else:
        with db.read() as s:
            yield _Open(s)


def loop_value(key: str):
    """SQL: the JSON text of loop parameter ``key`` of a task (``params["metadata"][key]``);
    ``null`` or NULL when the task has none."""
    return cast(Task.params[("metadata", key)], Text)


def _decoded(raw: str | None) -> Any:
    return None if raw is None else json.loads(raw)


def _sample_keys(s, job_id: int) -> set[str]:
    """The metadata keys of the first and last :data:`SAMPLE_TASKS` searches of each type: a
    for-loop gives every task of its body the same keys."""
    keys: set[str] = set()
    for task_type in s.scalars(select(Task.task_type).distinct().where(_searches(job_id))):
        for order in (Task.id, Task.id.desc()):
            for params in s.scalars(select(Task.params).where(Task.job_id == job_id, Task.task_type == task_type)
                                    .order_by(order).limit(SAMPLE_TASKS)):
                meta = (params or {}).get("metadata") if isinstance(params, dict) else None
                if isinstance(meta, dict):
                    keys.update(str(k) for k in meta)
    return keys


def parameters(s, job_id: int) -> tuple[list[str], dict[str, Parameter], dict[str, int]]:
    """The job's search task types, its loop parameters (see the module docstring) and the
    number of distinct values of every loop parameter (MAX_AXIS_VALUES + 1: more than an
    axis can show)."""
    types = sorted(s.scalars(select(Task.task_type).distinct().where(_searches(job_id))))
    keys = _sample_keys(s, job_id)
    loop = sorted(k for k in keys if not k.endswith(_INDEX) and k + _INDEX in keys and k != TDA_PARAMETER)
    counts: dict[str, int] = {}
    params = {}
    for key in loop:
        value = loop_value(key)
        present = and_(_searches(job_id), value.is_not(None), value != "null")
        # at most one more than an axis can show: past that only "too many" matters
        raws = list(s.scalars(select(value).distinct().where(present).limit(MAX_AXIS_VALUES + 1)))
        counts[key] = len(raws)
        if not 2 <= counts[key] <= MAX_AXIS_VALUES:
            continue
        vals = tuple(sorted((_decoded(raw) for raw in raws), key=_sort_key))
        params[key] = Parameter(key, vals, all(_sort_key(v)[0] == 0 for v in vals))
    return types, params, counts


def length_parameter(params: dict[str, Parameter]) -> str | None:
    """The first numeric loop parameter whose name says it is a light-curve length."""
    for name in sorted(params):
        if params[name].numeric and any(w in name.lower() for w in LENGTH_WORDS):
            return name
    return None


def _choose(name: str, given: str | None, params: dict[str, Parameter], counts: dict[str, int], *,
            numeric: bool = False, limit: int = MAX_AXIS_VALUES) -> str | None:
    """``given`` when it names a usable loop parameter, else ExperimentError naming ``name``."""
    if given is None:
        return None
    allowed = sorted(p for p in params if (params[p].numeric or not numeric) and len(params[p].values) <= limit)
    if given not in params:
        if given not in counts:
            why = "it is not a loop parameter of the job's searches"
        elif counts[given] > MAX_AXIS_VALUES:
            why = f"it has more than the {MAX_AXIS_VALUES} values an axis can show"
        else:
            why = f"it has {counts[given]} value{'s' if counts[given] != 1 else ''} among the searches, an axis needs 2"
        raise ExperimentError(f"{name}={shown(given)} cannot be used: {why}; "
                              f"allowed: {', '.join(allowed) or 'none'}")
    if given not in allowed:
        what = "a numeric parameter" if numeric and not params[given].numeric else \
            f"a parameter with at most {limit} values"
        raise ExperimentError(f"{name}={shown(given)} cannot be used: it must be {what}; "
                              f"allowed: {', '.join(allowed) or 'none'}")
    return given


def _by_default_axis(params: dict[str, Parameter], exclude: Iterable[str | None] = ()) -> list[str]:
    """Parameters, most values first (ties by name): the default axes."""
    return sorted((p for p in params if p not in set(exclude)), key=lambda p: (-len(params[p].values), p))


# ---------------------------------------------------------------------- the grouped query
#: Result metadata of a search that the counts read.
RESULT_KEYS = ("outcome", "detected", "pixels_in_transit")


def grouped(s, job_id: int, keys: list[str]) -> list[dict]:
    """One row per (task type, values of ``keys``) over the job's searches: ``tasks``, ``ended``
    (done), ``detections``, ``false_alarms``, ``significant``, ``transit_free``, and the sums
    and counts of CPU and wall time of ended searches. Values are decoded JSON (None: the
    search has no such metadata)."""
    a = aliased(Attempt)
    columns = [Task.task_type.label("task_type")] + [loop_value(key).label(f"p{i}") for i, key in enumerate(keys)]
    results = {name: aliased(MetadataItem, name=f"r_{name}") for name in RESULT_KEYS}
    ended = Task.state == DONE

    def text(name: str):       # never NULL, so that NOT and AND below stay two-valued
        return func.coalesce(cast(results[name].value, Text), "")
    significant = and_(ended, text("detected") == "true")
    transit_free = text("pixels_in_transit").in_(("0", "0.0"))
    detection = and_(ended, text("outcome") == '"PASS"', ~transit_free)
    cpu = func.coalesce(a.cpu_children_s, a.cpu_s)
    one = literal(1)
    columns += [
        func.count(Task.id).label("tasks"),
        func.sum(case((ended, one), else_=0)).label("ended"),
        func.sum(case((detection, one), else_=0)).label("detections"),
        func.sum(case((significant, one), else_=0)).label("significant"),
        func.sum(case((and_(significant, ~detection), one), else_=0)).label("false_alarms"),
        func.sum(case((and_(ended, transit_free), one), else_=0)).label("transit_free"),
        func.sum(case((ended, cast(cpu, Float)), else_=None)).label("cpu_sum"),
        func.count(case((ended, cpu), else_=None)).label("cpu_n"),
        func.sum(case((ended, a.wall_s), else_=None)).label("wall_sum"),
        func.count(case((ended, a.wall_s), else_=None)).label("wall_n"),
    ]
    q = select(*columns).select_from(Task).outerjoin(a, current_attempt_join(Task, a))
    for name, m in results.items():
        q = q.outerjoin(m, and_(m.owner_kind == "attempt", m.owner_id == a.id, m.key == name))
    # by position: PostgreSQL would not see two renderings of a JSON path (each with its own
    # bound parameter) as one expression
    q = q.where(_searches(job_id)).group_by(*(literal_column(str(i + 1)) for i in range(1 + len(keys))))
    out = []
    for r in s.execute(q).mappings():
        row = {"tda": tda_name(r["task_type"]), "task_type": r["task_type"]}
        for i, key in enumerate(keys):
            row[key] = _decoded(r[f"p{i}"])
        for name in ("tasks", "ended", "detections", "significant", "false_alarms", "transit_free",
                     "cpu_n", "wall_n"):
            row[name] = int(r[name] or 0)
        row["cpu_sum"], row["wall_sum"] = r["cpu_sum"], r["wall_sum"]
        row["missing"] = row["tasks"] - row["ended"]
        out.append(row)
    return out


def _fraction_fields(row: dict) -> dict:
    n, k = row["ended"] - row["transit_free"], row["detections"]
    interval = wilson(k, n)
    return {"pass_fraction": k / n if n else None,
            "low": interval[0] if interval else None, "high": interval[1] if interval else None}


# ---------------------------------------------------------------------- the report parts
def describe(db, job_id: int) -> dict:
    """What a report of the job can show: search types, loop parameters, the length parameter
    and which plots apply."""
    with _reading(db) as r:
        return _described(job_id, *r.context(job_id))


def _described(job_id, types, params, counts, totals) -> dict:
    length = length_parameter(params)
    axes = _by_default_axis(params)
    ended = sum(r["ended"] for r in totals)
    # a job of transit-free light curves only (the timing experiments) has no PASS fraction
    transits = not ended or sum(r["transit_free"] for r in totals) < ended
    return {"job_id": job_id, "task_types": types, "tdas": [tda_name(t) for t in types],
            "parameters": [params[p].to_dict() for p in sorted(params)],
            "too_many_values": sorted(k for k, n in counts.items() if n > MAX_AXIS_VALUES),
            "length_parameter": length, "transits_injected": transits,
            "plots": {"fraction": bool(types) and transits and len(axes) >= 1,
                      "completeness": bool(types) and transits and len(axes) >= 2,
                      "timing": bool(types) and length is not None}}


def _series_key(row: dict, by: str | None) -> str:
    return row["tda"] if by is None else f"{row['tda']}, {by} = {_label(row[by])}"


def _label(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def fraction(db, job_id: int, *, x: str | None = None, by: str | None = None) -> dict:
    """PASS fraction against loop parameter ``x`` (default: the one with most values) per TDA,
    split by ``by`` when given; other parameters are marginalised."""
    with _reading(db) as r:
        types, params, counts, _ = r.context(job_id)
        by = _choose("by", by, params, counts, limit=MAX_SERIES_VALUES)
        x = _choose("x", x, params, counts) or next(iter(_by_default_axis(params, exclude=[by])), None)
        if x is None:
            raise NotFound(f"job {job_id} has no search looped over a parameter with two values or more"
                           + (f" besides by={shown(by)}" if by else ""))
        if by == x:
            raise ExperimentError(f"by={shown(by)} must differ from x={shown(x)}")
        rows = grouped(r.s, job_id, [x] + ([by] if by else []))
    series: dict[str, dict] = {}
    without = 0
    for row in rows:
        if row[x] is None or (by and row[by] is None):
            without += row["tasks"]
            continue
        entry = series.setdefault(_series_key(row, by), {"name": _series_key(row, by), "tda": row["tda"],
                                                         "points": []})
        if by:
            entry[by] = row[by]
        entry["points"].append({x: row[x], "tasks": row["tasks"], "ended": row["ended"],
                                "missing": row["missing"], "detections": row["detections"],
                                "false_alarms": row["false_alarms"], **_fraction_fields(row)})
    for entry in series.values():
        entry["points"].sort(key=lambda p: _sort_key(p[x]))
    return {"job_id": job_id, "x": x, "by": by, "numeric": params[x].numeric,
            "values": list(params[x].values), "series": [series[k] for k in sorted(series)],
            "without_parameter": without, "missing": sum(r["missing"] for r in rows),
            "interval": "Wilson score, 95 %"}


def completeness(db, job_id: int, *, x: str | None = None, y: str | None = None) -> dict:
    """PASS fraction over loop parameters ``x`` and ``y`` (default: the two with most values)
    per TDA, every other parameter marginalised."""
    with _reading(db) as r:
        types, params, counts, _ = r.context(job_id)
        x = _choose("map_x", x, params, counts)
        y = _choose("map_y", y, params, counts)
        defaults = _by_default_axis(params, exclude=[v for v in (x, y) if v])
        x = x or (defaults.pop(0) if defaults else None)
        y = y or (defaults.pop(0) if defaults else None)
        if x is None or y is None:
            raise NotFound(f"job {job_id} has no searches looped over two parameters with two values or more")
        if x == y:
            raise ExperimentError(f"map_x and map_y must differ, both are {shown(x)}")
        rows = grouped(r.s, job_id, [x, y])
    maps: dict[str, dict] = {}
    for row in rows:
        if row[x] is None or row[y] is None:
            continue
        m = maps.setdefault(row["tda"], {"tda": row["tda"], "cells": []})
        m["cells"].append({x: row[x], y: row[y], "tasks": row["tasks"], "ended": row["ended"],
                           "missing": row["missing"], "detections": row["detections"],
                           **_fraction_fields(row)})
    for m in maps.values():
        m["cells"].sort(key=lambda c: (_sort_key(c[y]), _sort_key(c[x])))
    return {"job_id": job_id, "x": x, "y": y, "x_values": list(params[x].values),
            "y_values": list(params[y].values), "maps": [maps[k] for k in sorted(maps)],
            "missing": sum(r["missing"] for r in rows)}


def timing(db, job_id: int, *, length: str | None = None, by: str | None = None,
           time: str | None = None) -> dict:
    """Mean search time (``time``: ``cpu``, the default, or ``wall``) per light-curve length,
    per TDA (split by ``by``), with the fitted power law of each series."""
    if time is not None and time not in TIME_KINDS:
        raise ExperimentError(f"time={shown(time)} must be one of {', '.join(TIME_KINDS)}")
    time = time or "cpu"
    with _reading(db) as r:
        types, params, counts, _ = r.context(job_id)
        length = _choose("length", length, params, counts, numeric=True) or length_parameter(params)
        if length is None:
            raise NotFound(f"job {job_id} has no light-curve length parameter (a numeric loop parameter "
                           f"named like {', '.join(LENGTH_WORDS)}); name one with length=")
        by = _choose("by", by, params, counts, limit=MAX_SERIES_VALUES)
        if by == length:
            raise ExperimentError(f"by={shown(by)} must differ from length={shown(length)}")
        rows = grouped(r.s, job_id, [length] + ([by] if by else []))
    series: dict[str, dict] = {}
    for row in rows:
        if row[length] is None or (by and row[by] is None):
            continue
        entry = series.setdefault(_series_key(row, by), {"name": _series_key(row, by), "tda": row["tda"],
                                                         "points": []})
        if by:
            entry[by] = row[by]
        n, total = row[f"{time}_n"], row[f"{time}_sum"]
        entry["points"].append({length: row[length], "tasks": row["tasks"], "ended": row["ended"],
                                "missing": row["missing"], "timed": n,
                                "mean_s": total / n if n else None})
    for entry in series.values():
        entry["points"].sort(key=lambda p: _sort_key(p[length]))
        fit = fit_power_law((p[length], p["mean_s"]) for p in entry["points"])
        entry["fit"] = fit.to_dict() if fit else None
    return {"job_id": job_id, "length": length, "length_unit": "d", "by": by, "time": time,
            "time_unit": "s", "series": [series[k] for k in sorted(series)],
            "missing": sum(r["missing"] for r in rows),
            "fit": "least squares of log10(mean time) on log10(length), one point per length"}


def _median(s, job_id: int, task_type: str, n: int) -> float | None:
    if n <= 0:
        return None
    a = aliased(Attempt)
    cpu = func.coalesce(a.cpu_children_s, a.cpu_s)
    q = (select(cpu).select_from(Task).join(a, current_attempt_join(Task, a))
         .where(Task.job_id == job_id, Task.task_type == task_type, Task.state == DONE, cpu.is_not(None))
         .order_by(cpu).offset((n - 1) // 2).limit(1 if n % 2 else 2))
    middle = list(s.scalars(q))
    return statistics.fmean(middle) if middle else None


def tda_table(db, job_id: int) -> dict:
    """Per TDA: searches, ended, missing, detections, significant detections, false alarms,
    transit-free light curves searched, mean and median CPU s per ended search."""
    with _reading(db) as r:
        rows = r.context(job_id)[3]
        items = []
        for row in sorted(rows, key=lambda r: r["tda"]):
            items.append({k: row[k] for k in ("tda", "task_type", "tasks", "ended", "missing", "detections",
                                              "significant", "false_alarms", "transit_free")}
                         | {"pass_fraction": _fraction_fields(row)["pass_fraction"],
                            "cpu_s_mean": row["cpu_sum"] / row["cpu_n"] if row["cpu_n"] else None,
                            "cpu_s_median": _median(r.s, job_id, row["task_type"], row["cpu_n"]),
                            "wall_s_mean": row["wall_sum"] / row["wall_n"] if row["wall_n"] else None})
    return {"job_id": job_id, "items": items,
            "false_alarm": "a significant detection (S/N >= 7.1) at a period not within 3 % of the "
                           "injected one, or any on a transit-free light curve"}


def validate(db, job_id: int, *, x: str | None = None, by: str | None = None, map_x: str | None = None,
             map_y: str | None = None, length: str | None = None, time: str | None = None) -> dict:
    """Check every choice of a report at once (one query string serves every plot of the page):
    ExperimentError naming the first bad one, NotFound for an unknown job; returns
    :func:`describe`'s answer, with the timing plot on when ``length`` names a parameter."""
    if time is not None and time not in TIME_KINDS:
        raise ExperimentError(f"time={shown(time)} must be one of {', '.join(TIME_KINDS)}")
    with _reading(db) as r:
        types, params, counts, totals = r.context(job_id)
    for name, value in (("x", x), ("map_x", map_x), ("map_y", map_y)):
        _choose(name, value, params, counts)
    _choose("by", by, params, counts, limit=MAX_SERIES_VALUES)
    _choose("length", length, params, counts, numeric=True)
    if map_x is not None and map_x == map_y:
        raise ExperimentError(f"map_x and map_y must differ, both are {shown(map_x)}")
    for name, value in (("x", x), ("length", length)):
        if by is not None and by == value:
            raise ExperimentError(f"by={shown(by)} must differ from {name}={shown(value)}")
    described = _described(job_id, types, params, counts, totals)
    if length is not None:
        described["plots"]["timing"] = bool(types)
    return described


def report(db, job_id: int, **choices) -> dict:
    """Everything the report page shows: :func:`validate`'s description, :func:`tda_table` and
    each plot the job allows (None when it does not). ``choices``: x, by, map_x, map_y, length,
    time."""
    with _reading(db) as r:          # one transaction: the parts agree with each other
        described = validate(r, job_id, **choices)
        plots = described["plots"]
        out = {**described, "tda_table": tda_table(r, job_id)["items"]}
        out["fraction"] = fraction(r, job_id, x=choices.get("x"), by=choices.get("by")) \
            if plots["fraction"] else None
        out["completeness"] = completeness(r, job_id, x=choices.get("map_x"), y=choices.get("map_y")) \
            if plots["completeness"] else None
        out["timing"] = timing(r, job_id, length=choices.get("length"), by=choices.get("by"),
                               time=choices.get("time")) if plots["timing"] else None
    return out
