"""What every transit search shares: settings, input preparation, the result record, the
periodogram product and the thin adapter steps of a search function.

A search function's ``science.py`` calls :func:`prepare` and :func:`settings_from`, runs its
algorithm and returns a :class:`SearchResult`; its ``main.py`` calls :func:`read_input`,
:func:`common_params` and :func:`task_result`. Units of every result field are in
:data:`UNITS` (periods and times in days, depths in ppm).
"""
from __future__ import annotations

import math
import numbers
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, ClassVar, Mapping

import numpy as np

from eas_runtime.task_api import InputError, ParameterError

from .model import LightCurve
from .qc import period_outcome, signal_metadata

#: Units of the result fields every search may report ('' for dimensionless).
UNITS: dict[str, str] = {
    "period": "d", "epoch": "d", "duration": "d", "depth": "ppm", "power": "", "snr": "",
    "sde": "", "transit_count": "", "target_period": "d", "outcome": "",
    "first_transit": "d", "last_transit": "d", "period_span": "",
    "integrated_transit_power": "", "pixels_in_transit": "", "mes": "",
    "n_samples": "", "n_periods": "", "detected": "",
    "binned_cadence_s": "s", "n_points": "",
}
#: The fewest good samples a search accepts.
MIN_GOOD_SAMPLES = 10
#: A candidate is a detection when its ``snr`` reaches this (the Kepler pipeline's 7.1 sigma
#: threshold on the multiple-event statistic). ``outcome`` is PASS only for a detection: the
#: prototype's rule (period within 3 %) alone passes a noise peak that happens to lie near the
#: target period.
DETECTION_SNR = 7.1


# ---------------------------------------------------------------------- settings
def settings_from(given: Mapping[str, Any] | None, defaults: Mapping[str, Any], *,
                  task: str) -> dict[str, Any]:
    """``defaults`` updated with ``given`` (``search_settings``); ``None`` values keep the default.

    Raises :class:`ParameterError` naming unknown keys and listing the allowed ones.
    """
    if given is None:
        given = {}
    if not isinstance(given, Mapping):
        raise ParameterError(f"search_settings of {task} must be an object (a mapping of "
                             f"setting names to values), got {given!r}")
    unknown = sorted(set(given) - set(defaults))
    if unknown:
        raise ParameterError(f"unknown search setting(s) {unknown} for {task}; "
                             f"allowed: {sorted(defaults)}")
    return {**defaults, **{k: v for k, v in given.items() if v is not None}}


def number(settings: Mapping[str, Any], key: str, *, minimum: float | None = None,
           positive: bool = False, integer: bool = False, optional: bool = False):
    """``settings[key]`` as a float (or an int), checked; :class:`ParameterError` names the
    setting and the bad value."""
    value: Any = settings.get(key)
    if value is None and optional:
        return None
    ok = isinstance(value, numbers.Real) and not isinstance(value, bool)
    if ok:
        value = float(value)
        ok = math.isfinite(value)
    if ok and integer:
        ok = value == int(value)
        value = int(value) if ok else value
    if ok and positive:
        ok = value > 0
    if ok and minimum is not None:
        ok = value >= minimum
    if not ok:
        kind = "an integer" if integer else "a number"
        bound = " > 0" if positive else (f" >= {minimum:g}" if minimum is not None else "")
        raise ParameterError(f"search setting {key!r} must be {kind}{bound}, "
                             f"got {settings.get(key)!r}")
    return value


def positive_days(value: Any, name: str) -> float | None:
    """A parameter that is a positive number of days, or None."""
    if value is None:
        return None
    try:
        days = float(value)
    except (TypeError, ValueError):
        days = math.nan
    if isinstance(value, bool) or not (math.isfinite(days) and days > 0):
        raise ParameterError(f"parameter {name!r} must be a positive number of days, got {value!r}")
    return days


