"""Preview plots of products: a light curve, the same folded at a search's period, and a
periodogram with its peak marked.

Each kind has a data step (read the file, keep at most :data:`MAX_POINTS` points to draw)
returning a :class:`PlotData` that is served as JSON as it is, and a drawing step
(:func:`render_png`, matplotlib's object API on the Agg canvas, no pyplot state) that turns it
into a PNG. Units: times, periods, epochs and durations in days; flux in the file's own unit;
power in the periodogram's own statistic.

A file that is not a light curve (or periodogram), or cannot be read, raises
:class:`PlotError` whose message names the object key and the defect (HTTP 422).
"""
from __future__ import annotations

import io
import itertools
import math
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

KINDS = ("lc", "folded", "periodogram")
#: Points drawn (and returned as JSON) per series at most; longer series are binned.
MAX_POINTS = 2000
#: Files that never get a light-curve preview (by name ending, lower case).
NO_PREVIEW_SUFFIXES = (".json", ".yaml", ".yml", ".cfg", ".log", ".png", ".jpg", ".jpeg", ".svg",
                       ".pdf", ".html", ".xml", ".md", ".py", ".sh", ".zip", ".tar", ".npy", ".npz")
#: Figure size [inches] at :data:`DPI`: 800 x 320 pixels.
FIGSIZE, DPI = (8.0, 3.2), 100
#: Width and height of a drawn PNG [px] (the <img> attributes of the pages use them).
PIXELS = (round(FIGSIZE[0] * DPI), round(FIGSIZE[1] * DPI))
_DRAW_LOCK = threading.Lock()  # matplotlib's font and text caches are not thread-safe


class PlotError(ValueError):
    """The product cannot be plotted; the message names the object key and the defect."""

    @classmethod
    def of(cls, key: str, defect: str) -> PlotError:
        return cls(f"{key}: {defect}")


@dataclass(frozen=True)
class Series:
    """One drawn series: x and y values with their names and units ('' for none)."""
    x: np.ndarray
    y: np.ndarray
    x_name: str
    x_unit: str
    y_name: str
    y_unit: str

    def to_dict(self) -> dict:
        return {"x": {"name": self.x_name, "unit": self.x_unit, "values": self.x.tolist()},
                "y": {"name": self.y_name, "unit": self.y_unit, "values": self.y.tolist()}}


@dataclass(frozen=True)
class PlotData:
    """What one preview shows. ``n_samples`` counts the usable samples before binning;
    ``binned`` says whether ``series`` holds bin means (or envelopes) instead of samples.
    ``marks`` holds the peak of a periodogram or the search a fold used."""
    kind: str
    key: str
    series: Series
    n_samples: int
    binned: bool
    marks: dict[str, Any] = field(default_factory=dict)
    zoom: Series | None = None

    def to_dict(self) -> dict:
        out = {"kind": self.kind, "key": self.key, "n_samples": self.n_samples,
               "n_points": int(self.series.x.size), "binned": self.binned,
               **self.series.to_dict(), **self.marks}
        if self.zoom is not None:
            out["zoom"] = self.zoom.to_dict()
        return out


def preview_kinds(semantic_type: str, filename: str) -> list[str]:
    """The plots the file page offers for a file, judged by its type and name only (the
    folded plot is added for each search that read a light curve)."""
    if semantic_type == "periodogram":
        return ["periodogram"]
    if filename.lower().endswith(NO_PREVIEW_SUFFIXES):
        return []
    return ["lc"]


# ---------------------------------------------------------------------- downsampling
def bin_means(x: np.ndarray, y: np.ndarray, n_bins: int, lo: float, hi: float):
    """Means of ``x`` and ``y`` in ``n_bins`` equal bins of ``x`` over [lo, hi]; empty bins
    are left out."""
    if not hi > lo:
        return x[:1].copy(), np.array([float(np.mean(y))])
    index = np.clip(((x - lo) / (hi - lo) * n_bins).astype(np.int64), 0, n_bins - 1)
    counts = np.bincount(index, minlength=n_bins)
    filled = counts > 0
    sx = np.bincount(index, weights=x, minlength=n_bins)[filled]
    sy = np.bincount(index, weights=y, minlength=n_bins)[filled]
    return sx / counts[filled], sy / counts[filled]


