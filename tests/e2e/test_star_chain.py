"""``examples/jobs/star_chain.json`` (the chain of ``python -m benchmarks --only chain``) as a
watch-rule template on the embedded runtime: an uploaded mission-style FITS light curve of a
star with a planet goes ingest -> detrend -> BLS -> TLS on the BLS candidate, and both
searches find the injected period."""
from __future__ import annotations

import json

import numpy as np
import pytest
from astropy.io import fits
from sqlalchemy import select

from eas_runtime.db import metadata as md
from eas_runtime.db.models import DONE, Attempt, Task, WatchRule
from eas_runtime.resources import Resources
from eas_runtime.settings import PROJECT_ROOT
from functions.synthesis_batman.science import synthesize
from tests.e2e.helpers import settled, wait_for

PERIOD = 3.31      # days


def _star(path) -> None:
    """20 days at 10 min: a 3 Earth-radius planet, 500 ppm white noise, 0.2 % rotation."""
    lc = synthesize({"duration": 20.0, "sampling_cadence": 600, "orbital_period": PERIOD,
                     "semi_major_axis": (PERIOD / 365.25) ** (2 / 3),
                     "planet_radius": 3 * 6371 / 71492, "noise": 500e-6, "t0": 1.1}, seed=5)
    flux = lc.flux * (1 + 2e-3 * np.sin(2 * np.pi * lc.time / 9.0))
    fits.HDUList([fits.PrimaryHDU(), fits.BinTableHDU.from_columns([
        fits.Column(name="TIME", format="D", array=lc.time),
        fits.Column(name="FLUX", format="D", array=flux),
        fits.Column(name="FLUX_ERR", format="D", array=np.full(flux.size, 500e-6)),
        fits.Column(name="QUALITY", format="J", array=np.zeros(flux.size, np.int32))])
    ]).writeto(path)


@pytest.mark.timeout(600)
def test_star_chain_template_finds_the_planet(make_runtime, tmp_path):
    runtime = make_runtime()
    template = json.loads((PROJECT_ROOT / "examples/jobs/star_chain.json").read_text())
    with runtime.db.session() as s:
        s.add(WatchRule(prefix="inbox/", task_types=[], job_template=template))
    _star(tmp_path / "star.fits")
    Resources(runtime.settings, db=runtime.db).store.put_file("inbox/star.fits", tmp_path / "star.fits")
    wait_for(settled(runtime.db, 4), timeout_s=500, what="the chain")
    with runtime.db.read() as s:
        rows = s.execute(select(Task.task_type, Task.state, Attempt.id, Attempt.error_text)
                         .join(Attempt, Attempt.task_id == Task.id)).all()
        results = {t: md.get_metadata(s, "attempt", a) for t, _, a, _ in rows}
    assert sorted((t, state) for t, state, _, _ in rows) == sorted(
        (t, DONE) for t in ("ingest_external_lcs", "detrend", "transit_search_bls_reference",
                            "transit_search_tls")), rows
    bls, tls = results["transit_search_bls_reference"], results["transit_search_tls"]
    assert abs(bls["period"] / PERIOD - 1) < 0.01
    assert abs(tls["period"] / bls["period"] - 1) <= 0.0101      # TLS searched the BLS window
    assert abs(tls["period"] / PERIOD - 1) < 0.005