# ---------------------------------------------------------------------- input
@dataclass(frozen=True)
class SearchInput:
    """The good samples of a light curve ready for a search.

    ``flux`` is divided by its median (so 1 out of transit); ``sigma`` is the robust scatter
    (1.4826 x median absolute deviation) of ``flux``; ``flux_err`` the normalised uncertainties
    when every good sample has a positive finite one, else ``None``.
    """

    time: np.ndarray
    flux: np.ndarray
    flux_err: np.ndarray | None
    sigma: float
    target_period: float | None
    signal: dict[str, Any]
    meta: dict[str, Any]

    @property
    def noiseless(self) -> bool:
        """No uncertainties and no scatter (a synthesis without noise): nothing to weigh by."""
        return self.flux_err is None and not self.sigma > 0

    @property
    def baseline(self) -> float:
        """Time from the first to the last good sample [days]."""
        return float(self.time[-1] - self.time[0])


def robust_sigma(values: np.ndarray) -> float:
    """1.4826 x median absolute deviation: the standard deviation of Gaussian noise."""
    values = np.asarray(values, dtype=np.float64)
    return float(1.4826 * np.median(np.abs(values - np.median(values))))


def prepare(lc: LightCurve, lc_duration: float | None = None, *,
            target_period: float | None = None, min_samples: int = MIN_GOOD_SAMPLES) -> SearchInput:
    """Truncate ``lc`` to its first ``lc_duration`` days, keep its good samples and normalise.

    The target period defaults to ``lc.meta['orbital_period']`` (the true period of a
    synthetic light curve). Raises :class:`InputError` for too few good samples or a flux
    whose median is not positive.
    """
    if target_period is None:
        target_period = lc.finite_meta_number("orbital_period")
    lc_duration = positive_days(lc_duration, "lc_duration")
    if lc_duration is not None:
        lc = lc.truncate(lc_duration)
    good = lc.good()
    if len(good) < min_samples:
        raise InputError(f"a transit search needs at least {min_samples} good samples "
                         f"(flag 0, finite flux), the light curve has {len(good)}")
    median = float(np.median(good.flux))
    if not median > 0:
        raise InputError(f"cannot normalise a light curve whose median flux is {median}")
    flux = good.flux / median
    err = None
    if good.flux_err is not None:
        err = good.flux_err / median
        if not np.all(np.isfinite(err) & (err > 0)):
            err = None
    return SearchInput(time=np.asarray(good.time), flux=flux, flux_err=err,
                       sigma=robust_sigma(flux), target_period=target_period,
                       signal=signal_metadata(lc.meta), meta=lc.meta)


def period_range(settings: Mapping[str, Any], baseline: float, *, min_transits: float = 2,
                 shortest_duration: float | None = None) -> tuple[float, float]:
    """(period_min, period_max) [days] from ``settings``; period_max defaults to
    ``baseline / min_transits``. ParameterError when the range is empty or shorter than a
    transit."""
    period_min = number(settings, "period_min", positive=True)
    period_max = number(settings, "period_max", positive=True, optional=True)
    if period_max is None:
        period_max = baseline / min_transits
    if not period_max > period_min:
        raise ParameterError(f"empty period range {period_min:g} .. {period_max:g} d "
                             f"(baseline {baseline:.6g} d): lower period_min or raise period_max")
    if shortest_duration is not None and shortest_duration >= period_min:
        raise ParameterError(f"the longest transit duration ({shortest_duration:g} d) must be "
                             f"shorter than period_min ({period_min:g} d)")
    return period_min, period_max


# ---------------------------------------------------------------------- statistics
def sde(power: np.ndarray) -> float:
    """Signal detection efficiency of a periodogram: (peak - mean) / standard deviation."""
    power = np.asarray(power, dtype=np.float64)
    power = power[np.isfinite(power)]
    if power.size < 2:
        return math.nan
    spread = float(np.std(power))
    return (float(power.max()) - float(power.mean())) / spread if spread > 0 else math.nan


