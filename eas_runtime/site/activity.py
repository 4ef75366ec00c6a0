"""Activity: a timeline of attempts per worker (host and process), drawn on the server as inline
SVG (no script, no library), bounded to a time window and a number of lanes and attempts.

The default window is the span of the newest job's attempts (at most 24 h; the last 24 h when
nothing has run): see :mod:`eas_runtime.diagnostics.activity`. ``since`` and ``until`` choose
another.

Bars are coloured by task type, with a legend: each task type keeps its colour on every page
and every day (:func:`colour_index`: the pipeline's task types have fixed places in
:data:`PALETTE`, any other type the place its name's CRC-32 gives). The colours are CSS classes
``tt-0`` ... ``tt-19`` in ``static/eas.css`` (the CSP allows no style attribute). The outcome is
the bar's outline: failed thick and dark, running dashed, cancelled faded.
"""
from __future__ import annotations

import datetime as dt
import zlib

from flask import Blueprint, jsonify, render_template

from eas_runtime.diagnostics.activity import MAX_ATTEMPTS, MAX_LANES, activity
from eas_runtime.site._request import db, install, int_arg, text_arg

bp = install(Blueprint("activity", __name__))
#: Drawing size in SVG user units (the SVG scales to the page width).
WIDTH, LABEL_W, LANE_H, AXIS_H, TICKS = 1000, 190, 18, 22, 6
#: Kelly's colours of maximum contrast (less white and black), one per CSS class tt-<index>.
PALETTE = ("#0067a5", "#f38400", "#008856", "#be0032", "#875692", "#a1caf1", "#c2b280", "#848482",
           "#e68fac", "#f3c300", "#f99379", "#604e97", "#f6a600", "#b3446c", "#dcd300", "#882d17",
           "#8db600", "#654522", "#e25822", "#2b3d26")
#: The pipeline's task types, each with its own colour: a type's place here is its place in
#: PALETTE (as many types as colours). The control's bookkeeping types take the quiet colours
#: (buff, grey, brown, dark olive), the searches and their inputs the bright ones.
KNOWN_TYPES = ("ingest_external_lcs", "verify", "transit_search_bls_reference", "transit_search_tls",
               "detrend", "planet_search", "execution_chain", "execution_for_loop", "vetting",
               "stitch", "transit_search_bls_kovacs", "transit_search_qats", "binning",
               "synthesis_batman", "synthesis_psls", "multiply", "null", "execution_do_while_loop",
               "error", "execution_conditional")


def colour_index(task_type: str) -> int:
    """The palette index of a task type: fixed for the pipeline's types, else from the CRC-32
    of its name (the same in every process, unlike hash())."""
    if task_type in KNOWN_TYPES:
        return KNOWN_TYPES.index(task_type)
    return zlib.crc32(task_type.encode("utf-8")) % len(PALETTE)


def activity_data() -> dict:
    """``since`` (ISO time or an age like 2h), ``until`` (default now; with neither, the
    newest job's span), ``lanes`` (at most that many hosts/processes, the busiest) and
    ``limit`` (attempts drawn); ``colours``: the colour of each task type drawn."""
    data = activity(db(), since=text_arg("since"), until=text_arg("until"),
                    lanes=int_arg("lanes", low=1, high=MAX_LANES) or 40,
                    limit=int_arg("limit", low=1, high=MAX_ATTEMPTS) or 2000)
    types = sorted({a["task_type"] for lane in data["lanes"] for a in lane["attempts"]})
    data["colours"] = {t: PALETTE[colour_index(t)] for t in types}
    return data


def _time(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text)


def geometry(data: dict) -> dict:
    """Positions (SVG units) of every lane, bar and time tick of ``data``."""
    start, end = _time(data["since"]), _time(data["until"])
    span = (end - start).total_seconds()
    scale = WIDTH / span

    def x(moment: dt.datetime) -> float:
        return LABEL_W + max(0.0, min(span, (moment - start).total_seconds())) * scale

    fmt = "%m-%d %H:%M" if span > 86400 else "%H:%M:%S" if span < 600 else "%H:%M"
    ticks = [{"x": round(LABEL_W + WIDTH * i / TICKS, 1),
              "label": (start + dt.timedelta(seconds=span * i / TICKS)).strftime(fmt)}
             for i in range(TICKS + 1)]
    lanes = []
    for i, lane in enumerate(data["lanes"]):
        y = AXIS_H + i * LANE_H
        bars = []
        for a in lane["attempts"]:
            x0 = x(_time(a["started"]))
            x1 = x(_time(a["ended"])) if a["ended"] else x(end)
            bars.append({**a, "x": round(x0, 2), "w": round(max(1.0, x1 - x0), 2),
                         "colour": colour_index(a["task_type"])})
        label = lane["host"] or "?"
        if lane["pid"] is not None:
            label += f" pid {lane['pid']}"
        lanes.append({"y": y, "label": label, "bars": bars, "busy_s": lane["busy_s"]})
    return {"width": LABEL_W + WIDTH + 10, "height": AXIS_H + max(1, len(lanes)) * LANE_H + 4,
            "label_w": LABEL_W, "lane_h": LANE_H, "axis_h": AXIS_H, "ticks": ticks, "lanes": lanes,
            "span_s": span,
            "legend": [{"task_type": t, "colour": colour_index(t)} for t in data.get("colours", {})]}


@bp.get("/activity")
def activity_page():
    data = activity_data()
    return render_template("activity.html", data=data, g=geometry(data))


@bp.get("/api/activity")
def api_activity():
    return jsonify(activity_data())
