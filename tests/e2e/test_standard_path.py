"""The standard path on the embedded runtime: a light curve uploaded under a watch rule made by
``eas watch add`` (no --job: the standard template) goes ingest -> detrend -> planet_search ->
vetting, and its candidates land in the catalogue: ``eas candidates`` (text, JSON, CSV,
VOTable, reports), the site's ``/candidates`` with its exports and reports."""
from __future__ import annotations

import csv
import io
import json
import os
import subprocess
import sys

import batman
import numpy as np
import pytest
import requests
from astropy.io import fits
from astropy.io.votable import parse_single_table
from sqlalchemy import select

from eas_runtime import diagnostics as diag
from eas_runtime.db.models import DONE, CatalogueEntry, Product, Task
from eas_runtime.planets.vetting import PLANET
from eas_runtime.resources import Resources
from eas_runtime.settings import PROJECT_ROOT
from tests.e2e.helpers import settled, wait_for

PERIODS = (3.7, 11.3)
SINGLE_AT = 40.3


def _star(path) -> None:
    """60 days at 30 min of a star with two planets and one lone transit, 0.3 % rotation,
    250 ppm white noise; a TESS-like file (TIME, PDCSAP_FLUX, QUALITY, TICID)."""
    t = np.arange(0.0, 60.0, 1 / 48)
    flux = np.ones(t.size)
    for per, t0, rp, a in ((3.7, 1.1, 0.03, 10), (11.3, 4.0, 0.025, 22), (400.0, SINGLE_AT, 0.05, 200)):
        p = batman.TransitParams()
        p.t0, p.per, p.rp, p.a, p.inc, p.ecc, p.w = t0, per, rp, a, 89.9, 0.0, 90.0
        p.u, p.limb_dark = [0.4, 0.25], "quadratic"
        flux *= batman.TransitModel(p, t).light_curve(p)
    rng = np.random.default_rng(7)
    flux = flux * (1 + 3e-3 * np.sin(2 * np.pi * t / 7.0)) + rng.normal(0, 250e-6, t.size)
    primary = fits.PrimaryHDU()
    primary.header["TICID"] = 123456789
    primary.header["MISSION"] = "TESS"
    primary.header["OBJECT"] = "TIC 123456789"
    fits.HDUList([primary, fits.BinTableHDU.from_columns([
        fits.Column(name="TIME", format="D", unit="BJD - 2457000, days", array=t + 1500.0),
        fits.Column(name="PDCSAP_FLUX", format="E", array=flux),
        fits.Column(name="PDCSAP_FLUX_ERR", format="E", array=np.full(t.size, 250e-6)),
        fits.Column(name="QUALITY", format="J", array=np.zeros(t.size, np.int32))], name="LIGHTCURVE")
    ]).writeto(path)


def _eas(runtime, *args):
    env = {**os.environ, "EAS_HOME": runtime.settings.home}
    return subprocess.run([sys.executable, "-m", "eas_runtime.cli", *args], capture_output=True,
                          text=True, env=env, timeout=300, cwd=PROJECT_ROOT)


