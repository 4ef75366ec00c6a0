"""The ``multiply`` task: light curve 1 times light curve 2.

Light curve 2 is resampled onto light curve 1's raster (flux-conserving, see
:meth:`LightCurve.resample`), the fluxes are multiplied, relative uncertainties add in
quadrature, a sample is bad when it is bad in either, and the metadata are merged with light
curve 2's winning (the prototype's rule: multiplying a noise-only curve by a transit model
keeps the model's ``orbital_period`` and ``mes``). Typical use: PSLS noise times a noiseless
batman transit (the prototype's completeness grid).
"""
from __future__ import annotations

from eas_runtime.lightcurve import LightCurve
from eas_runtime.task_api import InputError


def multiply(lc1: LightCurve, lc2: LightCurve) -> LightCurve:
    """``lc1 * lc2`` on ``lc1``'s raster; InputError when the two do not overlap."""
    if len(lc2) < 2:
        raise InputError(f"lightcurve_2 has {len(lc2)} sample(s); resampling needs at least 2")
    if len(lc1) == 0:
        raise InputError("lightcurve_1 has no samples")
    product = lc1 * lc2
    if not product.good_mask().any():
        raise InputError(
            f"the light curves do not overlap: lightcurve_1 spans {lc1.time[0]:.6g} to "
            f"{lc1.time[-1]:.6g} d, lightcurve_2 {lc2.time[0]:.6g} to {lc2.time[-1]:.6g} d")
    return product