def envelope(x: np.ndarray, y: np.ndarray, max_points: int = MAX_POINTS):
    """At most ``max_points`` points of a curve sorted by ``x``: the lowest and the highest
    point of each of ``max_points / 2`` chunks, in order, so every peak survives."""
    if x.size <= max_points:
        return x, y
    chunks = max_points // 2
    edges = np.linspace(0, x.size, chunks + 1).astype(np.int64)
    keep = []
    for start, stop in itertools.pairwise(edges):
        part = y[start:stop]
        keep += sorted({start + int(np.argmin(part)), start + int(np.argmax(part))})
    keep = np.asarray(keep)
    return x[keep], y[keep]


# ---------------------------------------------------------------------- data
def _good_samples(path: Path, key: str) -> tuple[np.ndarray, np.ndarray]:
    from eas_runtime.lightcurve import FormatError, read_lightcurve

    try:
        lc = read_lightcurve(path)
    except FormatError as exc:
        raise PlotError.of(key, f"not a readable light curve: {exc.defect}") from None
    except (ValueError, OSError) as exc:
        raise PlotError.of(key, f"not a readable light curve: {exc}") from None
    good = lc.good_mask()
    if not good.any():
        raise PlotError.of(key, f"no good samples to plot (flag 0 and finite flux) among "
                                f"{len(lc)} samples")
    return np.asarray(lc.time[good]), np.asarray(lc.flux[good])


def lightcurve_data(path: Path, key: str) -> PlotData:
    """Flux against time [d] of the good samples; binned in time beyond MAX_POINTS."""
    time, flux = _good_samples(path, key)
    binned = time.size > MAX_POINTS
    x, y = bin_means(time, flux, MAX_POINTS, time[0], time[-1]) if binned else (time, flux)
    return PlotData("lc", key, Series(x, y, "time", "d", "flux", ""), time.size, binned)


def folded_data(path: Path, key: str, search: dict[str, Any]) -> PlotData:
    """Flux against time from mid-transit [d], folded at ``search['period']`` [d] around
    ``search['epoch']`` [d]; binned in phase beyond MAX_POINTS. With a ``duration`` [d], a
    zoom on +-2.5 durations around the transit is added."""
    period, epoch = float(search["period"]), float(search["epoch"])
    if not (math.isfinite(period) and period > 0 and math.isfinite(epoch)):
        raise PlotError.of(key, f"cannot fold at period {period!r} d, epoch {epoch!r} d")
    time, flux = _good_samples(path, key)
    offset = (time - epoch + 0.5 * period) % period - 0.5 * period
    order = np.argsort(offset, kind="stable")
    offset, flux = offset[order], flux[order]
    binned = offset.size > MAX_POINTS
    x, y = (bin_means(offset, flux, MAX_POINTS, -0.5 * period, 0.5 * period) if binned
            else (offset, flux))
    zoom = None
    duration = search.get("duration")
    if isinstance(duration, (int, float)) and math.isfinite(duration) and 0 < duration < period:
        half = min(2.5 * duration, 0.5 * period)
        inside = np.abs(offset) <= half
        zx, zy = offset[inside], flux[inside]
        if zx.size > MAX_POINTS:
            zx, zy = bin_means(zx, zy, MAX_POINTS, -half, half)
        if zx.size:
            zoom = Series(zx, zy, "time from mid-transit", "d", "flux", "")
    marks = {"search": {k: search.get(k) for k in ("task_id", "task_type", "attempt_id",
                                                   "period", "epoch", "duration")},
             "units": {"period": "d", "epoch": "d", "duration": "d"}}
    return PlotData("folded", key, Series(x, y, "time from mid-transit", "d", "flux", ""),
                    offset.size, binned, marks, zoom)


