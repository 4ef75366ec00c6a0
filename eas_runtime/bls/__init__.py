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

__all__ = ["METHODS", "OBJECTIVES", "BLSPower", "bls"]
