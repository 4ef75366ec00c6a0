"""``eas watch add --per-star``: each uploaded segment of a star searches the whole star again.
Two TESS-like sectors of one star, each holding one transit of an 11-day planet: the first
upload finds a single transit; the second stitches both sectors, finds the period (the transits
between fall in the gap) and its rows replace the first search's in the catalogue."""
from __future__ import annotations

import os
import subprocess
import sys

import batman
import numpy as np
import pytest
from astropy.io import fits
from sqlalchemy import select

from eas_runtime.db.models import CatalogueEntry, Task
from eas_runtime.resources import Resources
from eas_runtime.settings import PROJECT_ROOT
from tests.e2e.helpers import settled, wait_for

PERIOD, T0 = 11.0, 1327.0


def _sector(path, start, days, sector, seed):
    t = np.arange(start, start + days, 1 / 144)
    p = batman.TransitParams()
    p.t0, p.per, p.rp, p.a, p.inc, p.ecc, p.w = T0, PERIOD, 0.04, 25, 89.9, 0.0, 90.0
    p.u, p.limb_dark = [0.4, 0.25], "quadratic"
    flux = batman.TransitModel(p, t).light_curve(p) + np.random.default_rng(seed).normal(0, 300e-6, t.size)
    primary = fits.PrimaryHDU()
    primary.header.update(TICID=777, MISSION="TESS", SECTOR=sector, TELESCOP="TESS")
    fits.HDUList([primary, fits.BinTableHDU.from_columns([
        fits.Column(name="TIME", format="D", unit="BJD - 2457000, days", array=t),
        fits.Column(name="PDCSAP_FLUX", format="E", array=flux * 1.0e4),
        fits.Column(name="PDCSAP_FLUX_ERR", format="E", array=np.full(t.size, 3.0)),
        fits.Column(name="QUALITY", format="J", array=np.zeros(t.size, np.int32))], name="LIGHTCURVE")
    ]).writeto(path)


def _rows(runtime):
    with runtime.db.read() as s:
        return [(e.kind, e.period, e.epoch, e.n_segments, e.verdict) for e in
                s.scalars(select(CatalogueEntry).where(CatalogueEntry.star_id == "TIC 777"))]


@pytest.mark.timeout(900)
def test_each_new_segment_searches_the_whole_star_again(make_runtime, tmp_path):
    runtime = make_runtime()
    env = {**os.environ, "EAS_HOME": runtime.settings.home}
    added = subprocess.run([sys.executable, "-m", "eas_runtime.cli", "watch", "add", "--prefix",
                            "inbox/", "--per-star"], capture_output=True, text=True, env=env,
                           cwd=PROJECT_ROOT, timeout=120)
    assert added.returncode == 0 and "5 tasks per object" in added.stdout, added
    store = Resources(runtime.settings, db=runtime.db).store
    # transits at 1327 (sector 1) and 1360 (sector 2); 1338 and 1349 fall in the gap, and the
    # data rule out 33 / 4 d (sector 1 holds 1335.25 without a dip)
    _sector(tmp_path / "s1.fits", 1325.0, 12.0, 1, 1)
    _sector(tmp_path / "s2.fits", 1352.0, 10.0, 2, 2)
    store.put_file("inbox/tic777_s1.fits", tmp_path / "s1.fits")
    wait_for(settled(runtime.db, 5), timeout_s=400, what="the first sector's search")
    first = _rows(runtime)
    assert [(k, n) for k, _, _, n, _ in first] == [("single", 1)], first
    assert abs(first[0][2] - T0) < 0.05

    store.put_file("inbox/tic777_s2.fits", tmp_path / "s2.fits")
    wait_for(settled(runtime.db, 10), timeout_s=400, what="the second sector's search")
    with runtime.db.read() as s:
        states = s.execute(select(Task.task_type, Task.state)).all()
    assert all(state == "done" for _, state in states), states
    second = _rows(runtime)
    assert [(k, n) for k, _, _, n, _ in second] == [("periodic", 2)], second
    assert abs(second[0][1] / PERIOD - 1) < 2e-3 and second[0][4] == "planet candidate"
