"""The ``stitch`` task's science: segments of a star made one light curve, each normalised on
its own, on one time reference, one observation counted once."""
from __future__ import annotations

import numpy as np
import pytest

from eas_runtime.lightcurve import LightCurve
from eas_runtime.task_api import InputError
from functions.stitch.science import Segment, stitch


def _segment(start, days, level, *, reference=2457000.0, name=None, mission="TESS", err=True,
             cadence=1 / 720):
    t = np.arange(start, start + days, cadence)
    meta = {"mission": mission, "star_id": "TIC 1"}
    if reference is not None:
        meta["time_reference_bjd"] = reference
        meta["time_system"] = {2457000.0: "BTJD", 2454833.0: "BKJD"}.get(reference, "BJD")
    if name:
        meta["segment"] = name
    flux = np.full(t.size, level) * (1 + 1e-4 * np.sin(t))
    return Segment(LightCurve(t, flux, np.full(t.size, level * 1e-3) if err else None, None,
                              meta), f"{name or start}.fits")


def test_two_sectors_become_one_normalised_light_curve_in_time_order():
    late = _segment(1354.0, 27.0, 5000.0, name="sector 2")
    early = _segment(1325.0, 27.0, 20000.0, name="sector 1")
    lc = stitch([late, early])
    assert lc.meta["n_segments"] == 2 and lc.meta["segments"] == "sector 1; sector 2"
    assert np.all(np.diff(lc.time) > 0) and lc.time[0] == pytest.approx(1325.0)
    first = lc.time < 1353
    assert np.median(lc.flux[first]) == pytest.approx(1, abs=1e-4)
    assert np.median(lc.flux[~first]) == pytest.approx(1, abs=1e-4)
    assert lc.flux_err[0] == pytest.approx(1e-3, rel=1e-3)          # divided with the flux
    assert lc.meta["stitched"] is True and lc.meta["time_system"] == "BTJD"
    assert lc.meta["star_id"] == "TIC 1"


def test_segments_on_different_references_share_the_earliest():
    kepler = _segment(1200.0, 10.0, 1.0, reference=2454833.0, name="quarter 13", mission="Kepler")
    tess = _segment(1325.0, 10.0, 1.0, reference=2457000.0, name="sector 1")
    lc = stitch([tess, kepler])
    assert lc.meta["time_reference_bjd"] == 2454833.0
    assert lc.meta["time_system"] == "BKJD"
    # sector 1 at BTJD 1325 is BKJD 1325 + 2167
    assert lc.time[-1] == pytest.approx(1325.0 + 10.0 + 2167.0, abs=0.01)
    assert lc.meta["mission"] == "Kepler; TESS"


def test_one_observation_counts_once():
    a = _segment(1325.0, 27.0, 1.0, name="sector 1")
    b = _segment(1325.0, 26.0, 1.0, name="sector 1")      # the same sector, fewer samples
    lc = stitch([a, b])
    assert lc.meta["n_segments"] == 1 and "counted once" in lc.meta["warnings"]
    assert len(lc.time) == len(a.lc.time)
    c = _segment(1325.5, 26.0, 1.0, name=None)             # unnamed, overlapping
    assert stitch([a, c]).meta["n_segments"] == 1


def test_a_segment_without_a_reference_is_taken_to_share_it_with_a_warning():
    a = _segment(1325.0, 10.0, 1.0, name="sector 1")
    b = _segment(1354.0, 10.0, 1.0, reference=None, name="x")
    lc = stitch([a, b])
    assert lc.meta["n_segments"] == 2 and "no time reference stated" in lc.meta["warnings"]


def test_errors_are_kept_only_when_every_segment_has_them():
    a = _segment(1325.0, 10.0, 1.0, name="sector 1")
    b = _segment(1354.0, 10.0, 1.0, name="sector 2", err=False)
    assert stitch([a, b]).flux_err is None


def test_unusable_segments_are_input_errors_naming_them():
    bad = _segment(1325.0, 10.0, -5.0, name="sector 1")
    with pytest.raises(InputError, match="sector 1.*median flux"):
        stitch([bad])
    empty = Segment(LightCurve([1.0, 2.0], [np.nan, np.nan], None, None, {}), "e.fits")
    with pytest.raises(InputError, match="no segment has good samples"):
        stitch([empty])
    ok = _segment(1325.0, 10.0, 1.0, name="sector 1")
    assert "no good samples, left out" in stitch([ok, empty]).meta["warnings"]