def in_transit(time: np.ndarray, period: float, epoch: float, duration: float) -> np.ndarray:
    """Mask of the samples within half a duration of a mid-transit time."""
    offset = (time - epoch + 0.5 * period) % period - 0.5 * period
    return np.abs(offset) < 0.5 * duration


def transit_count(time: np.ndarray, period: float, epoch: float, duration: float) -> int:
    """How many distinct transits have at least one sample."""
    mask = in_transit(time, period, epoch, duration)
    return int(np.unique(np.rint((time[mask] - epoch) / period)).size)


def box_depth_snr(data: SearchInput, period: float, epoch: float,
                  duration: float) -> tuple[float, float]:
    """Depth [ppm] of a box (median out of transit minus mean in transit) and its S/N
    (depth over the scatter of a mean of the in-transit samples)."""
    mask = in_transit(data.time, period, epoch, duration)
    n_in = int(mask.sum())
    if n_in == 0 or n_in == mask.size:
        return math.nan, math.nan
    depth = float(np.median(data.flux[~mask]) - np.mean(data.flux[mask]))
    snr = depth * math.sqrt(n_in) / data.sigma if data.sigma > 0 else math.nan
    return depth * 1e6, snr


# ---------------------------------------------------------------------- the result
def _plain(value: Any) -> Any:
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    if isinstance(value, (numbers.Integral,)):
        return int(value)
    if isinstance(value, (numbers.Real,)):
        value = float(value)
        return value if math.isfinite(value) else None
    return value


@dataclass(frozen=True)
class SearchResult:
    """The best candidate of a search, its QC outcome and the periodogram.

    Units in :data:`UNITS`: ``period``, ``epoch`` (a mid-transit time, in the light curve's
    time system) and ``duration`` in days, ``depth`` in ppm; ``power`` is the periodogram's
    own statistic at the peak; ``sde`` the peak's signal detection efficiency; ``snr`` the
    depth over its uncertainty. ``outcome`` is the prototype's QC (PASS when the period is
    within 3 % of ``target_period``) for a detection (``snr`` >= :data:`DETECTION_SNR`, also
    reported as ``detected``), FAIL otherwise, UNDEFINED without a target. ``extra`` holds
    fields of one search (QATS's ``first_transit``...) and copies of the input's signal
    metadata. ``periodogram`` maps
    column names to arrays (``period`` [d] and ``power`` at least).
    """

    UNITS: ClassVar[dict[str, str]] = UNITS

    period: float | None
    epoch: float | None
    duration: float | None
    depth: float | None
    power: float | None
    snr: float | None
    sde: float | None
    transit_count: int
    target_period: float | None
    outcome: str
    extra: Mapping[str, Any] = field(default_factory=dict, repr=False, compare=False)
    periodogram: Mapping[str, np.ndarray] = field(default_factory=dict, repr=False,
                                                  compare=False)

    @classmethod
    def build(cls, data: SearchInput, *, period, epoch, duration, depth, power, snr,
              sde_value, count, periodogram: Mapping[str, np.ndarray],
              extra: Mapping[str, Any] | None = None) -> SearchResult:
        """A result for ``data``: the target period, QC outcome and signal metadata added."""
        # +inf counts (a dip in a noiseless light curve is certain; recorded as null), NaN does not
        detected = bool(snr is not None and not math.isnan(snr) and snr >= DETECTION_SNR)
        outcome = period_outcome(data.target_period, period)
        if outcome == "PASS" and not detected:
            outcome = "FAIL"
        return cls(period=period, epoch=epoch, duration=duration, depth=depth, power=power,
                   snr=snr, sde=sde_value, transit_count=int(count),
                   target_period=data.target_period, outcome=outcome,
                   extra={"detected": detected, **(extra or {}), **data.signal},
                   periodogram={k: np.asarray(v) for k, v in periodogram.items()})

    @property
    def periodogram_period(self) -> np.ndarray:
        return self.periodogram["period"]

    @property
    def periodogram_power(self) -> np.ndarray:
        return self.periodogram["power"]

    def to_dict(self) -> dict[str, Any]:
        """Scalar fields and ``extra`` as JSON-ready values (non-finite numbers become None)."""
        out = {f.name: _plain(getattr(self, f.name)) for f in fields(self)
               if f.name not in ("extra", "periodogram")}
        out.update({k: _plain(v) for k, v in self.extra.items()})
        return out

    @property
    def units(self) -> dict[str, str]:
        """Units of the fields of :meth:`to_dict` that have one."""
        return {k: UNITS[k] for k in self.to_dict() if UNITS.get(k)}


