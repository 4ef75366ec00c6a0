"""The light-curve object: times [days], fluxes, optional uncertainties, flags and metadata.

A :class:`LightCurve` never changes after construction: its arrays are read-only copies and
every operation returns a new object, recording what it did in ``meta['provenance']``.
Samples are on an arbitrary raster of strictly increasing, finite times. A fixed-step light
curve is simply one whose raster passes :meth:`LightCurve.is_fixed_step`.

Flags are 0 for a good sample and 1 for a bad one; a sample whose flux is not finite is bad
whatever its flag says (see :meth:`LightCurve.good`).
"""
from __future__ import annotations

import math
import numbers
from typing import Any, Mapping

import numpy as np

from ._resample import bin_edges, overlap_average

#: Types a metadata value may have (they survive every file format of the pipeline).
MetaValue = str | int | float | bool | None

SECONDS_PER_DAY = 86400.0


def _meta_value(key: str, value: Any) -> MetaValue:
    if value is None or isinstance(value, (str, bool)):
        return value
    if isinstance(value, np.bool_):
        return bool(value)
    if isinstance(value, numbers.Integral):
        return int(value)
    if isinstance(value, numbers.Real):
        return float(value)
    raise ValueError(
        f"meta[{key!r}] = {value!r} has type {type(value).__name__}; "
        "allowed types are str, int, float, bool and None")


def _clean_meta(meta: Mapping[str, Any] | None) -> dict[str, MetaValue]:
    out: dict[str, MetaValue] = {}
    for key, value in (meta or {}).items():
        if not isinstance(key, str) or not key:
            raise ValueError(f"metadata keys must be non-empty strings, not {key!r}")
        out[key] = _meta_value(key, value)
    return out


def _frozen(array: np.ndarray) -> np.ndarray:
    array.setflags(write=False)
    return array


