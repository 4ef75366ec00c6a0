"""Activity: a timeline of attempts per worker (host and process), drawn on the server as inline
SVG (no script, no library), bounded to a time window and a number of lanes and attempts."""
from __future__ import annotations

import datetime as dt

from flask import Blueprint, jsonify, render_template

from eas_runtime.diagnostics.activity import MAX_ATTEMPTS, MAX_LANES, activity
from eas_runtime.site._request import db, install, int_arg, text_arg

bp = install(Blueprint("activity", __name__))
#: Drawing size in SVG user units (the SVG scales to the page width).
WIDTH, LABEL_W, LANE_H, AXIS_H, TICKS = 1000, 190, 18, 22, 6


def activity_data() -> dict:
    """``since`` (ISO time or an age like 2h; default 1h), ``until`` (default now), ``lanes``
    (at most that many hosts/processes, the busiest) and ``limit`` (attempts drawn)."""
    return activity(db(), since=text_arg("since"), until=text_arg("until"),
                    lanes=int_arg("lanes", low=1, high=MAX_LANES) or 40,
                    limit=int_arg("limit", low=1, high=MAX_ATTEMPTS) or 2000)


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
            bars.append({**a, "x": round(x0, 2), "w": round(max(1.0, x1 - x0), 2)})
        label = lane["host"] or "?"
        if lane["pid"] is not None:
            label += f" pid {lane['pid']}"
        lanes.append({"y": y, "label": label, "bars": bars, "busy_s": lane["busy_s"]})
    return {"width": LABEL_W + WIDTH + 10, "height": AXIS_H + max(1, len(lanes)) * LANE_H + 4,
            "label_w": LABEL_W, "lane_h": LANE_H, "axis_h": AXIS_H, "ticks": ticks, "lanes": lanes,
            "span_s": span}


@bp.get("/activity")
def activity_page():
    data = activity_data()
    return render_template("activity.html", data=data, g=geometry(data))


@bp.get("/api/activity")
def api_activity():
    return jsonify(activity_data())
