"""The ``verify`` task: time and flux ranges of a light curve and whether it has a fixed step."""
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

    def to_dict(self) -> dict:
        return asdict(self)


def verify(lc: LightCurve) -> VerifyResult:
    """Check ``lc``: ranges, count of bad samples and whether it has a fixed step."""
    if len(lc) == 0:
        raise ValueError("cannot verify an empty light curve")
    good = lc.good_mask()
    flux = lc.flux[good]
    interval = lc.estimate_sampling_interval() * SECONDS_PER_DAY if len(lc) > 1 else None
    return VerifyResult(
        verification_time_min=float(lc.time[0]),
        verification_time_max=float(lc.time[-1]),
        verification_flux_min=float(np.min(flux)) if flux.size else None,
        verification_flux_max=float(np.max(flux)) if flux.size else None,
        verification=lc.is_fixed_step(FIXED_STEP_TOLERANCE_D),
        n_samples=len(lc),
        n_bad_samples=int((~good).sum()),
        sampling_interval_s=interval,
    )
