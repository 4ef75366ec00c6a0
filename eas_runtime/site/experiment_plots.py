"""Drawings and CSV tables of an experiment report (``eas_runtime.diagnostics.experiments``).

Each plot is drawn from the report's dict with matplotlib's object API on the Agg canvas (no
pyplot state), under the site's drawing lock, at a fixed size: :data:`FIGSIZE` at :data:`DPI`
(1200 x 510 pixels, the width of the site's other plots), whatever the job's size. What a
plot can hold is bounded by the data layer (at most 200 values per axis, 12 per split); a
completeness map draws at most :data:`MAX_PANELS` TDAs side by side, and labels at most
:data:`MAX_TICKS` ticks per axis.

The CSV of a plot holds exactly the numbers drawn, one row per point or cell, written with the
csv module (``tables.write_csv``): a header, then the rows.
"""
from __future__ import annotations

import io
import math
from typing import Any

import numpy as np

from eas_runtime.diagnostics.tables import write_csv
from eas_runtime.site.plots import _DRAW_LOCK, _text

FIGSIZE, DPI = (8.0, 3.4), 150
#: The PNG's size in pixels.
PIXELS = (round(FIGSIZE[0] * DPI), round(FIGSIZE[1] * DPI))
MAX_PANELS = 4
MAX_TICKS = 12
#: Cells of completeness maps get their fraction written in them up to this many columns (all
#: panels together) and rows: more would not fit the figure's width.
ANNOTATE_COLUMNS, ANNOTATE_ROWS = 16, 16
COLOURS = ("#1f4e8c", "#c0392b", "#2e7d32", "#8e44ad", "#d35400", "#16a085", "#7f8c8d", "#b7950b",
           "#2c3e50", "#e84393", "#00838f", "#6d4c41")