@pytest.mark.timeout(900)
def test_an_upload_goes_the_standard_path_into_the_catalogue(make_runtime, tmp_path):
    runtime = make_runtime()
    added = _eas(runtime, "watch", "add", "--prefix", "inbox/")
    assert added.returncode == 0 and "4 tasks per object" in added.stdout, added
    _star(tmp_path / "star.fits")
    store = Resources(runtime.settings, db=runtime.db).store
    store.put_file("inbox/tess/star.fits", tmp_path / "star.fits")
    wait_for(settled(runtime.db, 4), timeout_s=800, what="the standard path")
    with runtime.db.read() as s:
        states = s.execute(select(Task.task_type, Task.state)).all()
        entries = s.scalars(select(CatalogueEntry).order_by(CatalogueEntry.number)).all()
        rows = [(e.kind, e.period, e.epoch, e.verdict, e.star_id, e.job_id) for e in entries]
    assert sorted(states) == sorted((t, DONE) for t in ("ingest_external_lcs", "detrend",
                                                         "planet_search", "vetting")), states
    # the template's window is "auto": on 60 days, the one-day floor (functions/detrend)
    with runtime.db.read() as s:
        job_id = s.scalar(select(Task.job_id).where(Task.task_type == "detrend"))
    detrended = diag.timings(runtime.db, job_id, "detrend")["items"][0]
    assert detrended["window_length"] == "auto" and detrended["result.window_length"] == 1.0, detrended
    assert detrended["window_rule"].startswith("auto: max(1 d, 3 x T14 = 0.70"), detrended
    periodic = [r for r in rows if r[0] == "periodic"]
    singles = [r for r in rows if r[0] == "single"]
    assert [round(r[1], 1) for r in periodic] == [3.7, 11.3], rows
    assert len(singles) == 1 and abs(singles[0][2] - 1500.0 - SINGLE_AT) < 0.05, rows
    assert all(r[3] == PLANET for r in rows) and {r[4] for r in rows} == {"TIC 123456789"}, rows

    # eas candidates: text, filters, JSON, CSV, VOTable, reports
    listed = _eas(runtime, "candidates")
    assert listed.returncode == 0 and "3 candidates (3 planet candidate)" in listed.stdout, listed
    as_json = json.loads(_eas(runtime, "candidates", "--json", "--kind", "periodic",
                              "--sort", "period").stdout)
    assert [round(r["period"], 1) for r in as_json] == [3.7, 11.3]
    assert "odd_even_sigma" in as_json[0] and as_json[0]["star_id"] == "TIC 123456789"
    assert json.loads(_eas(runtime, "candidates", "--json", "--verdict", "fp").stdout) == []
    table = list(csv.DictReader(io.StringIO(_eas(runtime, "candidates", "--csv",
                                                 "--period-min", "10").stdout)))
    assert [round(float(r["period"]), 1) for r in table] == [11.3]
    votable = tmp_path / "c.xml"
    assert _eas(runtime, "candidates", "--votable", str(votable)).returncode == 0
    assert len(parse_single_table(str(votable)).to_table()) == 3
    first_id = as_json[0]["id"]
    report = _eas(runtime, "candidates", "--report", str(first_id), "--out", str(tmp_path))
    assert report.returncode == 0, report
    assert (tmp_path / f"candidate_{first_id}.png").read_bytes()[:4] == b"\x89PNG"
    assert (tmp_path / f"candidate_{first_id}.pdf").read_bytes()[:5] == b"%PDF-"
    bad = _eas(runtime, "candidates", "--verdict", "maybe")
    assert bad.returncode == 2 and "verdict must be pc, fp" in bad.stderr and "Traceback" not in bad.stderr
    missing = _eas(runtime, "candidates", "--report", "999999")
    assert missing.returncode == 1 and "no candidate 999999" in missing.stderr

    # the site
    base = runtime.index_url.rstrip("/")
    page = requests.get(f"{base}/candidates?sort=period&order=asc", timeout=30)
    assert page.status_code == 200 and "TIC 123456789" in page.text and "planet candidate" in page.text
    api = requests.get(f"{base}/api/candidates?kind=single", timeout=30).json()
    assert api["total"] == 1 and api["items"][0]["kind"] == "single"
    assert requests.get(f"{base}/api/candidates?sort=colour", timeout=30).status_code == 400
    assert requests.get(f"{base}/api/candidates?min_snr=nan", timeout=30).status_code == 400
    exported = requests.get(f"{base}/candidates.csv?verdict=pc", timeout=30)
    assert exported.status_code == 200 and len(list(csv.DictReader(io.StringIO(exported.text)))) == 3
    xml = requests.get(f"{base}/candidates.votable", timeout=30)
    assert xml.status_code == 200 and b"<VOTABLE" in xml.content
    one = requests.get(f"{base}/candidates/{first_id}", timeout=30)
    assert one.status_code == 200 and f"/candidates/{first_id}/report.png" in one.text
    png = requests.get(f"{base}/candidates/{first_id}/report.png", timeout=120)
    assert png.status_code == 200 and png.content[:4] == b"\x89PNG"
    pdf = requests.get(f"{base}/candidates/{first_id}/report.pdf", timeout=120)
    assert pdf.status_code == 200 and pdf.content[:5] == b"%PDF-"
    assert requests.get(f"{base}/candidates/999999", timeout=30).status_code == 404

    # the star: every product of the chain is grouped under it, and it has a page
    with runtime.db.read() as s:
        stars = dict(s.execute(select(Product.key, Product.star_id)).all())
    assert stars["inbox/tess/star.fits"] == "TIC 123456789"          # the upload, via ingest
    made = {k.rsplit("/", 1)[-1]: v for k, v in stars.items() if k.startswith("processed/")}
    assert made == {name: "TIC 123456789" for name in (
        "star.fits", "star.flat.fits", "star.candidates.ecsv", "star.periodogram.fits",
        "star.vetted.ecsv")}, stars
    listing = requests.get(f"{base}/api/stars", timeout=30).json()
    assert [(x["star_id"], x["planet_candidates"]) for x in listing["items"]] == [("TIC 123456789", 3)]
    page = requests.get(f"{base}/stars/TIC%20123456789", timeout=30)
    assert page.status_code == 200 and "/candidates/" in page.text and "/plots/" in page.text
    detail = requests.get(f"{base}/api/stars/TIC%20123456789", timeout=30).json()
    assert detail["missions"] == ["TESS"] and len(detail["segments"]) == 1
    assert len(detail["candidates"]) == 3 and len(detail["products"]) >= 6
    assert requests.get(f"{base}/stars/TIC%20999", timeout=30).status_code == 404
