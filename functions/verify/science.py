"""The ``verify`` task: time and flux ranges of a light curve and whether it has a fixed step;
when it has not, why: its gaps (count, the longest and where) and irregular steps (count, the
first and where)."""
from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from eas_runtime.lightcurve import LightCurve
from eas_runtime.lightcurve.model import SECONDS_PER_DAY

#: Largest deviation of a step from the sampling interval for a fixed-step raster [days].
FIXED_STEP_TOLERANCE_D = 1e-4


@dataclass(frozen=True)
class VerifyResult:
    """What ``verify`` found (names of the first four fields as in the prototype).

    Times in days, fluxes in the light curve's unit; flux extremes are over the good samples
    (flag 0, finite flux) and ``None`` when there is none.
    """

    verification_time_min: float
    verification_time_max: float
    verification_flux_min: float | None
    verification_flux_max: float | None
    #: True when the raster has a fixed step and no gaps (tolerance 1e-4 d).
    verification: bool
    n_samples: int
    n_bad_samples: int
    sampling_interval_s: float | None
    #: Why ``verification`` is false ('' when true): the gaps (count, the longest and where)
    #: and the irregular steps (count, the first and where).
    verification_reason: str = ""
    #: Steps longer than the interval by more than the tolerance and at least 1.5 intervals.
    n_gaps: int = 0
    longest_gap_d: float | None = None
    #: Other steps off the interval by more than the tolerance (jitter, a changed cadence).
    n_irregular_steps: int = 0

    UNITS = {"verification_time_min": "d", "verification_time_max": "d",
             "sampling_interval_s": "s", "longest_gap_d": "d"}

    def to_dict(self) -> dict:
        return asdict(self)



def verify(lc: LightCurve) -> VerifyResult:
    """Check ``lc``: ranges, count of bad samples and whether it has a fixed step."""
    if len(lc) == 0:
        raise ValueError("cannot verify an empty light curve")
    good = lc.good_mask()
    flux = lc.flux[good]
    interval = lc.estimate_sampling_interval() * SECONDS_PER_DAY if len(lc) > 1 else None
    reason, n_gaps, longest, n_irregular = "", 0, None, 0
    if len(lc) > 1:
        time = np.asarray(lc.time, dtype=np.float64)
        steps = np.diff(time)
        step = interval / SECONDS_PER_DAY
        off = np.abs(steps - step) > FIXED_STEP_TOLERANCE_D
        gaps = off & (steps >= 1.5 * step)
        irregular = off & ~gaps
        n_gaps, n_irregular = int(gaps.sum()), int(irregular.sum())
        parts = []
        if n_gaps:
            at = int(np.argmax(np.where(gaps, steps, -np.inf)))
            longest = float(steps[at])
            parts.append(f"{n_gaps} gap(s) in the {interval:.6g} s raster, the longest "
                         f"{longest:.6g} d after t = {time[at]:.6f} d")
        if n_irregular:
            first = int(np.flatnonzero(irregular)[0])
            parts.append(f"{n_irregular} irregular step(s) (off the {interval:.6g} s interval by "
                         f"more than {FIXED_STEP_TOLERANCE_D * SECONDS_PER_DAY:.3g} s), the "
                         f"first {steps[first] * SECONDS_PER_DAY:.6g} s after t = "
                         f"{time[first]:.6f} d")
        reason = "not a fixed step: " + "; ".join(parts) if parts else ""
    return VerifyResult(
        verification_time_min=float(lc.time[0]),
        verification_time_max=float(lc.time[-1]),
        verification_flux_min=float(np.min(flux)) if flux.size else None,
        verification_flux_max=float(np.max(flux)) if flux.size else None,
        verification=lc.is_fixed_step(FIXED_STEP_TOLERANCE_D),
        n_samples=len(lc),
        n_bad_samples=int((~good).sum()),
        sampling_interval_s=interval,
        verification_reason=reason, n_gaps=n_gaps, longest_gap_d=longest,
        n_irregular_steps=n_irregular,
    )
