"""A candidate's one-page report (PNG or PDF, A4 landscape): the evidence to believe it or
throw it out.

Panels: the light curve with the candidate's transits marked (and the other candidates' in
grey); the fold around the transit with binned means; odd and even transits side by side on
one depth scale; the phase of a secondary eclipse (0.5); the search's periodogram with the
period marked; the vetting table (metrics, flags, verdict and reasons). Times in the light
curve's own system [d], flux relative to its median, depths in ppm. Drawn with matplotlib's
object API (no pyplot state), under the site's drawing lock.
"""
from __future__ import annotations

import io
import math
from pathlib import Path
from typing import Any, Iterable

import numpy as np

FORMATS = ("png", "pdf")
#: Points drawn per panel at most; longer series are binned first.
MAX_POINTS = 4000


def _binned(x: np.ndarray, y: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
    if x.size <= n or x.size == 0:
        return x, y
    edges = np.linspace(x.min(), x.max(), n + 1)
    idx = np.clip(np.searchsorted(edges, x, side="right") - 1, 0, n - 1)
    counts = np.bincount(idx, minlength=n)
    keep = counts > 0
    return ((np.bincount(idx, weights=x, minlength=n)[keep] / counts[keep]),
            (np.bincount(idx, weights=y, minlength=n)[keep] / counts[keep]))


def _window(ax, x, y, width, label, colour="#1b1f24", bins=60):
    near = np.abs(x) < width
    xs, ys = x[near], y[near]
    ax.plot(xs * 24, (ys - 1) * 1e6, ls="none", marker=".", ms=1.2, color="#9aa5b1")
    if xs.size:
        bx, by = _binned(xs, ys, bins)
        ax.plot(bx * 24, (by - 1) * 1e6, ls="none", marker="o", ms=3, color=colour)
    ax.axvline(0, color="#c0392b", lw=0.6, ls=":")
    ax.set_xlabel("hours from mid-transit", fontsize=8)
    ax.set_title(label, fontsize=9)
    ax.tick_params(labelsize=7)


def _fmt(value, digits=4):
    if value is None:
        return "-"
    if isinstance(value, float):
        if not math.isfinite(value):
            return "-"
        return f"{value:.{digits}g}"
    return str(value)


def render(row: dict[str, Any], lightcurve: Path, periodogram: Path | None = None, *,
           fmt: str = "png", others: Iterable[dict[str, Any]] = ()) -> bytes:
    """The report of catalogue ``row`` (see :mod:`.catalogue`) from the light-curve file and
    the search's periodogram file (optional)."""
    from matplotlib.figure import Figure

    from eas_runtime.lightcurve import read_lightcurve
    from eas_runtime.site.plots import _DRAW_LOCK, time_axis

    from .search import offset_from_transit

    if fmt not in FORMATS:
        raise ValueError(f"report format must be one of {FORMATS}, got {fmt!r}")
    lc = read_lightcurve(lightcurve).good()
    time = np.asarray(lc.time, dtype=np.float64)
    flux = np.asarray(lc.flux, dtype=np.float64)
    flux = flux / np.median(flux)
    details = row.get("details") or {}
    period, epoch = row.get("period"), float(row["epoch"])
    duration = float(row["duration"])
    time_unit = f"{time_axis(lc.meta)} [d]"     # the site's plots name the time system alike

    with _DRAW_LOCK:
        fig = Figure(figsize=(11.69, 8.27), dpi=110, layout="constrained")
        grid = fig.add_gridspec(3, 4, height_ratios=(1.0, 1.2, 1.1))
        star = row.get("star_name") or row.get("star_id") or "star"
        what = (f"P = {period:.6g} d" if period else f"single event at {epoch:.6g} d")
        verdict = row.get("verdict", "")
        fig.suptitle(f"{star} · candidate {row.get('number')} ({row.get('kind')}): {what}, "
                     f"depth {_fmt(row.get('depth'))} ppm, S/N {_fmt(row.get('snr'), 3)} — "
                     f"{verdict}", fontsize=11,
                     color="#1e7b34" if verdict == "planet candidate" else "#b03a2e")

        # 1. light curve with transits marked
        ax = fig.add_subplot(grid[0, :])
        bx, by = _binned(time, flux, MAX_POINTS)
        ax.plot(bx, (by - 1) * 1e6, ls="none", marker=".", ms=1.2, color="#1b1f24")
        marks = [epoch] if not period else list(
            epoch + period * np.arange(math.ceil((time[0] - epoch) / period),
                                       math.floor((time[-1] - epoch) / period) + 1))
        for t in marks:
            ax.axvline(t, color="#c0392b", lw=0.8, alpha=0.8)
        for other in others:
            if other.get("number") == row.get("number"):
                continue
            op, oe = other.get("period"), float(other["epoch"])
            ots = [oe] if not op else list(oe + op * np.arange(
                math.ceil((time[0] - oe) / op), math.floor((time[-1] - oe) / op) + 1))
            for t in ots:
                ax.axvline(t, color="#8a94a0", lw=0.5, ls="--", alpha=0.6)
        ax.set_xlabel(time_unit, fontsize=8)
        ax.set_ylabel("flux - 1 [ppm]", fontsize=8)
        ax.set_title(f"light curve ({time.size} samples{', binned' if bx.size < time.size else ''}"
                     f"); this candidate's transits red, the other candidates' grey dashed",
                     fontsize=9)
        ax.tick_params(labelsize=7)

        width = 3 * duration
        offset = offset_from_transit(time, period or None, epoch)
        # 2. fold
        ax = fig.add_subplot(grid[1, 0:2])
        _window(ax, offset, flux, width, "folded at the period" if period else "the event")
        ax.set_ylabel("flux - 1 [ppm]", fontsize=8)
        depth = row.get("depth") or 0.0
        ax.axhline(-depth, color="#2c6fbb", lw=0.6, ls="--")
        # 3. odd and even
        ax_odd = fig.add_subplot(grid[1, 2])
        ax_even = fig.add_subplot(grid[1, 3], sharey=ax_odd)
        if period:
            index = np.rint((time - epoch) / period).astype(np.int64)
            for axis, parity, name in ((ax_odd, 1, "odd"), (ax_even, 0, "even")):
                sel = index % 2 == parity
                d = details.get(f"{name}_depth")
                _window(axis, offset[sel], flux[sel], width,
                        f"{name} transits: {_fmt(d)} ppm")
            ax_odd.set_title(ax_odd.get_title() + f" (odd/even {_fmt(details.get('odd_even_sigma'), 2)} σ)",
                             fontsize=9)
        else:
            for axis in (ax_odd, ax_even):
                axis.text(0.5, 0.5, "single event: no odd/even", ha="center", va="center",
                          fontsize=8, transform=axis.transAxes)
                axis.set_axis_off()
        # 4. secondary
        ax = fig.add_subplot(grid[2, 0])
        if period:
            secondary = (time - epoch) % period - 0.5 * period
            _window(ax, secondary, flux, width,
                    f"phase 0.5: {_fmt(details.get('secondary_depth'))} ppm "
                    f"({_fmt(details.get('secondary_sigma'), 2)} σ)", colour="#6c3483")
        else:
            ax.text(0.5, 0.5, "single event: no secondary phase", ha="center", va="center",
                    fontsize=8, transform=ax.transAxes)
            ax.set_axis_off()
        # 5. periodogram
        ax = fig.add_subplot(grid[2, 1])
        if periodogram is not None:
            from eas_runtime.lightcurve.search import read_periodogram
            try:
                gram = read_periodogram(periodogram)
            except Exception:    # noqa: BLE001 - the report stands without it
                gram = None
            if gram is not None and gram.get("period") is not None and gram["period"].size:
                ax.plot(gram["period"], gram["power"], lw=0.5, color="#1f4e8c")
                ax.set_xscale("log")
                if period:
                    ax.axvline(period, color="#c0392b", lw=0.8, ls="--")
                ax.set_xlabel("period [d]", fontsize=8)
                ax.set_title("periodogram (first search round)", fontsize=9)
                ax.tick_params(labelsize=7)
        if not ax.lines:
            ax.text(0.5, 0.5, "no periodogram recorded", ha="center", va="center", fontsize=8,
                    transform=ax.transAxes)
            ax.set_axis_off()
        # 6. vetting table
        ax = fig.add_subplot(grid[2, 2:])
        ax.set_axis_off()
        lines = [("period [d]", _fmt(period, 8)), ("epoch [d]", _fmt(epoch, 10)),
                 ("duration [h]", _fmt(duration * 24, 3)), ("depth [ppm]", _fmt(row.get("depth"))),
                 ("S/N", _fmt(row.get("snr"), 3)), ("transits with data",
                                                    _fmt(details.get("n_transits"))),
                 ("odd/even [σ]", _fmt(details.get("odd_even_sigma"), 2)),
                 ("secondary [σ]", _fmt(details.get("secondary_sigma"), 2)),
                 ("flat bottom T23/T14", _fmt(details.get("shape"), 2)),
                 ("max SES / MES", _fmt(details.get("max_ses_share"), 2)),
                 ("duration / expected", _fmt(details.get("duration_ratio"), 2)),
                 ("TLS period [d] / S/N", f"{_fmt(details.get('tls_period'), 8)} / "
                                          f"{_fmt(details.get('tls_snr'), 3)}"),
                 ("flags", ", ".join(row.get("flags") or []) or "none")]
        text = "\n".join(f"{k:<22}{v}" for k, v in lines)
        reasons = row.get("reasons") or []
        notes = row.get("notes") or []
        text += "\n\nverdict: " + verdict
        text += "".join(f"\n - {r}" for r in reasons) or "\n - passes every test"
        text += "".join(f"\n note: {n}" for n in notes)
        ax.text(0.0, 1.0, _wrap(text, 90), va="top", ha="left", family="monospace", fontsize=7.5,
                transform=ax.transAxes)
        buffer = io.BytesIO()
        if fmt == "png":
            from matplotlib.backends.backend_agg import FigureCanvasAgg
            FigureCanvasAgg(fig).print_png(buffer)
        else:
            from matplotlib.backends.backend_pdf import FigureCanvasPdf
            FigureCanvasPdf(fig).print_pdf(buffer)
        return buffer.getvalue()


def _wrap(text: str, width: int) -> str:
    import textwrap
    return "\n".join(textwrap.fill(line, width, subsequent_indent="   ") if len(line) > width
                     else line for line in text.splitlines())
