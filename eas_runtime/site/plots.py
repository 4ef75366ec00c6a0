"""Preview plots of products: a light curve, the same folded at a search's period, a
periodogram with its peak marked, and a detrended light curve over the raw one it came from.

Each kind has a data step (read the file, keep at most :data:`MAX_POINTS` points to draw)
returning a :class:`PlotData` that is served as JSON as it is, and a drawing step
(:func:`render_png`, matplotlib's object API on the Agg canvas, no pyplot state) that turns it
into a PNG. Units: times, periods, epochs and durations in days; flux in the file's own unit;
power in the periodogram's own statistic. The time axis names the light curve's time system as
ingest recorded it (``time_system``, ``time_reference_bjd``): ``BTJD (BJD − 2457000)`` for
TESS, ``BKJD (BJD − 2454833)`` for Kepler and K2, ``BJD − <offset>`` for other tables, plain
``time`` when the file does not say (:func:`time_axis`).

Size: :data:`PIXELS` (1200 x 480) at 150 dpi, so that the text is readable when the page
scales the image down to its width; the detrended plot, two panels, :data:`PIXELS_TALL`.

The detrended plot (:func:`detrended_data`) draws the raw light curve (the detrend task's input)
with the trend that was divided out over it, and the detrended curve in a panel below on the
same time axis. Drawing the flat curve over the raw one would hide both: the raw flux varies by
far more than the transit depth, so on one axis the flat curve is a line; the trend over the
raw shows what the filter removed (and whether it ate a transit), the panel below what the
search sees, each on its own scale.

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

KINDS = ("lc", "folded", "periodogram", "detrended")
#: Points drawn (and returned as JSON) per series at most; longer series are binned.
MAX_POINTS = 2000
#: Files that never get a light-curve preview (by name ending, lower case).
NO_PREVIEW_SUFFIXES = (".json", ".yaml", ".yml", ".cfg", ".log", ".png", ".jpg", ".jpeg", ".svg",
                       ".pdf", ".html", ".xml", ".md", ".py", ".sh", ".zip", ".tar", ".npy", ".npz")
#: Figure size [inches] at :data:`DPI`: 1200 x 480 pixels; two panels: 1200 x 720.
FIGSIZE, FIGSIZE_TALL, DPI = (8.0, 3.2), (8.0, 4.8), 150
#: Width and height of a drawn PNG [px] (the <img> attributes of the pages use them).
PIXELS = (round(FIGSIZE[0] * DPI), round(FIGSIZE[1] * DPI))
PIXELS_TALL = (round(FIGSIZE_TALL[0] * DPI), round(FIGSIZE_TALL[1] * DPI))
#: BJD of time 0 of the missions' time systems (as the FITS headers' BJDREFI + BJDREFF say).
MISSION_TIME_ZERO = {"BTJD": 2457000.0, "BKJD": 2454833.0}
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
    #: Further series drawn with the main one (``trend`` over the raw light curve, ``flat``).
    extra: dict[str, Series] = field(default_factory=dict)

    def to_dict(self) -> dict:
        out = {"kind": self.kind, "key": self.key, "n_samples": self.n_samples,
               "n_points": int(self.series.x.size), "binned": self.binned,
               **self.series.to_dict(), **self.marks}
        if self.zoom is not None:
            out["zoom"] = self.zoom.to_dict()
        for name, series in self.extra.items():
            out[name] = series.to_dict()
        out["pixels"] = list(self.pixels)
        return out

    @property
    def pixels(self) -> tuple[int, int]:
        """Width and height of the PNG [px]."""
        return PIXELS_TALL if self.kind == "detrended" else PIXELS


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
    keep: list[int] = []
    for start, stop in itertools.pairwise(edges):
        part = y[start:stop]
        keep += sorted({start + int(np.argmin(part)), start + int(np.argmax(part))})
    index = np.asarray(keep)
    return x[index], y[index]


# ---------------------------------------------------------------------- data
def _read(path: Path, key: str):
    from eas_runtime.lightcurve import FormatError, read_lightcurve

    try:
        return read_lightcurve(path)
    except FormatError as exc:
        raise PlotError.of(key, f"not a readable light curve: {exc.defect}") from None
    except (ValueError, OSError) as exc:
        raise PlotError.of(key, f"not a readable light curve: {exc}") from None


def _good_samples(path: Path, key: str) -> tuple[np.ndarray, np.ndarray, dict]:
    lc = _read(path, key)
    good = lc.good_mask()
    if not good.any():
        raise PlotError.of(key, f"no good samples to plot (flag 0 and finite flux) among "
                                f"{len(lc)} samples")
    return np.asarray(lc.time[good]), np.asarray(lc.flux[good]), dict(lc.meta)


def _number(value) -> float | None:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def time_axis(meta: dict) -> str:
    """The name of a light curve's time axis [d] from its metadata (see the module):
    ``BTJD (BJD − 2457000)``, ``BKJD (BJD − 2454833)``, ``BJD − 2450000``, ``BJD``,
    ``MJD (JD − 2400000.5)``, ``HJD − 2450000``... or ``time`` when the file does not say."""
    system = str(meta.get("time_system") or "").strip().upper()
    ref = _number(meta.get("time_reference_bjd"))
    zero = MISSION_TIME_ZERO.get(system)
    if zero is not None and (ref is None or abs(ref - zero) < 1e-6):
        return f"{system} (BJD − {zero:.10g})"
    if system == "MJD" and (ref is None or abs(ref - 2400000.5) < 1e-6):
        return "MJD (JD − 2400000.5)"
    base = system if system in ("JD", "HJD") else "JD" if system == "MJD" else "BJD"
    if ref is None:
        return system or "time"
    return base if ref == 0 else f"{base} − {ref:.10g}"


def lightcurve_data(path: Path, key: str) -> PlotData:
    """Flux against time [d] of the good samples; binned in time beyond MAX_POINTS."""
    time, flux, meta = _good_samples(path, key)
    binned = time.size > MAX_POINTS
    x, y = bin_means(time, flux, MAX_POINTS, time[0], time[-1]) if binned else (time, flux)
    return PlotData("lc", key, Series(x, y, time_axis(meta), "d", "flux", ""), time.size, binned)


def detrended_data(raw_path: Path, raw_key: str, path: Path, key: str) -> PlotData:
    """The raw light curve ``raw_key`` (the detrend task's input) with the trend divided out
    of it (raw / detrended, sample by sample: detrend keeps its input's raster), and the
    detrended light curve ``key``; each binned in time beyond MAX_POINTS (module docstring)."""
    raw, flat = _read(raw_path, raw_key), _read(path, key)
    if len(raw) != len(flat) or not np.array_equal(raw.time, flat.time):
        raise PlotError.of(key, f"its samples are not those of {raw_key} ({len(flat)} against "
                                f"{len(raw)}): the trend cannot be drawn over the raw light curve")
    raw_good, flat_good = raw.good_mask(), flat.good_mask()
    if not raw_good.any():
        raise PlotError.of(raw_key, f"no good samples to plot among {len(raw)} samples")
    both = raw_good & flat_good & (np.asarray(flat.flux) != 0)
    if not both.any():
        raise PlotError.of(key, f"no good detrended samples to plot among {len(flat)} samples")
    time = np.asarray(raw.time, dtype=np.float64)
    lo, hi = time[raw_good][0], time[raw_good][-1]

    def drawn(mask, values):
        t, v = time[mask], np.asarray(values, dtype=np.float64)[mask]
        return bin_means(t, v, MAX_POINTS, lo, hi) if t.size > MAX_POINTS else (t, v)

    axis = time_axis(raw.meta)
    rx, ry = drawn(raw_good, raw.flux)
    tx, ty = drawn(both, np.where(both, np.asarray(raw.flux) / np.where(both, flat.flux, 1.0), np.nan))
    fx, fy = drawn(both, flat.flux)
    marks = {"raw": {"key": raw_key, "n_samples": int(raw_good.sum())},
             "detrend": {k: flat.meta.get(k) for k in ("detrend_method", "detrend_kernel",
                                                        "detrend_window_length") if k in flat.meta}}
    return PlotData("detrended", key, Series(rx, ry, axis, "d", "raw flux", ""), int(both.sum()),
                    bool(raw_good.sum() > MAX_POINTS), marks,
                    extra={"trend": Series(tx, ty, axis, "d", "trend", ""),
                           "flat": Series(fx, fy, axis, "d", "detrended flux", "")})


def folded_data(path: Path, key: str, search: dict[str, Any]) -> PlotData:
    """Flux against time from mid-transit [d], folded at ``search['period']`` [d] around
    ``search['epoch']`` [d]; binned in phase beyond MAX_POINTS. With a ``duration`` [d], a
    zoom on +-2.5 durations around the transit is added."""
    period, epoch = float(search["period"]), float(search["epoch"])
    if not (math.isfinite(period) and period > 0 and math.isfinite(epoch)):
        raise PlotError.of(key, f"cannot fold at period {period!r} d, epoch {epoch!r} d")
    time, flux, _ = _good_samples(path, key)
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
    """The plot as PNG bytes (``data.pixels``: 1200 x 480 pixels, 1200 x 720 for two panels)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    with _DRAW_LOCK:
        fig = Figure(figsize=FIGSIZE_TALL if data.kind == "detrended" else FIGSIZE, dpi=DPI,
                     layout="constrained")
        FigureCanvasAgg(fig)
        s = data.series
        lower = None
        if data.kind == "detrended":
            ax, lower = fig.subplots(2, 1, sharex=True)
            zoom_ax = None
        elif data.zoom is not None:
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
        elif data.kind == "detrended":
            style = {"ls": "none", "marker": ".", "ms": 2 if data.binned else 1.5, "color": "#1b1f24"}
            trend, flat = data.extra["trend"], data.extra["flat"]
            assert lower is not None            # the detrended plot has two panels
            ax.plot(s.x, s.y, label=f"raw ({data.marks['raw']['key'].rsplit('/', 1)[-1]})", **style)
            ax.plot(trend.x, trend.y, color="#c0392b", lw=1.0, label="trend (divided out)")
            ax.legend(fontsize=7, loc="upper right", markerscale=4)
            lower.plot(flat.x, flat.y, **style)
            lower.set_ylabel(_text(_label(flat.y_name, flat.y_unit)), fontsize=8)
            lower.set_xlabel(_text(_label(flat.x_name, flat.x_unit)), fontsize=8)
            lower.tick_params(labelsize=7)
            method = data.marks.get("detrend", {}).get("detrend_method")
            title = f"{name}: detrended" + (f" ({method})" if method else "") + ", over the raw light curve"
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
                    assert data.zoom is not None    # zoom_ax is made for it
                    zoom_ax.plot(data.zoom.x, data.zoom.y, **style)
                    zoom_ax.axvline(0.0, color="#c0392b", lw=0.6, ls=":")
                    zoom_ax.set_xlabel(_label(data.zoom.x_name, data.zoom.x_unit), fontsize=8)
                    zoom_ax.set_title("transit", fontsize=8)
                    zoom_ax.tick_params(labelsize=7)
        if data.binned and data.kind not in ("periodogram", "detrended"):
            title += f" ({data.n_samples} samples in {s.x.size} bins)"
        # A figure title, not the left axes' one: it may span the transit close-up as well.
        fig.suptitle(_text(title), fontsize=9, x=0.01, ha="left")
        if lower is None:
            ax.set_xlabel(_text(_label(s.x_name, s.x_unit)), fontsize=8)
        ax.set_ylabel(_text(_label(s.y_name, s.y_unit)), fontsize=8)
        ax.tick_params(labelsize=7)
        buffer = io.BytesIO()
        fig.savefig(buffer, format="png")
    return buffer.getvalue()
