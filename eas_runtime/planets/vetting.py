"""Vetting: is a candidate a planet, or something that mimics one?

:func:`vet` measures each candidate on the light curve with every other candidate's transits
masked, and gives a verdict, ``planet candidate`` or ``false positive``, with the reasons. The
tests are those of the Kepler pipeline's data validation (DV; Twicken et al. 2018) and of the
Kepler Robovetter (Coughlin et al. 2016; Thompson et al. 2018). The thresholds below are this
pipeline's, chosen in the same spirit; each is a module constant and can be changed per task.

=====================  =====================================================  ================
metric                 what it measures                                       false positive
=====================  =====================================================  ================
odd_even_sigma         difference of the mean depths of odd and even          >= 3 sigma
                       transits over its uncertainty, with 5 % of the depth
                       added for transit-to-transit changes (DV's odd/even
                       depth test: an eclipsing binary found at half its
                       period)
secondary_sigma,       box depth at phase 0.5 with the transit's duration,     >= 3 sigma and
secondary_depth        its S/N (DV's weak-secondary test); a planet's          deeper than the
                       occultation is at most ``depth / (a/R)**2`` (geometric  planetary bound
                       albedo 1; Coughlin et al. 2016, sec. 4.2.3)
shape, shape_sigma     flat-bottom fraction T23/T14 of the best trapezoid      <= 0.25, a V
                       (smeared by the cadence): 0 for a V, about 0.7-0.95     better than a U
                       for a planet; and by how many sigma (sqrt of the chi2   by >= 3 sigma,
                       difference) the best V fits better than the best U     and depth >= 1.5 %
                       (flat bottom >= 0.5) (Robovetter's V-shape test)
max_ses_share          largest single event's SES over the MES (Robovetter's  > 0.8 with >= 3
                       MaxSES/MES: one event carries the signal)              transits
alias_of               the period is n or 1/n (n <= 5) times a stronger        any
                       candidate's, within 1 %, with coinciding transits
                       (DV's ghost and harmonic tests)
duration_ratio         box duration over a central transit's on a star of     > 2.5, when the
                       the given density (Seager & Mallen-Ornelas 2003)       density is stated
n_transits             transits with at least half their samples              < 2 (periodic)
=====================  =====================================================  ================

A single-transit candidate has no period: only its shape and its depth are judged, and its
verdict says it is a single event. Uncertainties are white-noise ones times the candidate's
red-noise factor (Pont et al. 2006).

References
----------
Twicken et al. (2018), PASP 130, 064502 (Kepler DV diagnostics); Coughlin et al. (2016), ApJS
224, 12 and Thompson et al. (2018), ApJS 235, 38 (Robovetter); Seager & Mallen-Ornelas (2003),
ApJ 585, 1038; Pont, Zucker & Queloz (2006), MNRAS 373, 231.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Iterable, Mapping

import numpy as np

from eas_runtime.bls import grid

from eas_runtime.lightcurve.search import robust_sigma

from .search import MASK_FACTOR, offset_from_transit, red_noise_factor, transit_mask

from .names import FALSE_POSITIVE, PLANET  # the verdicts, shared with the catalogue

ODD_EVEN_SIGMA = 3.0
#: Transit-to-transit depth changes that are not noise (detrending, spot crossings), as a
#: fraction of the depth: added in quadrature to the odd/even difference's uncertainty, so that
#: a planet at S/N 700 is not failed for a 3 % difference between its odd and even depths.
DEPTH_SYSTEMATIC = 0.05
SECONDARY_SIGMA = 3.0
#: Geometric albedo of the planetary bound on a secondary eclipse.
ALBEDO_MAX = 1.0
#: Largest flat-bottom fraction (T23 / T14) of a V, and how much better than a U
#: (flat bottom >= :data:`U_SHAPE`) it must fit.
V_SHAPE = 0.25
U_SHAPE = 0.5
V_SHAPE_SIGMA = 3.0
V_SHAPE_DEPTH_PPM = 15000.0
MAX_SES_SHARE = 0.8
MAX_SES_MIN_TRANSITS = 3
ALIAS_TOLERANCE = 0.01
ALIAS_MAX_N = 5
DURATION_RATIO_MAX = 2.5
MIN_TRANSITS = 2

#: Units of the metrics.
METRIC_UNITS = {"secondary_depth": "ppm", "max_occultation_depth": "ppm",
                "expected_duration": "d", "odd_depth": "ppm", "even_depth": "ppm"}


@dataclass
class Vetting:
    """The metrics, flags and verdict of one candidate (see the module table)."""

    number: int
    verdict: str
    reasons: list[str] = field(default_factory=list)
    flags: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    metrics: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"number": self.number, "verdict": self.verdict, "reasons": list(self.reasons),
                "flags": list(self.flags), "notes": list(self.notes),
                "metrics": {k: _finite(v) for k, v in self.metrics.items()}}


def _finite(value):
    if isinstance(value, (float, np.floating)):
        value = float(value)
        return value if math.isfinite(value) else None
    if isinstance(value, np.integer):
        return int(value)
    return value


def _mean_depth(resid: np.ndarray, sigma: float) -> tuple[float, float, int]:
    """(depth, its uncertainty, count) of the samples ``resid`` (flux - 1); depth positive
    for a dip."""
    n = int(resid.size)
    if n == 0:
        return math.nan, math.nan, 0
    return float(-np.mean(resid)), sigma / math.sqrt(n), n


def _trapezoid(x: np.ndarray, t14: float, flat: float) -> np.ndarray:
    """Unit-depth trapezoid of total duration ``t14`` and flat bottom ``flat * t14``."""
    half, bottom = 0.5 * t14, 0.5 * flat * t14
    ramp = max(half - bottom, 1e-12)
    return np.clip((half - np.abs(x)) / ramp, 0.0, 1.0)


def trapezoid_fit(offset: np.ndarray, resid: np.ndarray, sigma: float, duration: float,
                  cadence: float) -> tuple[float, float, float]:
    """(flat-bottom fraction, V-over-U significance [sigma], total duration [d]) of the best
    trapezoid on the samples within 1.5 box durations of mid-transit (``offset`` [d] from it).

    Total durations 0.6-1.8 times the box's, flat-bottom fractions 0-1 in steps of 0.05; each
    model averaged over the exposure (5 sub-samples per ``cadence``) and fitted for its depth by
    least squares. The significance is ``sqrt(chi2(best U) - chi2(best V))`` (negative when the
    U fits better), with U a flat bottom of at least :data:`U_SHAPE` and V at most
    :data:`V_SHAPE`.
    """
    near = np.abs(offset) < 1.5 * 1.8 * duration
    x, y = offset[near], -resid[near]
    if x.size < 5 or not sigma > 0:
        return math.nan, math.nan, math.nan
    if x.size > 20000:                       # bin: the fit needs a fraction of a duration
        width = duration / 60.0
        idx = np.floor(x / width).astype(np.int64)
        idx -= idx.min()
        counts = np.bincount(idx)
        keep = counts > 0
        x = (np.bincount(idx, weights=x)[keep] / counts[keep])
        y = (np.bincount(idx, weights=y)[keep] / counts[keep])
        w = counts[keep].astype(np.float64)
    else:
        w = np.ones(x.size)
    smear = cadence if math.isfinite(cadence) and cadence > 0 else 0.0
    subs = (np.linspace(-0.4, 0.4, 5) * smear) if smear > 0.02 * duration else np.zeros(1)
    flats = np.linspace(0.0, 1.0, 21)
    best: dict[str, Any] = {"all": (-math.inf, 0.0, 0.0), "v": -math.inf, "u": -math.inf}
    for t14 in duration * 1.1 ** np.arange(-5, 7):
        for flat in flats:
            model = np.mean([_trapezoid(x + dx, t14, flat) for dx in subs], axis=0)
            mm = float(np.sum(w * model * model))
            if mm <= 0:
                continue
            gain = float(np.sum(w * model * y)) ** 2 / mm   # chi2 reduction x sigma^2
            if gain > best["all"][0]:
                best["all"] = (gain, flat, t14)
            if flat <= V_SHAPE + 1e-9:
                best["v"] = max(best["v"], gain)
            if flat >= U_SHAPE - 1e-9:
                best["u"] = max(best["u"], gain)
    difference = (best["v"] - best["u"]) / sigma ** 2
    significance = math.copysign(math.sqrt(abs(difference)), difference)
    return best["all"][1], significance, best["all"][2]


def _alias(cand: Mapping[str, Any], stronger: Iterable[Mapping[str, Any]]) -> tuple[int, int] | None:
    """(number of the stronger candidate, n with a sign: +n for n times its period, -n for
    1/n) when ``cand`` is a harmonic or alias of one, else None."""
    p, e = cand["period"], cand["epoch"]
    for other in stronger:
        q, f = other.get("period"), other["epoch"]
        if not q:
            continue
        window = max(cand["duration"], other["duration"])
        for n in range(1, ALIAS_MAX_N + 1):
            if abs(p / (n * q) - 1) < ALIAS_TOLERANCE:        # n times the stronger period
                phase = (e - f) / q
                if abs(phase - round(phase)) * q < window:
                    return int(other["number"]), n
            if n > 1 and abs(p * n / q - 1) < ALIAS_TOLERANCE:  # 1/n of the stronger period
                phase = (f - e) / p
                if abs(phase - round(phase)) * p < window:
                    return int(other["number"]), -n
    return None


def vet(time, flux, candidates: list[Mapping[str, Any]], *, density: float | None = None,
        mask_factor: float = MASK_FACTOR) -> list[Vetting]:
    """Vet each of ``candidates`` (mappings with ``number``, ``kind``, ``period`` (None for a
    single event), ``epoch``, ``duration`` [d], ``depth`` [ppm], ``snr`` and optionally
    ``red_noise``) on the normalised, detrended ``(time, flux)``.

    ``density`` [solar units] is the star's, when known: it judges the duration; without it the
    Sun's is assumed for the metrics and the duration is not judged.
    """
    time = np.asarray(time, dtype=np.float64)
    flux = np.asarray(flux, dtype=np.float64)
    order = np.argsort(time, kind="stable")
    time, resid = time[order], flux[order] - 1.0
    cadence = float(np.median(np.diff(time))) if time.size > 1 else math.nan
    rho = 1.0 if density is None else float(density)
    by_strength = sorted(candidates, key=lambda c: -(c.get("snr") or 0.0))
    masks = {int(c["number"]): transit_mask(time, c.get("period"), float(c["epoch"]),
                                            float(c["duration"]), mask_factor)
             for c in candidates}
    all_masked = np.zeros(time.size, dtype=bool)
    for mask in masks.values():
        all_masked |= mask
    sigma_white = robust_sigma(resid[~all_masked]) if (~all_masked).sum() > 10 else robust_sigma(resid)
    out = []
    for cand in candidates:
        number = int(cand["number"])
        # Mask the other candidates' transits, except those that are mostly this one's (an
        # alias or harmonic of it: masking them would remove its own transits).
        own = transit_mask(time, cand.get("period"), float(cand["epoch"]),
                           float(cand["duration"]))
        others = np.zeros(time.size, dtype=bool)
        for other, mask in masks.items():
            if other != number and not (mask & own).sum() > 0.5 * own.sum():
                others |= mask
        t, r = time[~others], resid[~others]
        period = cand.get("period")
        epoch, duration = float(cand["epoch"]), float(cand["duration"])
        depth_ppm = float(cand["depth"])
        beta = cand.get("red_noise") or red_noise_factor(
            t, r, duration, sigma_white, exclude=transit_mask(t, period, epoch, duration,
                                                                 mask_factor))
        sigma = sigma_white * beta
        v = Vetting(number=number, verdict=PLANET)
        m = v.metrics
        m["red_noise"] = beta
        offset = offset_from_transit(t, period, epoch)
        inside = np.abs(offset) < 0.5 * duration

        # shape: a trapezoid's flat-bottom fraction, V against U
        fit = trapezoid_fit(offset, r, sigma, duration, cadence)
        m["shape"], m["shape_sigma"], m["trapezoid_duration"] = fit
        if m["shape"] <= V_SHAPE and m["shape_sigma"] >= V_SHAPE_SIGMA:
            v.flags.append("V_SHAPE")
            text = (f"V-shaped (flat bottom {m['shape']:.2f} of the duration, a V fits better "
                    f"than a U by {m['shape_sigma']:.1f} sigma)")
            if depth_ppm >= V_SHAPE_DEPTH_PPM:
                v.reasons.append(f"{text} and {depth_ppm / 1e4:.2g} % deep: a grazing stellar "
                                 f"eclipse")
            else:
                v.notes.append(f"{text} but only {depth_ppm:.0f} ppm deep: may be a grazing "
                               f"planet")

        if period is None:
            m["n_transits"] = 1
            v.notes.append("single transit event: no period, the period-based tests do not "
                           "apply")
            v.verdict = FALSE_POSITIVE if v.reasons else PLANET
            out.append(v)
            continue

        # per-transit depths
        index = np.rint((t - epoch) / period).astype(np.int64)
        ep = index[inside]
        expected = duration / cadence if cadence > 0 else 1.0
        epochs, which, counts = np.unique(ep, return_inverse=True, return_counts=True)
        sums = np.bincount(which, weights=r[inside], minlength=epochs.size)
        depths = -sums / np.maximum(counts, 1)
        errs = sigma / np.sqrt(np.maximum(counts, 1))
        with_data = counts >= 0.5 * expected
        m["n_transits"] = int(with_data.sum())
        if with_data.sum() == 0:
            with_data = counts > 0
        ses = depths[with_data] / errs[with_data]
        w = 1.0 / errs[with_data] ** 2
        mes = float(np.sum(depths[with_data] * w) / math.sqrt(float(w.sum()))) if w.size else math.nan
        m["mes"] = mes
        m["max_ses"] = float(ses.max()) if ses.size else math.nan
        m["max_ses_share"] = m["max_ses"] / mes if mes > 0 else math.nan
        if m["n_transits"] < MIN_TRANSITS:
            v.flags.append("FEW_TRANSITS")
            v.reasons.append(f"data in {m['n_transits']} transit(s) only (< {MIN_TRANSITS})")
        if (m["n_transits"] >= MAX_SES_MIN_TRANSITS and m["max_ses_share"] > MAX_SES_SHARE):
            v.flags.append("SINGLE_EVENT_DOMINANT")
            v.reasons.append(f"one event carries the signal: its SES is {m['max_ses_share']:.2f}"
                             f" of the MES (> {MAX_SES_SHARE}) over {m['n_transits']} transits")

        # odd and even transits
        odd = inside & (index % 2 == 1)
        even = inside & (index % 2 == 0)
        d_odd, e_odd, n_odd = _mean_depth(r[odd], sigma)
        d_even, e_even, n_even = _mean_depth(r[even], sigma)
        m["odd_depth"], m["even_depth"] = d_odd * 1e6, d_even * 1e6
        floor = DEPTH_SYSTEMATIC * max(depth_ppm, 0.0) * 1e-6
        m["odd_even_sigma"] = (abs(d_odd - d_even) / math.sqrt(e_odd ** 2 + e_even ** 2
                                                               + floor ** 2)
                               if n_odd and n_even else math.nan)
        if (n_odd == 0) != (n_even == 0) and m["n_transits"] >= 2:
            v.notes.append(f"the period may be {2 * period:.6g} d: every "
                           f"{'odd' if n_odd == 0 else 'even'} transit falls where there is "
                           f"no data")
        if m["odd_even_sigma"] >= ODD_EVEN_SIGMA:
            v.flags.append("ODD_EVEN")
            v.reasons.append(f"odd and even transits differ: {d_odd * 1e6:.0f} against "
                             f"{d_even * 1e6:.0f} ppm ({m['odd_even_sigma']:.1f} sigma >= "
                             f"{ODD_EVEN_SIGMA:g}): an eclipsing binary at twice the period")

        # secondary eclipse at phase 0.5
        half = (t - epoch) % period - 0.5 * period
        secondary = np.abs(half) < 0.5 * duration
        d_sec, e_sec, n_sec = _mean_depth(r[secondary], sigma)
        a_over_r = float(grid.semi_major_axis(period, rho))
        bound = depth_ppm * ALBEDO_MAX / a_over_r ** 2
        m["secondary_depth"] = d_sec * 1e6
        m["secondary_sigma"] = d_sec / e_sec if n_sec else math.nan
        m["max_occultation_depth"] = bound
        if m["secondary_sigma"] >= SECONDARY_SIGMA:
            if d_sec * 1e6 > bound:
                v.flags.append("SECONDARY")
                v.reasons.append(f"secondary eclipse at phase 0.5: {d_sec * 1e6:.0f} ppm "
                                 f"({m['secondary_sigma']:.1f} sigma), deeper than a planet's "
                                 f"occultation can be ({bound:.0f} ppm)")
            else:
                v.notes.append(f"secondary eclipse at phase 0.5 ({d_sec * 1e6:.0f} ppm, "
                               f"{m['secondary_sigma']:.1f} sigma) within a planet's "
                               f"occultation bound ({bound:.0f} ppm)")

        # harmonic or alias of a stronger candidate
        stronger = [c for c in by_strength if c is not cand and c.get("period")
                    and (c.get("snr") or 0) > (cand.get("snr") or 0)]
        alias = _alias(cand, stronger)
        m["alias_of"] = alias[0] if alias else None
        if alias:
            ratio = f"{alias[1]}x" if alias[1] > 0 else f"1/{-alias[1]}"
            v.flags.append("ALIAS")
            v.reasons.append(f"{ratio} the period of the stronger candidate {alias[0]} with "
                             f"coinciding transits: a harmonic or alias of it")

        # duration against the star's density
        k = math.sqrt(max(depth_ppm, 0.0) * 1e-6)
        expected_duration = float(grid.transit_duration(period, rho, 0.0, k))
        m["expected_duration"] = expected_duration
        m["duration_ratio"] = duration / expected_duration if expected_duration > 0 else math.nan
        if m["duration_ratio"] > DURATION_RATIO_MAX:
            v.flags.append("LONG_DURATION")
            text = (f"the transit lasts {m['duration_ratio']:.1f} times a central transit "
                    f"across a star of density {rho:g} solar")
            if density is None:
                v.notes.append(text + " (the Sun's density assumed; not judged)")
            else:
                v.reasons.append(text + f" (> {DURATION_RATIO_MAX:g})")
        v.verdict = FALSE_POSITIVE if v.reasons else PLANET
        out.append(v)
    return out