def write_periodogram(result: SearchResult, path: str | Path, *, task_type: str) -> Path:
    """Write the periodogram as a FITS binary table (extension ``PERIODOGRAM``); the header
    records the task type and the best period. Written atomically."""
    from astropy.io import fits

    from ._common import write_atomically

    columns = []
    for name, values in result.periodogram.items():
        values = np.asarray(values)
        fmt = "K" if values.dtype.kind in "iu" else "D"
        columns.append(fits.Column(name=name.upper(), format=fmt,
                                   unit=UNITS.get(name) or None, array=values))
    hdu = fits.BinTableHDU.from_columns(columns, name="PERIODOGRAM")
    hdu.header["TASKTYPE"] = (task_type, "search")
    if result.period is not None and math.isfinite(result.period):
        hdu.header["BESTPER"] = (float(result.period), "[d] best period")
    import io
    buffer = io.BytesIO()
    fits.HDUList([fits.PrimaryHDU(), hdu]).writeto(buffer)
    path = Path(path)
    write_atomically(path, buffer.getvalue())
    return path


def read_periodogram(path: str | Path) -> dict[str, np.ndarray]:
    """The columns of a periodogram product, lower-case names."""
    from astropy.io import fits

    with fits.open(path) as hdul:
        data = hdul["PERIODOGRAM"].data
        return {name.lower(): np.array(data[name]) for name in data.columns.names}


# ---------------------------------------------------------------------- adapter steps
def read_input(ctx) -> LightCurve:
    """The input ``lightcurve`` of a search task, with the product's recorded metadata added
    where the file lacks it (scalar values only)."""
    from .formats import read_lightcurve

    lc = read_lightcurve(ctx.input("lightcurve"))
    recorded = ctx.input_metadata.get("lightcurve", {}) or {}
    extra = {k: v for k, v in recorded.items() if k not in lc.meta and isinstance(k, str)
             and k and (v is None or isinstance(v, (str, bool, int, float)))}
    return lc.with_meta(**extra) if extra else lc


def common_params(ctx) -> dict[str, Any]:
    """``lc_duration`` [days] and ``search_settings`` of a search task."""
    settings = ctx.params.get("search_settings")
    if settings is not None and not isinstance(settings, Mapping):
        raise ParameterError(f"parameter 'search_settings' of task {ctx.task_type!r} must be an "
                             f"object, got {settings!r}")
    return {"lc_duration": positive_days(ctx.params.get("lc_duration"), "lc_duration"),
            "search_settings": settings}


def task_result(ctx, result: SearchResult, outputs: Mapping[str, Path] | None = None):
    """The TaskResult of a search: metadata and units, and the periodogram product (output
    ``periodogram``, semantic type ``periodogram``) plus any other ``outputs``."""
    from eas_runtime.task_api import TaskResult

    periodogram = write_periodogram(result, ctx.output_path("periodogram", ".fits"),
                                    task_type=ctx.task_type)
    files = {"periodogram": periodogram, **(outputs or {})}
    return TaskResult(outputs=files, metadata=result.to_dict(), units=result.units,
                      output_types={name: name for name in files})