def label(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def _figure():
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=FIGSIZE, dpi=DPI, layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def _png(fig) -> bytes:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png")
    return buffer.getvalue()


def _log_scale(values: list) -> bool:
    """Numbers spanning a factor of 10 or more, all positive: the loop was log-spaced."""
    numbers = [v for v in values if isinstance(v, (int, float)) and not isinstance(v, bool)]
    return bool(numbers) and len(numbers) == len(values) and min(numbers) > 0 \
        and max(numbers) / min(numbers) >= 10


def _missing(n: int) -> str:
    return f"{n} search{'' if n == 1 else 'es'} missing"


def _ticks(n: int) -> list[int]:
    step = max(1, math.ceil(n / MAX_TICKS))
    return list(range(0, n, step))


# ---------------------------------------------------------------------- PASS fraction
def _dodge(k: int, n: int, values: list, numeric: bool, log: bool):
    """The shift of series ``k`` of ``n`` along x, so that equal points of several TDAs stay
    visible side by side: a factor on a log axis, an offset otherwise (the CSV has the exact
    values)."""
    share = (k - (n - 1) / 2) / max(n, 1)
    if not numeric:
        return lambda v: v + 0.3 * share
    if log:
        lo, hi = min(values), max(values)
        return lambda v: v * 10 ** (0.04 * math.log10(hi / lo) * share)
    span = (max(values) - min(values)) or 1.0
    return lambda v: v + 0.02 * span * share


def fraction_png(data: dict) -> bytes:
    x, values = data["x"], data["values"]
    position = {json_key(v): i for i, v in enumerate(values)}
    log = data["numeric"] and _log_scale(values)
    with _DRAW_LOCK:
        fig = _figure()
        ax = fig.subplots()
        for k, series in enumerate(data["series"]):
            points = [p for p in series["points"] if p["pass_fraction"] is not None]
            if not points:
                continue
            shift = _dodge(k, len(data["series"]), values, data["numeric"], log)
            xs = [shift(p[x] if data["numeric"] else position[json_key(p[x])]) for p in points]
            ys = np.array([p["pass_fraction"] for p in points])
            err = np.array([[y - p["low"] for y, p in zip(ys, points)],
                            [p["high"] - y for y, p in zip(ys, points)]])
            ax.errorbar(xs, ys, yerr=err, marker="o", ms=4, capsize=3, lw=1.2,
                        color=COLOURS[k % len(COLOURS)], label=_text(series["name"]))
        if data["numeric"]:
            if log:
                ax.set_xscale("log")
                _plain_log_labels(ax, "x")
        else:
            ticks = _ticks(len(values))
            ax.set_xticks(ticks, [_text(label(values[i])) for i in ticks])
        ax.set_ylim(-0.05, 1.05)
        ax.set_xlabel(_text(x), fontsize=9)
        ax.set_ylabel("PASS fraction", fontsize=9)
        ax.grid(alpha=0.3)
        ax.tick_params(labelsize=8)
        if data["series"]:
            ax.legend(fontsize=8, loc="best")
        title = f"PASS fraction against {x} per TDA (95 % Wilson intervals)"
        if data["missing"]:
            title += f"; {_missing(data['missing'])} (failed or not ended)"
        fig.suptitle(_text(title), fontsize=10, x=0.01, ha="left")
        return _png(fig)


def json_key(value: Any) -> str:
    return f"{type(value).__name__}:{value!r}"


def fraction_csv(fileobj, data: dict) -> int:
    x, by = data["x"], data["by"]
    columns = ["tda"] + ([by] if by else []) + [x, "tasks", "ended", "missing", "detections",
                                                "false_alarms", "pass_fraction", "wilson_low",
                                                "wilson_high"]
    rows = ({"tda": s["tda"], **({by: s[by]} if by else {}), **p, "wilson_low": p["low"],
             "wilson_high": p["high"]} for s in data["series"] for p in s["points"])
    return write_csv(fileobj, columns, rows)


# ---------------------------------------------------------------------- completeness
def completeness_png(data: dict) -> bytes:
    x, y = data["x"], data["y"]
    xv, yv = data["x_values"], data["y_values"]
    xi = {json_key(v): i for i, v in enumerate(xv)}
    yi = {json_key(v): i for i, v in enumerate(yv)}
    maps = data["maps"][:MAX_PANELS]
    with _DRAW_LOCK:
        fig = _figure()
        axes = fig.subplots(1, max(1, len(maps)), squeeze=False)[0]
        image = None
        for ax, m in zip(axes, maps):
            grid = np.full((len(yv), len(xv)), np.nan)
            for c in m["cells"]:
                if c["pass_fraction"] is not None:
                    grid[yi[json_key(c[y])], xi[json_key(c[x])]] = c["pass_fraction"]
            image = ax.imshow(np.ma.masked_invalid(grid), origin="lower", aspect="auto", vmin=0.0,
                              vmax=1.0, cmap="viridis", interpolation="nearest")
            ax.set_facecolor("#d9d9d9")          # cells without an ended search
            if len(xv) * len(maps) <= ANNOTATE_COLUMNS and len(yv) <= ANNOTATE_ROWS:
                for (r, c), v in np.ndenumerate(grid):
                    if not np.isnan(v):
                        ax.text(c, r, f"{v:.2f}", ha="center", va="center", fontsize=7,
                                color="white" if v < 0.6 else "black")
            xt, yt = _ticks(len(xv)), _ticks(len(yv))
            ax.set_xticks(xt, [_text(label(xv[i])) for i in xt], rotation=45, ha="right")
            ax.set_yticks(yt, [_text(label(yv[i])) for i in yt])
            ax.set_xlabel(_text(x), fontsize=9)
            ax.set_title(_text(m["tda"]), fontsize=9)
            ax.tick_params(labelsize=7)
        axes[0].set_ylabel(_text(y), fontsize=9)
        if image is not None:
            bar = fig.colorbar(image, ax=list(axes), shrink=0.9)
            bar.set_label("PASS fraction", fontsize=8)
            bar.ax.tick_params(labelsize=7)
        title = f"Completeness: PASS fraction over {x} and {y}, other parameters marginalised"
        if len(data["maps"]) > MAX_PANELS:
            title += f" (first {MAX_PANELS} of {len(data['maps'])} TDAs)"
        if data["missing"]:
            title += f"; {_missing(data['missing'])}"
        fig.suptitle(_text(title), fontsize=10, x=0.01, ha="left")
        return _png(fig)


def completeness_csv(fileobj, data: dict) -> int:
    x, y = data["x"], data["y"]
    columns = ["tda", x, y, "tasks", "ended", "missing", "detections", "pass_fraction",
               "wilson_low", "wilson_high"]
    rows = ({"tda": m["tda"], **c, "wilson_low": c["low"], "wilson_high": c["high"]}
            for m in data["maps"] for c in m["cells"])
    return write_csv(fileobj, columns, rows)


# ---------------------------------------------------------------------- timing
def _plain_log_labels(ax, which: str = "xy") -> None:
    """Log axes labelled 10, 100, 0.2 rather than 10^1, 10^2, 2x10^-1; within 1.5 decades,
    the minor ticks at 2, 3 and 5 are labelled too."""
    from matplotlib.ticker import FuncFormatter

    for axis, limits in [(a, lim) for name, a, lim in (("x", ax.xaxis, ax.get_xlim), ("y", ax.yaxis, ax.get_ylim))
                         if name in which]:
        def minor(value, _, limits=limits):
            lo, hi = limits()
            if value <= 0 or lo <= 0 or hi / lo > 10 ** 1.5:
                return ""
            mantissa = round(value / 10 ** math.floor(math.log10(value)))
            return f"{value:g}" if mantissa in (2, 3, 5) else ""
        axis.set_major_formatter(FuncFormatter(lambda value, _: f"{value:g}"))
        axis.set_minor_formatter(FuncFormatter(minor))


def timing_png(data: dict) -> bytes:
    length, kind = data["length"], data["time"]
    with _DRAW_LOCK:
        fig = _figure()
        ax = fig.subplots()
        for k, series in enumerate(data["series"]):
            points = [p for p in series["points"] if p["mean_s"] and p[length] and p[length] > 0]
            if not points:
                continue
            colour = COLOURS[k % len(COLOURS)]
            xs = np.array([p[length] for p in points], dtype=float)
            ys = np.array([p["mean_s"] for p in points], dtype=float)
            fit = series["fit"]
            name = series["name"] + (f": t ∝ L^{fit['exponent']:.2f}" if fit else "")
            ax.plot(xs, ys, "o", color=colour, ms=5, label=_text(name))
            if fit:
                line = np.geomspace(xs.min(), xs.max(), 50)
                ax.plot(line, fit["prefactor"] * line ** fit["exponent"], "-", color=colour, lw=1)
        ax.set_xscale("log")
        ax.set_yscale("log")
        _plain_log_labels(ax)
        ax.set_xlabel(_text(f"light-curve length {length} [d]"), fontsize=9)
        ax.set_ylabel(f"mean {'CPU' if kind == 'cpu' else 'wall'} time per search [s]", fontsize=9)
        ax.grid(alpha=0.3, which="both")
        ax.tick_params(which="both", labelsize=8)
        if data["series"]:
            ax.legend(fontsize=8, loc="best")
        title = "Search time against light-curve length per TDA, least-squares power law on log axes"
        if data["missing"]:
            title += f"; {_missing(data['missing'])}"
        fig.suptitle(_text(title), fontsize=10, x=0.01, ha="left")
        return _png(fig)


def timing_csv(fileobj, data: dict) -> int:
    length, by, kind = data["length"], data["by"], data["time"]
    mean = f"mean_{kind}_s"
    columns = ["tda"] + ([by] if by else []) + [length, "tasks", "ended", "missing", "timed", mean,
                                                "fit_exponent", "fit_prefactor"]
    rows = ({"tda": s["tda"], **({by: s[by]} if by else {}), **p, mean: p["mean_s"],
             "fit_exponent": (s["fit"] or {}).get("exponent"),
             "fit_prefactor": (s["fit"] or {}).get("prefactor")}
            for s in data["series"] for p in s["points"])
    return write_csv(fileobj, columns, rows)


TDA_COLUMNS = ("tda", "task_type", "tasks", "ended", "missing", "detections", "significant",
               "false_alarms", "transit_free", "pass_fraction", "cpu_s_mean", "cpu_s_median",
               "wall_s_mean")


def tdas_csv(fileobj, data: dict) -> int:
    return write_csv(fileobj, list(TDA_COLUMNS), data["items"])
