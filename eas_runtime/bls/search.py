"""The full transit search of a long light curve: fast at equal sensitivity.

:func:`search_lightcurve` runs, in order:

1. the trial periods of Ofir (2014) for the baseline and the star (:func:`.grid.ofir_periods`);
2. blocks of periods spanning a factor ``block_ratio`` at most; in each, the durations a star
   of that density allows (:func:`.grid.duration_limits`, shortest at the block's shortest
   period, longest at its longest, in ratios of ``duration_step``);
3. the samples binned (:mod:`.prebin`) to ``prebin_fraction`` of the block's shortest
   duration, each block from the finest binning, so that long periods, whose transits are
   longer, fold fewer points;
4. the BLS kernel (:func:`eas_runtime.bls.methods.bls`, astropy's ``fast`` algorithm, the
   log-likelihood objective) on each block, or with ``method="ffa"`` the fast-folding search of
   :mod:`.ffa` on the same bins (a finer period grid, reduced to the best trial per Ofir
   period);
5. the best peak of the periodogram: period, epoch, duration, depth, its signal-to-noise
   ``snr = depth / depth_err`` and the peak's signal detection efficiency ``sde``.

Times and durations in days; depths in the unit of the flux (relative flux for a normalised
light curve); densities, masses and radii of the star in solar units.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field, fields
from typing import Any

import numpy as np

from eas_runtime.bls import ffa, grid
from eas_runtime.bls.methods import bls
from eas_runtime.bls.prebin import Binned, check_series, prebin, rebin

METHODS = ("bls", "ffa")
#: Default fraction of a block's shortest duration the samples are binned to.
PREBIN_FRACTION = 1.0 / 3.0
#: Default phase bins per shortest duration of the BLS kernel (astropy's ``oversample``).
OVERSAMPLE = 5
#: Default ratio of consecutive trial durations.
DURATION_STEP = 1.1
#: Default largest ratio of the longest to the shortest period of a block.
BLOCK_RATIO = 1.5
PERIODOGRAM_COLUMNS = ("period", "power", "depth", "depth_err", "duration", "transit_time",
                       "depth_snr")


@dataclass(frozen=True)
class TransitSearch:
    """The best peak of a search and its periodogram.

    ``period``, ``epoch`` (a mid-transit time), ``duration`` [d]; ``depth`` and ``depth_err``
    [flux unit]; ``snr`` = depth / depth_err; ``power`` the log-likelihood gain of the box at
    the peak; ``sde`` = (peak - mean) / standard deviation of the power. ``periodogram`` maps
    :data:`PERIODOGRAM_COLUMNS` to one value per trial period (the Ofir grid). ``n_points``
    is the number of points folded at the shortest periods, ``bin_width`` [d] their bin width
    (0 without binning).
    """

    period: float
    epoch: float
    duration: float
    depth: float
    depth_err: float
    snr: float
    power: float
    sde: float
    method: str
    n_samples: int
    n_points: int
    bin_width: float
    n_blocks: int
    periodogram: dict[str, np.ndarray] = field(repr=False, compare=False)

    @property
    def periods(self) -> np.ndarray:
        return self.periodogram["period"]

    @property
    def powers(self) -> np.ndarray:
        return self.periodogram["power"]

    @property
    def n_periods(self) -> int:
        return int(self.periods.size)

    def to_dict(self) -> dict[str, Any]:
        """The scalar fields (numbers, method), JSON-ready."""
        out = {f.name: getattr(self, f.name) for f in fields(self) if f.name != "periodogram"}
        out["n_periods"] = self.n_periods
        return out


def _blocks(periods: np.ndarray, ratio: float) -> list[slice]:
    """Consecutive slices of ascending ``periods``, each spanning at most ``ratio``."""
    blocks, start = [], 0
    while start < periods.size:
        stop = int(np.searchsorted(periods, periods[start] * ratio, side="right"))
        blocks.append(slice(start, max(stop, start + 1)))
        start = blocks[-1].stop
    return blocks


def _check(name: str, value, *, minimum: float = 0.0, strict: bool = True) -> float:
    ok = isinstance(value, (int, float, np.number)) and not isinstance(value, bool) \
        and math.isfinite(value) and (value > minimum if strict else value >= minimum)
    if not ok:
        raise ValueError(f"{name} must be a number {'>' if strict else '>='} {minimum:g}, "
                         f"got {value!r}")
    return float(value)


def search_lightcurve(t, y, dy=None, *, period_min: float | None = None,
                      period_max: float | None = None, density: float | None = None,
                      mass: float | None = None, radius: float | None = None,
                      oversampling: float = grid.OVERSAMPLING,
                      prebin_fraction: float | None = PREBIN_FRACTION, method: str = "bls",
                      threads: int | None = None, oversample: int = OVERSAMPLE,
                      duration_step: float = DURATION_STEP,
                      radius_ratios: tuple[float, float] = grid.RADIUS_RATIOS,
                      impact_max: float = grid.IMPACT_MAX,
                      margin: float = grid.DURATION_MARGIN, min_transits: float = 2.0,
                      block_ratio: float = BLOCK_RATIO) -> TransitSearch:
    """Search ``(t [d], y, dy)`` for periodic transits (see the module documentation).

    Parameters
    ----------
    t, y, dy : arrays
        Times [d], fluxes and their 1-sigma uncertainties (a scalar, or None for the robust
        scatter of ``y``). Non-finite values are an error.
    period_min, period_max : float, optional
        Range of trial periods [d]; defaults: an orbit at three stellar radii (0.60 d for the
        Sun) and the baseline over ``min_transits``.
    density, mass, radius : float, optional
        The star [solar units]: its density, or its mass and radius; default the Sun.
    oversampling : float
        Ofir grid oversampling (trial phases per central transit duration of drift).
    prebin_fraction : float or None
        Bin width as a fraction of the shortest duration of each block; None: no binning.
    method : {"bls", "ffa"}
        The BLS kernel per period, or the fast-folding search.
    threads : int, optional
        Threads (default: all cores).
    oversample : int
        Phase bins per shortest duration of the BLS kernel.
    duration_step, radius_ratios, impact_max, margin, block_ratio
        Duration grid ratio; smallest and largest planet-to-star radius ratio, largest impact
        parameter and relative widening of the duration limits (:func:`.grid.duration_limits`);
        period span of a block.

    Raises
    ------
    ValueError
        Naming the argument that is unusable.
    """
    if method not in METHODS:
        raise ValueError(f"method must be one of {list(METHODS)}, got {method!r}")
    if threads is not None and (isinstance(threads, bool) or not isinstance(threads, int)
                                or threads < 1):
        raise ValueError(f"threads must be None or an integer >= 1, got {threads!r}")
    if isinstance(oversample, bool) or not isinstance(oversample, int) or oversample < 1:
        raise ValueError(f"oversample must be an integer >= 1, got {oversample!r}")
    oversampling = _check("oversampling", oversampling)
    duration_step = _check("duration_step", duration_step, minimum=1.0)
    block_ratio = _check("block_ratio", block_ratio, minimum=1.0)
    min_transits = _check("min_transits", min_transits)
    if prebin_fraction is not None:
        prebin_fraction = _check("prebin_fraction", prebin_fraction)
    for name, value in (("period_min", period_min), ("period_max", period_max)):
        if value is not None:
            _check(name, value)
    t, y, dy = check_series(t, y, dy)
    rho = grid.stellar_density(density, mass, radius)
    baseline = float(t.max() - t.min())
    if not baseline > 0:
        raise ValueError("the samples span no time: t is constant")
    periods = grid.ofir_periods(baseline, density=rho, period_min=period_min,
                                period_max=period_max, oversampling=oversampling,
                                min_transits=min_transits)
    shortest, longest = grid.duration_limits(periods, rho, radius_ratios=radius_ratios,
                                             impact_max=impact_max, margin=margin)
    blocks = _blocks(periods, block_ratio)

    finest: Binned | None = None
    if prebin_fraction is not None:
        finest = prebin(t, y, dy, prebin_fraction * float(shortest[0]))
    columns = {name: np.empty(periods.size) for name in PERIODOGRAM_COLUMNS}
    columns["period"][:] = periods
    n_points = 0
    for block in blocks:
        durations = grid.duration_grid(float(shortest[block.start]),
                                       float(np.max(longest[block])), duration_step)
        data = finest
        if finest is not None:
            data = rebin(finest, max(prebin_fraction * durations[0], finest.width))
        bt, by, bdy = (t, y, dy) if data is None else (data.t, data.y, data.dy)
        n_points = n_points or bt.size
        if method == "bls":
            out = bls(bt, by, bdy, periods[block], durations, objective="likelihood",
                      oversample=oversample, method="fast", threads=threads)
            values = {name: np.asarray(getattr(out, name), dtype=np.float64)
                      for name in PERIODOGRAM_COLUMNS[1:]}
        else:
            values = ffa.search_block(bt, by, bdy, periods[block], durations,
                                      width=None if data is None else data.width,
                                      origin=None if data is None else data.origin,
                                      threads=threads)
        for name, found in values.items():
            columns[name][block] = found
    return _best(columns, method=method, n_samples=t.size, n_points=n_points,
                 bin_width=0.0 if finest is None else finest.width, n_blocks=len(blocks))


def _best(columns: dict[str, np.ndarray], **info) -> TransitSearch:
    power = columns["power"]
    finite = np.isfinite(power)
    if not finite.any():
        raise ValueError("no trial period had a box with samples in and out of transit: "
                         "the light curve is too sparse for these periods and durations")
    best = int(np.argmax(np.where(finite, power, -np.inf)))
    values = power[finite]
    spread = float(np.std(values))
    sde = (float(power[best]) - float(np.mean(values))) / spread if spread > 0 else math.nan
    return TransitSearch(
        period=float(columns["period"][best]), epoch=float(columns["transit_time"][best]),
        duration=float(columns["duration"][best]), depth=float(columns["depth"][best]),
        depth_err=float(columns["depth_err"][best]), snr=float(columns["depth_snr"][best]),
        power=float(power[best]), sde=sde, periodogram=columns, **info)