def periodogram_data(path: Path, key: str) -> PlotData:
    """Power against period [d] (sorted by period), at most MAX_POINTS points (an envelope
    that keeps every peak); the peak of the whole periodogram in ``marks['peak']``."""
    from eas_runtime.lightcurve.search import UNITS, read_periodogram

    try:
        columns = read_periodogram(path)
    except KeyError:
        raise PlotError.of(key, "not a periodogram: no PERIODOGRAM table extension") from None
    except (OSError, ValueError, TypeError, IndexError) as exc:
        raise PlotError.of(key, f"not a periodogram (FITS with a PERIODOGRAM table): {exc}") \
            from None
    missing = [c for c in ("period", "power") if c not in columns]
    if missing:
        raise PlotError.of(key, f"periodogram without column(s) {', '.join(missing)}; "
                                f"it has {', '.join(sorted(columns)) or 'none'}")
    period = np.asarray(columns["period"], dtype=np.float64)
    power = np.asarray(columns["power"], dtype=np.float64)
    ok = np.isfinite(period) & np.isfinite(power) & (period > 0)
    if not ok.any():
        raise PlotError.of(key, f"no finite (period > 0, power) pair among {period.size} rows")
    period, power = period[ok], power[ok]
    order = np.argsort(period, kind="stable")
    period, power = period[order], power[order]
    best = int(np.argmax(power))
    x, y = envelope(period, power)
    marks = {"peak": {"period": float(period[best]), "power": float(power[best])},
             "units": {"period": UNITS["period"], "power": UNITS["power"]}}
    return PlotData("periodogram", key, Series(x, y, "period", "d", "power", ""), period.size,
                    x.size < period.size, marks)


# ---------------------------------------------------------------------- drawing
def _text(value: str) -> str:
    """Plain text for matplotlib: a '$' would start mathtext."""
    return value.replace("$", r"\$")


def _label(name: str, unit: str) -> str:
    return f"{name} [{unit}]" if unit else name


def render_png(data: PlotData) -> bytes:
    """The plot as PNG bytes (800 x 320 pixels)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    with _DRAW_LOCK:
        fig = Figure(figsize=FIGSIZE, dpi=DPI, layout="constrained")
        FigureCanvasAgg(fig)
        s = data.series
        if data.zoom is not None:
            ax, zoom_ax = fig.subplots(1, 2, width_ratios=(2, 1))
        else:
            ax, zoom_ax = fig.subplots(), None
        name = data.key.rsplit("/", 1)[-1]
        if data.kind == "periodogram":
            ax.plot(s.x, s.y, lw=0.7, color="#1f4e8c")
            ax.set_xscale("log")
            peak = data.marks["peak"]
            ax.axvline(peak["period"], color="#c0392b", lw=0.8, ls="--")
            ax.plot([peak["period"]], [peak["power"]], marker="v", color="#c0392b", ms=7)
            ax.annotate(f"peak P = {peak['period']:.6g} d", (peak["period"], peak["power"]),
                        xytext=(6, -12), textcoords="offset points", color="#c0392b",
                        fontsize=8)
            title = f"{name}: periodogram"
        else:
            style = {"ls": "none", "marker": ".", "ms": 2 if data.binned else 1.5, "color": "#1b1f24"}
            ax.plot(s.x, s.y, **style)
            title = f"{name}: light curve"
            if data.kind == "folded":
                found = data.marks["search"]
                # The producing search is named in the page's caption; the title stays short
                # enough for the figure's width beside the transit close-up.
                title = f"{name}: folded at P = {found['period']:.6g} d"
                ax.axvline(0.0, color="#c0392b", lw=0.6, ls=":")
                if zoom_ax is not None:
                    zoom_ax.plot(data.zoom.x, data.zoom.y, **style)
                    zoom_ax.axvline(0.0, color="#c0392b", lw=0.6, ls=":")
                    zoom_ax.set_xlabel(_label(data.zoom.x_name, data.zoom.x_unit), fontsize=8)
                    zoom_ax.set_title("transit", fontsize=8)
                    zoom_ax.tick_params(labelsize=7)
        if data.binned and data.kind != "periodogram":
            title += f" ({data.n_samples} samples in {s.x.size} bins)"
        # A figure title, not the left axes' one: it may span the transit close-up as well.
        fig.suptitle(_text(title), fontsize=9, x=0.01, ha="left")
        ax.set_xlabel(_label(s.x_name, s.x_unit), fontsize=8)
        ax.set_ylabel(_label(s.y_name, s.y_unit), fontsize=8)
        ax.tick_params(labelsize=7)
        buffer = io.BytesIO()
        fig.savefig(buffer, format="png")
    return buffer.getvalue()
