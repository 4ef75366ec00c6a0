"""The ``stitch`` task: every segment of a star (TESS sectors, Kepler quarters, K2 campaigns,
PLATO quarters) as one star light curve.

Each segment keeps its good samples (flag 0, finite flux), is divided by its own median flux
(with its uncertainties) and is moved to one time reference: the earliest segment's
``time_reference_bjd`` (BTJD = BJD - 2457000, BKJD = BJD - 2454833...); a segment that states no
reference is taken to share it, with a warning. Segments are ordered in time. Two segments that
are the same observation (the same ``segment`` name, or times overlapping over more than half of
the shorter one: one sector read from two files) count once: the one with more good samples.

Detrending is the ``detrend`` task's, after this one: its filter is local (a window of about a
day) and it splits the light curve at gaps longer than ``break_tolerance`` (0.5 d), so each
segment is detrended on its own; the gaps between segments are days to years.

The output's metadata: ``star_id``, ``mission`` (all missions, joined), ``segments`` (their
names, joined), ``n_segments``, ``stitched`` (true), ``time_system``, ``time_reference_bjd``
and the ``warnings``.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Iterable

import numpy as np

from eas_runtime.lightcurve import LightCurve
from eas_runtime.task_api import InputError

TASK = "stitch"
#: Most segments one star light curve is made of (PLATO: 8 quarters in 2 years; TESS: 13
#: sectors a year in the continuous viewing zone).
MAX_SEGMENTS = 200


@dataclass(frozen=True)
class Segment:
    """One segment: its light curve and where it came from (an object key or a file name)."""
    lc: LightCurve
    source: str

    @property
    def name(self) -> str:
        return str(self.lc.meta.get("segment") or self.source)

    @property
    def reference(self) -> float | None:
        value = self.lc.meta.get("time_reference_bjd")
        try:
            number = float(value)
        except (TypeError, ValueError):
            return None
        return number if math.isfinite(number) else None


def _overlap(a: np.ndarray, b: np.ndarray) -> float:
    """Fraction of the shorter time span that the other covers."""
    lo, hi = max(a[0], b[0]), min(a[-1], b[-1])
    shorter = min(a[-1] - a[0], b[-1] - b[0])
    if hi <= lo or shorter <= 0:
        return 0.0
    return (hi - lo) / shorter


def _time_system(kept, reference: float | None) -> str:
    """The name of the common time system: the one the segments on ``reference`` use
    (BTJD, BKJD...), else ``BJD - reference``; '' when no segment states one."""
    names = {str(s.lc.meta.get("time_system") or "") for s, _, _ in kept
             if s.reference == reference} - {""}
    if len(names) == 1:
        return names.pop()
    return f"BJD - {reference:.10g}" if reference is not None else ""


def stitch(segments: Iterable[Segment], *, star_id: str | None = None) -> LightCurve:
    """One light curve of ``segments`` (see the module documentation). InputError when no
    segment has good samples or a segment has a flux median that is not positive."""
    segments = list(segments)
    if len(segments) > MAX_SEGMENTS:
        raise InputError(f"{len(segments)} segments to stitch; at most {MAX_SEGMENTS}")
    warnings: list[str] = []
    usable: list[tuple[Segment, LightCurve]] = []
    for seg in segments:
        good = seg.lc.good()
        if len(good) == 0:
            warnings.append(f"{seg.name}: no good samples, left out")
            continue
        median = float(np.median(good.flux))
        if not median > 0:
            raise InputError(f"segment {seg.name} ({seg.source}) has a median flux of {median!r}: "
                             f"it cannot be normalised")
        usable.append((seg, good))
    if not usable:
        raise InputError("no segment has good samples (flag 0, finite flux)")
    references = [s.reference for s, _ in usable if s.reference is not None]
    reference = min(references) if references else None
    shifted: list[tuple[Segment, np.ndarray, LightCurve]] = []
    for seg, good in usable:
        ref = seg.reference
        if ref is None and reference is not None:
            warnings.append(f"{seg.name}: no time reference stated; taken as BJD - {reference:g}")
            ref = reference
        offset = (ref - reference) if (ref is not None and reference is not None) else 0.0
        shifted.append((seg, good.time + offset, good))
    shifted.sort(key=lambda x: float(x[1][0]))
    kept: list[tuple[Segment, np.ndarray, LightCurve]] = []
    for item in shifted:
        seg, t, good = item
        twin = next((k for k in kept if (k[0].lc.meta.get("segment") and
                                         k[0].lc.meta.get("segment") == seg.lc.meta.get("segment")
                                         and k[0].lc.meta.get("mission") == seg.lc.meta.get("mission"))
                     or _overlap(k[1], t) > 0.5), None)
        if twin is None:
            kept.append(item)
            continue
        better = item if len(good) > len(twin[2]) else twin
        dropped = twin if better is item else item
        warnings.append(f"{dropped[0].source} is the same observation as {better[0].source} "
                        f"({dropped[0].name}): counted once")
        kept[kept.index(twin)] = better
    kept.sort(key=lambda x: float(x[1][0]))
    times, fluxes, errors = [], [], []
    with_errors = all(k[2].flux_err is not None for k in kept)
    for seg, t, good in kept:
        median = float(np.median(good.flux))
        times.append(t)
        fluxes.append(good.flux / median)
        if with_errors:
            errors.append(good.flux_err / median)
    time = np.concatenate(times)
    order = np.argsort(time, kind="stable")
    time = time[order]
    flux = np.concatenate(fluxes)[order]
    flux_err = np.concatenate(errors)[order] if with_errors else None
    keep = np.concatenate(([True], np.diff(time) > 0))     # times must increase strictly
    if not keep.all():
        warnings.append(f"{int((~keep).sum())} samples at times already taken by an earlier "
                        f"segment dropped")
        time, flux = time[keep], flux[keep]
        flux_err = flux_err[keep] if flux_err is not None else None
    first = kept[0][0].lc.meta
    missions = sorted({str(s.lc.meta["mission"]) for s, _, _ in kept if s.lc.meta.get("mission")})
    meta: dict[str, Any] = {
        "star_id": star_id or first.get("star_id") or "",
        "object": first.get("object") or "",
        "mission": "; ".join(missions), "segments": "; ".join(s.name for s, _, _ in kept),
        "n_segments": len(kept), "stitched": True, "provenance": "stitch",
        "time_system": _time_system(kept, reference),
    }
    if reference is not None:
        meta["time_reference_bjd"] = reference
    if warnings:
        meta["warnings"] = "; ".join(warnings)
    return LightCurve(time, flux, flux_err, None, {k: v for k, v in meta.items() if v != ""})
