"""Every transit-like signal of a star: single events first, then periodic signals in turn.

:func:`find_planets` runs, on a normalised, detrended light curve:

1. **Masks from known ephemerides** (``mask_ephemerides``): the transits of planets already
   known are removed before anything is searched.
2. **Single events** (:func:`single_events`): a box of each trial duration slides over the light
   curve binned to a quarter of that duration; each position's depth times the square root of
   its sample count, divided by the robust scatter of that statistic over all positions, is the
   single-event statistic (SES, in sigma; dividing by the measured scatter of box means, not the
   white-noise expectation, makes it honest for correlated noise). The strongest events are taken
   one at a time, with durations no shorter than the briefest transit (grazing, of a small
   planet) at half the baseline: a lone transit has a long period. An event with data on both
   sides, at least ``single_snr`` sigma, carried by most of its samples (not one outlier), and no
   look-alike elsewhere (another event within a factor 2 in depth and duration of at least half
   its SES) is a single-transit candidate and is masked. Two such events alike in depth and
   duration (:func:`pair_events`) are one planet's only transits: a periodic candidate whose
   period is their separation (or a fraction of it whose other transits fall in gaps). An event
   with two look-alikes or more is left to the periodic search, which is made for it.
3. **Periodic signals** (:func:`eas_runtime.bls.search.search_lightcurve`, the BLS of Kovacs,
   Zucker & Mazeh 2002 on the period grid of Ofir 2014): the best peak's depth S/N is divided by
   the red-noise factor ``beta`` of Pont, Zucker & Queloz (2006) (the scatter of out-of-transit
   means over the transit's duration against the white-noise expectation, at least 1). A peak at
   ``snr`` >= ``snr_min`` (7.1, the Kepler pipeline's threshold) with transits on at least
   ``min_transits`` epochs is a candidate; its transits are masked over ``mask_factor`` times
   their duration and the search runs again, until a peak falls below the threshold or
   ``max_planets`` are found. A candidate whose period is one found already (the mask left some
   of it) ends the search.

Each candidate is a :class:`Candidate`; periodograms of each round are kept.

References
----------
Kovacs, Zucker & Mazeh (2002), A&A 391, 369 (BLS); Ofir (2014), A&A 561, A138 (period grid);
Jenkins et al. (2010), SPIE 7740 (Kepler TPS: SES, MES, the 7.1 sigma threshold and iterative
search with masking); Pont, Zucker & Queloz (2006), MNRAS 373, 231 (time-correlated noise).
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any, Iterable, Mapping

import numpy as np

from eas_runtime.bls import grid
from eas_runtime.bls.search import search_lightcurve
from eas_runtime.lightcurve.search import robust_sigma

#: Default S/N threshold of a candidate (the Kepler pipeline's multiple-event threshold).
SNR_MIN = 7.1
#: Default SES threshold of a single-transit candidate: above the periodic threshold because a
#: single event has no repetition to confirm it, and real light curves hold single outliers.
SINGLE_SNR_MIN = 10.0
#: Default trial durations of single events [d]: 1 h to 1 d in steps of 1.5.
SINGLE_DURATIONS = tuple(float(d) for d in (1 / 24) * 1.5 ** np.arange(8))
#: Default masked window around a transit, in transit durations (a margin of half a duration
#: on each side).
MASK_FACTOR = 2.0
MAX_PLANETS = 5
#: Periods within this relative difference are the same signal.
SAME_PERIOD = 0.005


@dataclass
class Candidate:
    """One transit-like signal. ``kind`` is ``periodic`` or ``single`` (then ``period`` is None
    and ``epoch`` the event's middle). ``depth``, ``depth_err`` [ppm]; ``snr`` the detection
    statistic after the red-noise correction (periodic) or the SES (single); ``snr_white`` the
    white-noise S/N; ``red_noise`` the factor between them; ``round`` the search round that
    found it (0 for single events)."""

    number: int
    kind: str
    period: float | None
    epoch: float
    duration: float
    depth: float
    depth_err: float | None
    snr: float
    snr_white: float | None
    red_noise: float | None
    sde: float | None
    power: float | None
    transit_count: int
    round: int
    found_by: str = ""

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        for key, value in out.items():
            if isinstance(value, float) and not math.isfinite(value):
                out[key] = None
        return out


#: Units of the fields of a :class:`Candidate`.
CANDIDATE_UNITS = {"period": "d", "epoch": "d", "duration": "d", "depth": "ppm",
                   "depth_err": "ppm"}


@dataclass
class PlanetSearch:
    """What :func:`find_planets` found, with its settings and the periodogram of each round."""

    candidates: list[Candidate]
    periodograms: list[dict[str, np.ndarray]] = field(repr=False)
    rounds: int
    stopped_because: str
    n_samples: int
    n_masked: int
    sigma: float

    @property
    def periodic(self) -> list[Candidate]:
        return [c for c in self.candidates if c.kind == "periodic"]

    @property
    def singles(self) -> list[Candidate]:
        return [c for c in self.candidates if c.kind == "single"]


# ---------------------------------------------------------------------- masks
def offset_from_transit(time: np.ndarray, period: float | None, epoch: float) -> np.ndarray:
    """Time [d] from the nearest mid-transit (from the one event when ``period`` is None)."""
    if period is None:
        return time - epoch
    return (time - epoch + 0.5 * period) % period - 0.5 * period


def transit_mask(time: np.ndarray, period: float | None, epoch: float, duration: float,
                 factor: float = 1.0) -> np.ndarray:
    """Samples within ``factor * duration / 2`` of a mid-transit time (of one event when
    ``period`` is None)."""
    return np.abs(offset_from_transit(time, period, epoch)) < 0.5 * factor * duration


def ephemeris_mask(time: np.ndarray, ephemerides: Iterable[Mapping[str, Any]],
                   factor: float = MASK_FACTOR) -> np.ndarray:
    """Samples in the (widened) transits of ``ephemerides``: mappings with ``epoch`` and
    ``duration`` [d] and ``period`` [d] (absent or None for a single event)."""
    mask = np.zeros(time.size, dtype=bool)
    for eph in ephemerides:
        mask |= transit_mask(time, eph.get("period"), float(eph["epoch"]),
                             float(eph["duration"]), factor)
    return mask


# ---------------------------------------------------------------------- statistics
def red_noise_factor(time: np.ndarray, resid: np.ndarray, duration: float, sigma: float,
                     exclude: np.ndarray | None = None) -> float:
    """Pont et al. (2006) beta at the timescale ``duration``: the robust scatter of the means of
    ``resid`` in bins of that width, over the white-noise expectation ``sigma / sqrt(n)``; at
    least 1, and 1 when there are too few bins to tell."""
    if exclude is not None:
        time, resid = time[~exclude], resid[~exclude]
    if time.size < 10 or not sigma > 0 or not duration > 0:
        return 1.0
    idx = np.floor((time - time[0]) / duration).astype(np.int64)
    counts = np.bincount(idx)
    sums = np.bincount(idx, weights=resid)
    full = counts >= max(2, 0.5 * float(np.median(counts[counts > 0])))
    if full.sum() < 10:
        return 1.0
    means = sums[full] / counts[full]
    expected = sigma / math.sqrt(float(np.median(counts[full])))
    return max(1.0, robust_sigma(means) / expected)


# ---------------------------------------------------------------------- single events
@dataclass(frozen=True)
class Event:
    """A box-shaped dip: middle ``time`` and ``duration`` [d], ``depth`` [relative flux],
    ``ses`` [sigma], ``n_in`` samples."""

    time: float
    duration: float
    depth: float
    ses: float
    n_in: int


def _ses_series(time: np.ndarray, resid: np.ndarray, duration: float,
                bins_per_box: int = 4) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(box middles, depth, ses, n_in) of a box of ``duration`` slid in steps of
    ``duration / bins_per_box``."""
    width = duration / bins_per_box
    idx = np.floor((time - time[0]) / width).astype(np.int64)
    counts = np.bincount(idx).astype(np.float64)
    sums = np.bincount(idx, weights=resid)
    cum_n = np.concatenate(([0.0], np.cumsum(counts)))
    cum_s = np.concatenate(([0.0], np.cumsum(sums)))
    if counts.size < bins_per_box:
        empty = np.empty(0)
        return empty, empty, empty, empty
    n_in = cum_n[bins_per_box:] - cum_n[:-bins_per_box]
    s_in = cum_s[bins_per_box:] - cum_s[:-bins_per_box]
    middles = time[0] + (np.arange(n_in.size) + 0.5 * bins_per_box) * width
    typical = float(np.median(n_in[n_in > 0]))
    ok = n_in >= max(3.0, 0.5 * typical)
    depth = np.full(n_in.size, np.nan)
    depth[ok] = -s_in[ok] / n_in[ok]
    z = np.where(ok, depth * np.sqrt(np.where(ok, n_in, 1.0)), np.nan)
    scale = robust_sigma(z[ok]) if ok.any() else math.nan
    ses = z / scale if scale > 0 else np.full(z.size, np.nan)
    return middles, depth, ses, n_in


def _covered_both_sides(time: np.ndarray, event: Event) -> bool:
    """Data before and after the event, within one duration of its edges."""
    lo, hi = event.time - 0.5 * event.duration, event.time + 0.5 * event.duration
    before = np.searchsorted(time, lo) - np.searchsorted(time, lo - event.duration)
    after = np.searchsorted(time, hi + event.duration) - np.searchsorted(time, hi)
    return bool(before >= 2 and after >= 2)


def _carried_by_many(time: np.ndarray, resid: np.ndarray, event: Event) -> bool:
    """The dip is in most of the box's samples, not in one outlier (a cosmic ray, a thruster
    firing): the median depth in the box is at least half the mean depth."""
    lo = np.searchsorted(time, event.time - 0.5 * event.duration)
    hi = np.searchsorted(time, event.time + 0.5 * event.duration)
    return bool(hi > lo and -float(np.median(resid[lo:hi])) >= 0.5 * event.depth)


def single_events(time: np.ndarray, resid: np.ndarray,
                  durations: Iterable[float] = SINGLE_DURATIONS, *,
                  threshold: float = SINGLE_SNR_MIN, max_events: int = 200,
                  min_duration: float = 0.0) -> tuple[list[Event], list[Event]]:
    """The single-transit events of ``resid`` (flux - 1), and the events that repeat.

    Events are taken in decreasing SES down to half of ``threshold``, each excluding a window of
    its own duration (and the trial one) around it. Returns (singles, repeating): the singles
    reach ``threshold``, have data on both sides and at most one look-alike among the listed
    events (two transits of one planet: :func:`pair_events`); their boxes, refined
    (:func:`refine_event`), last at least ``min_duration`` [d].
    """
    time = np.asarray(time, dtype=np.float64)
    resid = np.asarray(resid, dtype=np.float64)
    series = []
    baseline = float(time[-1] - time[0]) if time.size else 0.0
    cadence = float(np.median(np.diff(time))) if time.size > 1 else 0.0
    for duration in durations:
        # a box of at least 4 cadences: its quarter-box bins are never more than the samples
        if not (max(0.0, 4 * cadence) <= duration < 0.5 * baseline):
            continue
        middles, depth, ses, n_in = _ses_series(time, resid, float(duration))
        if middles.size:
            series.append((float(duration), middles, depth, np.nan_to_num(ses, nan=-np.inf),
                           n_in))
    listed: list[Event] = []
    floor = 0.5 * threshold
    while series and len(listed) < max_events:
        peaks = [(float(s[3].max()), i) for i, s in enumerate(series)]
        best, which = max(peaks)
        if not best >= floor:
            break
        duration, middles, depth, ses, n_in = series[which]
        j = int(np.argmax(ses))
        event = Event(time=float(middles[j]), duration=duration, depth=float(depth[j]),
                      ses=best, n_in=int(n_in[j]))
        listed.append(event)
        # No later box may overlap this event, nor its wings (a box half on an ingress):
        # exclude centres closer than the sum of the two widths.
        for d, m, _, s, _ in series:
            s[np.abs(m - event.time) < d + duration] = -np.inf
    singles, repeating = [], []
    # The strong events' boxes refined (the trial grid's box can be twice the dip's length,
    # which would fail the outlier test and the look-alike comparison).
    listed = [refine_event(time, resid, e) if e.ses >= threshold else e for e in listed]
    for event in listed:
        if event.ses < threshold:
            break
        alike = [o for o in listed if o is not event and o.ses >= 0.5 * event.ses
                 and 0.5 <= o.depth / event.depth <= 2.0
                 and 0.5 <= o.duration / event.duration <= 2.0]
        # One look-alike: the two may be the only transits of one planet (pair_events decides);
        # more: a periodic signal.
        if len(alike) > 1:
            repeating.append(event)
        elif (event.duration >= min_duration and _covered_both_sides(time, event)
              and _carried_by_many(time, resid, event)):
            singles.append(event)
    return singles, repeating


def refine_event(time: np.ndarray, resid: np.ndarray, event: Event) -> Event:
    """``event`` with its middle, duration and depth refined: the box (durations 0.4-1.6 times
    the event's, steps of 10 %; middles within half a duration, steps of a twentieth) of the
    largest ``depth * sqrt(n)``. Its SES is kept."""
    best = event
    best_stat = -math.inf
    for factor in 1.1 ** np.arange(-9, 6):
        duration = event.duration * float(factor)
        for shift in np.linspace(-0.5, 0.5, 21) * event.duration:
            middle = event.time + float(shift)
            lo = np.searchsorted(time, middle - 0.5 * duration)
            hi = np.searchsorted(time, middle + 0.5 * duration)
            n = hi - lo
            if n < 3:
                continue
            depth = -float(np.mean(resid[lo:hi]))
            stat = depth * math.sqrt(n)
            if stat > best_stat:
                best_stat = stat
                best = Event(time=middle, duration=duration, depth=depth, ses=event.ses,
                             n_in=int(n))
    return best


def _contradicts(time: np.ndarray, resid: np.ndarray, middle: float, duration: float,
                 expected: float, depth: float, sigma: float) -> bool:
    """Whether the data at ``middle`` rule out a transit of ``depth`` and ``duration`` there:
    at least half the samples such a transit would hold, and a mean depth below half of it and
    3 sigma below it (a gap, or a shallower dip, rules nothing out)."""
    lo = np.searchsorted(time, middle - 0.5 * duration)
    hi = np.searchsorted(time, middle + 0.5 * duration)
    n = hi - lo
    if n < max(1.0, 0.5 * expected):
        return False
    measured = -float(np.mean(resid[lo:hi]))
    return measured < 0.5 * depth and depth - measured > 3 * sigma / math.sqrt(n)


def pair_events(time: np.ndarray, resid: np.ndarray, singles: list[Event], period_min: float,
                sigma: float) -> tuple[list[tuple[Event, Event, float]], list[Event]]:
    """Two single events alike in depth and duration (within a factor 3 and 4: a shallow event
    measured with a longer box looks shallower) are two transits of one planet. Its period is
    their separation divided by the largest ``n`` (period at least ``period_min``) for which no
    other predicted transit is ruled out by the data (:func:`_contradicts`; ``sigma`` the
    scatter of one sample). Returns (pairs with their period, events left single); each event
    pairs at most once, the strongest first."""
    cadence = float(np.median(np.diff(time))) if time.size > 1 else math.nan
    left = sorted(singles, key=lambda e: -e.ses)
    pairs = []
    while len(left) >= 2:
        first = left[0]
        for other in left[1:]:
            if not (1 / 3 <= other.depth / first.depth <= 3
                    and 0.25 <= other.duration / first.duration <= 4):
                continue
            a, b = sorted((first, other), key=lambda e: e.time)
            separation = b.time - a.time
            duration = min(a.duration, b.duration)
            depth = 0.5 * (a.depth + b.depth)
            expected = duration / cadence
            for n in range(max(1, int(separation // period_min)), 0, -1):
                period = separation / n
                ks = np.arange(math.ceil((time[0] - a.time) / period),
                               math.floor((time[-1] - a.time) / period) + 1)
                ks = ks[(ks != 0) & (ks != n)]
                if not any(_contradicts(time, resid, a.time + k * period, duration, expected,
                                        depth, sigma) for k in ks):
                    pairs.append((a, b, period))
                    break
            else:
                continue
            left = [e for e in left if e is not first and e is not other]
            break
        else:
            left = left[1:]
            continue
    paired = {id(e) for pair in pairs for e in pair[:2]}
    return pairs, [e for e in singles if id(e) not in paired]


def refine_peak(time: np.ndarray, flux: np.ndarray, dy: np.ndarray, found, *,
                oversampling: float = 3.0, threads: int | None = None):
    """The BLS peak ``found`` on a grid 20 times finer than Ofir's around it: periods within two
    of its steps (a phase drift of ``duration / oversampling`` over the baseline) and durations
    0.7-1.4 times the box's, on the unbinned samples. The peak of a coarse grid is off by up to
    half a step (0.05 % of the period for a hot Jupiter in one TESS sector), which the
    ephemeris of a catalogue should not carry. Returns ``found`` with the refined period,
    epoch, duration, depth, depth_err, snr and power (its periodogram unchanged)."""
    from dataclasses import replace

    from eas_runtime.bls.methods import bls

    baseline = float(time[-1] - time[0])
    step = found.period * found.duration / (oversampling * baseline)
    periods = found.period + step * np.linspace(-2.0, 2.0, 81)
    periods = periods[periods > found.duration * 2]
    durations = found.duration * 1.05 ** np.arange(-7, 8)
    durations = durations[durations < 0.5 * periods.min()]
    if periods.size == 0 or durations.size == 0:
        return found
    try:
        out = bls(time, flux, dy, periods, durations, objective="likelihood", oversample=10,
                  method="fast", threads=threads)
    except ValueError:
        return found
    power = np.asarray(out.power, dtype=np.float64)
    if not np.isfinite(power).any():
        return found
    best = int(np.nanargmax(power))
    if not power[best] >= found.power:
        return found
    return replace(found, period=float(periods[best]), epoch=float(out.transit_time[best]),
                   duration=float(out.duration[best]), depth=float(out.depth[best]),
                   depth_err=float(out.depth_err[best]), snr=float(out.depth_snr[best]),
                   power=float(power[best]))


# ---------------------------------------------------------------------- the search
def find_planets(time, flux, flux_err=None, *, snr_min: float = SNR_MIN,
                 max_planets: int = MAX_PLANETS, single_snr_min: float | None = SINGLE_SNR_MIN,
                 single_durations: Iterable[float] = SINGLE_DURATIONS,
                 mask_factor: float = MASK_FACTOR,
                 mask_ephemerides: Iterable[Mapping[str, Any]] = (),
                 period_min: float | None = None, period_max: float | None = None,
                 density: float = 1.0, min_transits: int = 2, oversampling: float = 3.0,
                 threads: int | None = None) -> PlanetSearch:
    """Single events, then periodic signals one after another (see the module documentation).

    ``flux`` is normalised (1 out of transit) and detrended; ``flux_err`` its 1-sigma
    uncertainties or None (the robust scatter is used). ``single_snr_min=None`` skips the
    single-event search. Raises ValueError naming an unusable argument.
    """
    time = np.asarray(time, dtype=np.float64)
    flux = np.asarray(flux, dtype=np.float64)
    if time.size != flux.size or time.size < 10:
        raise ValueError(f"a planet search needs at least 10 samples with one flux each, got "
                         f"{time.size} times and {flux.size} fluxes")
    order = np.argsort(time, kind="stable")
    time, flux = time[order], flux[order]
    err = None
    if flux_err is not None:
        err = np.asarray(flux_err, dtype=np.float64)[order]
        if not np.all(np.isfinite(err) & (err > 0)):
            err = None
    if not (isinstance(max_planets, int) and max_planets >= 0):
        raise ValueError(f"max_planets must be an integer >= 0, got {max_planets!r}")
    for name, value in (("snr_min", snr_min), ("mask_factor", mask_factor)):
        if not (isinstance(value, (int, float)) and math.isfinite(value) and value > 0):
            raise ValueError(f"{name} must be a positive number, got {value!r}")
    resid = flux - 1.0
    sigma = robust_sigma(resid)
    # A noiseless light curve has no scatter: 1 ppm keeps every statistic finite.
    white = max(sigma, 1e-6)
    dy = err if err is not None else np.full(time.size, white)
    if err is not None and float(np.median(err)) < white:
        # Stated uncertainties below the measured scatter (Kepler's PDCSAP errors after
        # detrending) would inflate every S/N: scale them up to it.
        dy = err * (white / float(np.median(err)))

    masked = ephemeris_mask(time, list(mask_ephemerides), mask_factor)
    candidates: list[Candidate] = []
    if single_snr_min is not None:
        keep = ~masked
        # A lone transit belongs to a period that shows at most one more in this light curve:
        # no shorter than the briefest transit (grazing, small planet) at baseline / 2.
        baseline = float(time[-1] - time[0])
        briefest = float(grid.duration_limits([0.5 * baseline], density)[0][0]) if baseline > 0 \
            else 0.0
        durations = [d for d in single_durations if d >= briefest]
        singles, _ = single_events(time[keep], resid[keep], durations,
                                   threshold=single_snr_min, min_duration=briefest)
        pairs, singles = pair_events(time[keep], resid[keep], singles,
                                     period_min if period_min is not None
                                     else grid.roche_period(density), white)
        for first, second, period in pairs:
            # Each event's middle and duration from a finer box search; the period from their
            # refined separation.
            first, second = (refine_event(time[keep], resid[keep], e) for e in (first, second))
            period = (second.time - first.time) / round((second.time - first.time) / period)
            weight = first.ses + second.ses
            candidates.append(Candidate(
                number=0, kind="periodic", period=period, epoch=first.time,
                duration=math.sqrt(first.duration * second.duration),
                depth=(first.depth * first.ses + second.depth * second.ses) / weight * 1e6,
                depth_err=None, snr=math.hypot(first.ses, second.ses), snr_white=None,
                red_noise=None, sde=None, power=None, transit_count=2, round=0,
                found_by=f"two single events at {first.time:.5f} and {second.time:.5f} d"))
            for event in (first, second):
                masked |= transit_mask(time, None, event.time, event.duration, mask_factor)
        for event in singles:
            candidates.append(Candidate(
                number=0, kind="single", period=None, epoch=event.time,
                duration=event.duration, depth=event.depth * 1e6,
                depth_err=event.depth / event.ses * 1e6 if event.ses > 0 else None,
                snr=event.ses, snr_white=event.depth * math.sqrt(event.n_in) / white,
                red_noise=None, sde=None, power=None, transit_count=1, round=0,
                found_by="single-event search"))
            masked |= transit_mask(time, None, event.time, event.duration, mask_factor)

    periodograms: list[dict[str, np.ndarray]] = []
    rounds, stopped = 0, f"max_planets ({max_planets}) reached"
    while len([c for c in candidates if c.kind == "periodic"]) < max_planets:
        keep = ~masked
        t, y = time[keep], flux[keep]
        if t.size < 10 or not t[-1] - t[0] > 0:
            stopped = "too few unmasked samples left"
            break
        baseline = float(t[-1] - t[0])
        p_max = period_max if period_max is not None else baseline / min_transits
        p_min = period_min if period_min is not None else grid.roche_period(density)
        if not p_max > p_min:
            stopped = (f"the period range {p_min:.4g}..{p_max:.4g} d is empty for the "
                       f"unmasked baseline of {baseline:.4g} d")
            break
        try:
            found = search_lightcurve(t, y, dy[keep], period_min=p_min, period_max=p_max,
                                      density=density, oversampling=oversampling,
                                      min_transits=min_transits, threads=threads)
        except ValueError as exc:
            stopped = f"the search of round {rounds + 1} found nothing to fit: {exc}"
            break
        rounds += 1
        periodograms.append(found.periodogram)
        found = refine_peak(t, y, dy[keep], found, oversampling=oversampling, threads=threads)
        in_transit = transit_mask(t, found.period, found.epoch, found.duration)
        beta = red_noise_factor(t, y - 1.0, found.duration, white,
                                exclude=transit_mask(t, found.period, found.epoch,
                                                     found.duration, mask_factor))
        snr_white = found.snr if math.isfinite(found.snr) else 0.0
        snr = snr_white / beta
        epochs = np.unique(np.rint((t[in_transit] - found.epoch) / found.period))
        if not (snr >= snr_min and found.depth > 0):
            stopped = (f"round {rounds}: best peak at {found.period:.6g} d has S/N {snr:.3g} "
                       f"< {snr_min:g}")
            break
        if epochs.size < min_transits:
            stopped = (f"round {rounds}: best peak at {found.period:.6g} d has data in "
                       f"{epochs.size} transit(s) < {min_transits}")
            break
        if any(c.period and abs(found.period / c.period - 1) < SAME_PERIOD for c in candidates):
            stopped = f"round {rounds}: the period {found.period:.6g} d was found already"
            break
        candidates.append(Candidate(
            number=0, kind="periodic", period=found.period, epoch=found.epoch,
            duration=found.duration, depth=found.depth * 1e6, depth_err=found.depth_err * 1e6,
            snr=snr, snr_white=snr_white, red_noise=beta, sde=found.sde, power=found.power,
            transit_count=int(epochs.size), round=rounds,
            found_by=f"periodic search, round {rounds}"))
        masked |= transit_mask(time, found.period, found.epoch, found.duration, mask_factor)
    # Number periodic candidates first (in the order found), then single events.
    ordered = [c for c in candidates if c.kind == "periodic"] + \
              [c for c in candidates if c.kind == "single"]
    for number, cand in enumerate(ordered, start=1):
        cand.number = number
    return PlanetSearch(candidates=ordered, periodograms=periodograms, rounds=rounds,
                        stopped_because=stopped, n_samples=int(time.size),
                        n_masked=int(masked.sum()), sigma=sigma)
