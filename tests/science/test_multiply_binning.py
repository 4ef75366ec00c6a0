"""multiply and binning: rasters, uncertainties, metadata, flux conservation, defects."""
from __future__ import annotations

import numpy as np
import pytest

from eas_runtime.lightcurve import LightCurve
from eas_runtime.task_api import InputError, ParameterError
from functions.binning.science import bin_lightcurve
from functions.multiply.science import multiply
from functions.synthesis_batman.science import synthesize


def test_multiply_puts_lc2_on_lc1s_raster_and_lets_its_metadata_win():
    t1 = np.arange(0, 5, 0.01)
    lc1 = LightCurve(t1, np.full(t1.size, 1.001), np.full(t1.size, 1e-4),
                     meta={"source": "noise", "orbital_period": 1.0, "provenance": "a"})
    t2 = np.arange(-0.5, 6, 0.003)
    lc2 = LightCurve(t2, np.where((t2 % 2) < 0.1, 0.99, 1.0), np.full(t2.size, 2e-4),
                     meta={"orbital_period": 2.0, "mes": 30.0})
    out = multiply(lc1, lc2)
    assert np.array_equal(out.time, t1)
    assert out.meta["orbital_period"] == 2.0 and out.meta["mes"] == 30.0
    assert out.meta["source"] == "noise" and out.meta["provenance"].startswith("a; *")
    # flux: 1.001 x 1 out of transit, 1.001 x 0.99 inside (bins fully inside a dip)
    assert out.flux[50] == pytest.approx(1.001) and out.flux[3] == pytest.approx(1.001 * 0.99)
    # relative errors in quadrature; lc2's error shrinks by averaging ~3.3 samples per bin
    rel = out.flux_err[50] / out.flux[50]
    assert (1e-4 / 1.001) < rel < np.hypot(1e-4 / 1.001, 2e-4)


def test_multiply_flags_and_overlap():
    t = np.arange(0, 2, 0.01)
    flags = np.zeros(t.size, int)
    flags[10] = 1
    lc1 = LightCurve(t, np.ones(t.size), flags=flags)
    out = multiply(lc1, LightCurve(t, np.full(t.size, 2.0)))
    assert out.flags[10] == 1 and out.flux[20] == 2.0 and out.flux_err is None
    with pytest.raises(InputError, match="do not overlap"):
        multiply(lc1, LightCurve(t + 100, np.ones(t.size)))
    with pytest.raises(InputError, match="lightcurve_2 has 1 sample"):
        multiply(lc1, LightCurve([0.0], [1.0]))


def test_binning_conserves_flux_and_updates_the_cadence():
    lc = synthesize({"duration": 3, "sampling_cadence": 60, "orbital_period": 1.1,
                     "semi_major_axis": 0.02, "planet_radius": 0.3, "noise": 5e-4}, seed=4)
    binned = bin_lightcurve(lc, 1800)
    assert len(binned) == 144 and np.allclose(np.diff(binned.time), 1800 / 86400)
    # the integral of the flux over the light curve is unchanged (to 1e-12)
    assert np.sum(binned.flux) * 1800 == pytest.approx(np.sum(lc.flux) * 60, rel=1e-12)
    # noise 5e-4 per 25 s is 5e-4 sqrt(25/60) per sample; 30 samples per bin: / sqrt(30)
    assert binned.flux_err[10] == pytest.approx(5e-4 * np.sqrt(25 / 60) / np.sqrt(30), rel=1e-9)
    assert binned.meta["sampling_cadence"] == 1800 and binned.meta["binning_cadence_s"] == 1800
    assert "binning(1800 s)" in binned.meta["provenance"]


def test_binning_regression_of_the_prototypes_edges():
    """The prototype's binning crashed, and its resampler set the first and last flux to 1 to
    hide diluted edge bins. Here a half-covered edge bin is the mean of what it covers."""
    t = np.arange(0, 1, 0.01)
    lc = LightCurve(t, np.full(t.size, 0.98))
    binned = bin_lightcurve(lc, 0.07 * 86400)
    assert np.allclose(binned.flux, 0.98) and binned.time[0] == pytest.approx(-0.005 + 0.035)


def test_binning_leaves_gaps_out_and_checks_its_parameter():
    t = np.concatenate([np.arange(0, 1, 0.01), np.arange(3, 4, 0.01)])
    binned = bin_lightcurve(LightCurve(t, np.ones(t.size)), 0.1 * 86400)
    assert len(binned) == 20 and binned.good_mask().all()
    for bad in (0, -5, "fast", None, True):
        with pytest.raises(ParameterError, match="'cadence' must be a positive number of seconds"):
            bin_lightcurve(LightCurve(t, np.ones(t.size)), bad)
