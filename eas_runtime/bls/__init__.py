"""Box least squares (BLS) periodogram: a compiled, multi-threaded kernel equal to astropy's.

:func:`bls` computes, for every trial period, what
:meth:`astropy.timeseries.BoxLeastSquares.power` computes with ``method="fast"``: the same phase
bins, the same boxes, the same best box and the same numbers. ``method="fast"`` (the default) is
the compiled kernel (numba, threads over periods); ``method="reference"`` a plainly written numpy
transcription of the same algorithm, one period at a time, to check it.

Three layers, as astropy's: :mod:`.methods` validates the inputs and holds the kernels;
:mod:`._kernel` the compiled core.
"""
from eas_runtime.bls.methods import METHODS, OBJECTIVES, BLSPower, bls

__all__ = ["METHODS", "OBJECTIVES", "BLSPower", "bls", "warm_up"]


def warm_up() -> None:
    """Compile (or load from numba's cache) every kernel of the search, on a tiny light curve.

    Run when an image is built, so that a replica scaled from zero does not spend its first
    request compiling (about 9 s here; loading the cached machine code takes about 1 s).
    """
    import numpy as np

    from eas_runtime.bls.search import search_lightcurve

    t = np.arange(0.0, 30.0, 0.01)
    y = 1.0 + 1e-4 * np.sin(t * 7.0)
    y[(t % 3.0) < 0.1] -= 1e-3
    for method in ("bls", "ffa"):
        search_lightcurve(t, y, period_min=1.0, period_max=5.0, method=method, threads=1)