class LightCurve:
    """A light curve on an arbitrary raster of strictly increasing times.

    Parameters
    ----------
    time : array-like
        Sample times [days], 1-D, finite and strictly increasing.
    flux : array-like
        Fluxes (any unit; usually normalised to 1). Non-finite values are allowed and count
        as bad samples.
    flux_err : array-like or None
        One-sigma flux uncertainties, same unit as ``flux``; ``None`` when unknown.
    flags : array-like or None
        0 for good, 1 for bad; any non-zero value is stored as 1. ``None`` means all good.
    meta : mapping or None
        Metadata, ``str`` keys to ``str``/``int``/``float``/``bool``/``None`` values.
    """

    __slots__ = ("_time", "_flux", "_flux_err", "_flags", "_meta")

    def __init__(self, time, flux, flux_err=None, flags=None,
                 meta: Mapping[str, Any] | None = None):
        time = np.array(time, dtype=np.float64)
        flux = np.array(flux, dtype=np.float64)
        arrays = {"time": time, "flux": flux}
        if flux_err is not None:
            flux_err = np.array(flux_err, dtype=np.float64)
            arrays["flux_err"] = flux_err
        if flags is None:
            flags = np.zeros(time.shape, dtype=np.uint8)
        else:
            flags = np.asarray(flags)
            if flags.dtype.kind not in "biuf":
                raise ValueError(f"flags must be numeric, not {flags.dtype}")
            flags = (flags != 0).astype(np.uint8)
        arrays["flags"] = flags
        for name, array in arrays.items():
            if array.ndim != 1:
                raise ValueError(f"{name} must be 1-D, got shape {array.shape}")
            if array.shape != time.shape:
                raise ValueError(
                    f"{name} has {array.size} samples but time has {time.size}")
        bad_time = np.flatnonzero(~np.isfinite(time))
        if bad_time.size:
            raise ValueError(f"time[{bad_time[0]}] = {time[bad_time[0]]} is not finite")
        not_increasing = np.flatnonzero(np.diff(time) <= 0)
        if not_increasing.size:
            i = int(not_increasing[0])
            raise ValueError(
                f"times must be strictly increasing: time[{i + 1}] = {time[i + 1]!r} "
                f"follows time[{i}] = {time[i]!r}")
        self._time = _frozen(time)
        self._flux = _frozen(flux)
        self._flux_err = None if flux_err is None else _frozen(flux_err)
        self._flags = _frozen(flags)
        self._meta = _clean_meta(meta)

    # ------------------------------------------------------------------ accessors
    @property
    def time(self) -> np.ndarray:
        """Sample times [days] (read-only)."""
        return self._time

    @property
    def flux(self) -> np.ndarray:
        """Fluxes (read-only)."""
        return self._flux

    @property
    def flux_err(self) -> np.ndarray | None:
        """Flux uncertainties (read-only), or ``None`` when unknown."""
        return self._flux_err

    @property
    def flags(self) -> np.ndarray:
        """Flags, ``uint8``: 0 good, 1 bad (read-only)."""
        return self._flags

    @property
    def meta(self) -> dict[str, MetaValue]:
        """A copy of the metadata; change it with :meth:`with_meta`."""
        return dict(self._meta)

    def __len__(self) -> int:
        return int(self._time.size)

    def __repr__(self) -> str:
        span = f", {self.duration:.6g} d" if len(self) else ""
        return f"<LightCurve {len(self)} samples{span}, {len(self._meta)} metadata keys>"

    @property
    def duration(self) -> float:
        """Time between the first and the last sample [days]; 0 for fewer than 2 samples."""
        return float(self._time[-1] - self._time[0]) if len(self) > 1 else 0.0

    # ------------------------------------------------------------------ constructors
    def _replace(self, provenance: str | None = None, **changes) -> LightCurve:
        fields: dict[str, Any] = {"time": self._time, "flux": self._flux, "flux_err": self._flux_err,
                  "flags": self._flags, "meta": self._meta}
        fields.update(changes)
        meta = dict(fields.pop("meta"))
        if provenance:
            previous = meta.get("provenance")
            meta["provenance"] = f"{previous}; {provenance}" if previous else provenance
        return LightCurve(meta=meta, **fields)

    def with_flux(self, flux, flux_err=None, flags=None, *,
                  provenance: str | None = None) -> LightCurve:
        """A copy on the same raster with new fluxes, uncertainties (``None``: unknown) and
        flags (``None``: keep these), recording ``provenance``."""
        return self._replace(provenance, flux=flux, flux_err=flux_err,
                             flags=self._flags if flags is None else flags)

    def with_meta(self, **kv: Any) -> LightCurve:
        """Return a copy whose metadata is updated with ``kv``."""
        return self._replace(meta={**self._meta, **kv})

    def select(self, mask: np.ndarray, provenance: str | None = None) -> LightCurve:
        """Return the samples where the boolean ``mask`` is true."""
        mask = np.asarray(mask, dtype=bool)
        return self._replace(
            provenance, time=self._time[mask], flux=self._flux[mask],
            flux_err=None if self._flux_err is None else self._flux_err[mask],
            flags=self._flags[mask])

    def good_mask(self) -> np.ndarray:
        """Boolean mask of the samples with flag 0 and a finite flux."""
        return (self._flags == 0) & np.isfinite(self._flux)

    def good(self) -> LightCurve:
        """Only the samples with flag 0 and a finite flux."""
        return self.select(self.good_mask())

    def truncate(self, days: float) -> LightCurve:
        """Keep the samples with ``time < time[0] + days`` (the first ``days`` days)."""
        if not days > 0:
            raise ValueError(f"truncate needs a positive number of days, got {days!r}")
        if not len(self):
            return self
        keep = self._time < self._time[0] + float(days)
        return self.select(keep, provenance=f"truncate({float(days):g} d)")

    # ------------------------------------------------------------------ sampling
    def estimate_sampling_interval(self) -> float:
        """The step between samples [days], robust to gaps: the median positive difference.

        A gap makes a single large difference, so the median is unaffected unless gaps
        outnumber regular steps.
        """
        if len(self) < 2:
            raise ValueError("a sampling interval needs at least 2 samples")
        return float(np.median(np.diff(self._time)))

    def is_fixed_step(self, tol_days: float = 1e-4) -> bool:
        """True when every step equals the sampling interval within ``tol_days``.

        A gap (a step of two intervals or more) or jitter beyond the tolerance makes it false.
        """
        if len(self) < 2:
            return True
        step = self.estimate_sampling_interval()
        return bool(np.all(np.abs(np.diff(self._time) - step) <= tol_days))

    def to_fixed_step(self, step_days: float | None = None) -> LightCurve:
        """Put the samples on a fixed-step raster starting at the first sample.

        Each good sample goes to the nearest raster point (several samples in one point are
        averaged, with their uncertainties combined). Raster points with no good sample (gaps,
        or only bad samples) are filled with the linear interpolation of the neighbouring
        points' flux, get a NaN uncertainty and flag 1; ``meta['n_filled_samples']`` counts
        them.

        Parameters
        ----------
        step_days : float, optional
            Raster step [days]; defaults to :meth:`estimate_sampling_interval`.
        """
        if len(self) < 2:
            return self
        step = float(step_days) if step_days is not None else self.estimate_sampling_interval()
        if not step > 0:
            raise ValueError(f"step_days must be positive, got {step_days!r}")
        t0 = self._time[0]
        index = np.rint((self._time - t0) / step).astype(np.int64)
        n = int(index[-1]) + 1
        grid = t0 + step * np.arange(n)
        good = self.good_mask()
        count = np.bincount(index, weights=good, minlength=n)
        total = np.bincount(index, weights=np.where(good, self._flux, 0.0), minlength=n)
        filled = count == 0
        with np.errstate(invalid="ignore", divide="ignore"):
            flux = total / count
        if (~filled).any():
            flux[filled] = np.interp(grid[filled], grid[~filled], flux[~filled])
        else:
            flux[:] = np.nan
        flux_err = None
        if self._flux_err is not None:
            var = np.bincount(index, weights=np.where(good, self._flux_err ** 2, 0.0),
                              minlength=n)
            with np.errstate(invalid="ignore", divide="ignore"):
                flux_err = np.sqrt(var) / count
            flux_err[filled] = np.nan
        flags = filled.astype(np.uint8)
        result = self._replace(f"to_fixed_step({step * SECONDS_PER_DAY:.6g} s)",
                               time=grid, flux=flux, flux_err=flux_err, flags=flags)
        return result.with_meta(n_filled_samples=int(filled.sum()))

    def resample(self, new_time) -> LightCurve:
        """Flux-conserving resampling onto the raster ``new_time`` [days].

        Every sample stands for a bin reaching half-way to its neighbours, and at most half a
        sampling interval, so a gap stays a gap. The new flux in each new bin is the average of
        the good samples' fluxes weighted by their overlap with the bin; its uncertainty is
        propagated from the sample uncertainties. A new bin overlapping no good sample gets a
        NaN flux and flag 1. Integrated over a fully covered span, the flux is conserved.
        """
        new_time = np.asarray(new_time, dtype=np.float64)
        if new_time.ndim != 1 or not np.all(np.isfinite(new_time)) \
                or np.any(np.diff(new_time) <= 0):
            raise ValueError("new_time must be a 1-D array of finite, strictly increasing times")
        if len(self) < 2:
            raise ValueError("resampling needs a light curve of at least 2 samples")
        src_lo, src_hi = bin_edges(self._time, self.estimate_sampling_interval())
        step = float(np.median(np.diff(new_time))) if new_time.size > 1 else \
            self.estimate_sampling_interval()
        new_lo, new_hi = bin_edges(new_time, step)
        good = self.good_mask()
        err = None if self._flux_err is None else self._flux_err[good]
        flux, flux_err, weight = overlap_average(
            src_lo[good], src_hi[good], self._flux[good], err, new_lo, new_hi)
        flags = (weight <= 0).astype(np.uint8)
        return self._replace(f"resample({new_time.size} samples)", time=new_time, flux=flux,
                             flux_err=flux_err, flags=flags)

    # ------------------------------------------------------------------ arithmetic
    def _combine(self, other: LightCurve, op: str) -> LightCurve:
        if not isinstance(other, LightCurve):
            return NotImplemented
        if len(other) >= 2 and np.array_equal(other._time, self._time):
            matched = other
        else:
            matched = other.resample(self._time)
        a, b = self._flux, matched._flux
        ea = np.zeros_like(a) if self._flux_err is None else self._flux_err
        eb = np.zeros_like(b) if matched._flux_err is None else matched._flux_err
        with np.errstate(invalid="ignore", divide="ignore"):
            if op == "*":
                # relative errors in quadrature, written without dividing by the fluxes
                flux, err = a * b, np.hypot(ea * b, eb * a)
            elif op == "+":
                flux, err = a + b, np.hypot(ea, eb)
            else:
                flux, err = a - b, np.hypot(ea, eb)
        if self._flux_err is None and matched._flux_err is None:
            err = None
        flags = self._flags | matched._flags
        meta = {**self._meta, **other._meta}
        meta.pop("provenance", None)
        mine = self._meta.get("provenance")
        if mine:
            meta["provenance"] = mine
        return self._replace(f"{op} light curve of {len(other)} samples",
                             flux=flux, flux_err=err, flags=flags, meta=meta)

    def __mul__(self, other: LightCurve) -> LightCurve:
        """Multiply fluxes; ``other`` is resampled onto this raster; relative errors add in
        quadrature; metadata merged with ``other`` winning."""
        return self._combine(other, "*")

    def __add__(self, other: LightCurve) -> LightCurve:
        """Add fluxes (``other`` resampled onto this raster); errors add in quadrature."""
        return self._combine(other, "+")

    def __sub__(self, other: LightCurve) -> LightCurve:
        """Subtract fluxes (``other`` resampled onto this raster); errors add in quadrature."""
        return self._combine(other, "-")

    # ------------------------------------------------------------------ metadata helpers
    def finite_meta_number(self, key: str) -> float | None:
        """``meta[key]`` as a float when it is a finite number, else ``None``."""
        value = self._meta.get(key)
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            return None
        return float(value) if math.isfinite(value) else None
