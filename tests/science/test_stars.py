"""Which star, mission and segment a light curve is of (eas_runtime.lightcurve.stars), from the
headers, the file name or the upload's metadata; on every real file of examples/real_data/lightcurves/."""
from __future__ import annotations

from pathlib import Path

import pytest

from eas_runtime.lightcurve.stars import star_identity
from functions.ingest_external_lcs.science import ingest

FIXTURES = Path(__file__).parent / "fixtures"

REAL = {
    "hlsp_tess-data-alerts_tess_phot_00025155310-s01_tess_v1_lc.fits": ("TIC 25155310", "TESS", "sector 1"),
    "kplr009002278-2012179063303_llc.fits": ("KIC 9002278", "Kepler", "quarter 13"),
    "kplr011904151-2012179063303_llc.fits": ("KIC 11904151", "Kepler", "quarter 13"),
    "tess2018206045859-s0001-0000000038846515-0120-s_lc.fits": ("TIC 38846515", "TESS", "sector 1"),
    "tess2018206045859-s0001-0000000149603524-0120-s_lc.fits": ("TIC 149603524", "TESS", "sector 1"),
    "tess2018206045859-s0001-0000000231663901-0120-s_lc.fits": ("TIC 231663901", "TESS", "sector 1"),
    "tess2018206045859-s0001-0000000231670397-0120-s_lc.fits": ("TIC 231670397", "TESS", "sector 1"),
    "tess2018206045859-s0001-0000000281459670-0120-s_lc.fits": ("TIC 281459670", "TESS", "sector 1"),
    "tls_EPIC201367065.csv": ("EPIC 201367065", None, None),
    "tls_EPIC206154641.csv": ("EPIC 206154641", None, None),
}


@pytest.mark.parametrize("name", sorted(REAL))
def test_every_real_file_names_its_star(shared_dir, name):
    lc = ingest(shared_dir / "data" / "real" / name)
    star, mission, segment = REAL[name]
    assert lc.meta["star_id"] == star
    assert lc.meta.get("mission") == mission and lc.meta.get("segment") == segment


@pytest.mark.parametrize("meta, name, expected", [
    ({}, "ktwo206154641-c03_llc.fits", {"star_id": "EPIC 206154641", "mission": "K2", "segment": "campaign 3"}),
    ({"telescop": "Kepler", "mission": "K2", "keplerid": 206154641, "campaign": 3}, "x.fits",
     {"star_id": "EPIC 206154641", "mission": "K2", "segment": "campaign 3"}),
    ({"telescop": "TESS", "targetid": 38846515, "sector": 5}, "lc.fits",
     {"star_id": "TIC 38846515", "mission": "TESS", "segment": "sector 5"}),
    ({"sector": 5}, "tess2018206045859-s0001-0000000038846515-0120-s_lc.fits",
     {"star_id": "TIC 38846515", "mission": "TESS", "segment": "sector 5"}),       # the header wins
    ({"star_id": "WASP-18"}, "tess2018206045859-s0001-0000000038846515-0120-s_lc.fits",
     {"star_id": "WASP-18", "mission": "TESS", "segment": "sector 1"}),           # given wins
    ({"object": "TIC 0025155310"}, "lc.fits", {"star_id": "TIC 25155310"}),
    ({}, "TIC_25155310_lightcurve.txt", {"star_id": "TIC 25155310"}),
    ({}, "lc.csv", {}),
    ({}, "TOPIC123456.csv", {}),                     # no designation inside a word
])
def test_identity_rules(meta, name, expected):
    assert star_identity(meta, name) == expected


def test_metadata_given_with_the_upload_wins(shared_dir):
    lc = ingest(shared_dir / "data" / "real" / "tls_EPIC206154641.csv",
                metadata={"star_id": "K2-100", "mission": "K2"})
    assert lc.meta["star_id"] == "K2-100" and lc.meta["mission"] == "K2"


@pytest.mark.parametrize("name, star, mission, segment, cadence_s", [
    ("ktwo201367065-c01_llc.fits", "EPIC 201367065", "K2", "campaign 1", 1765.5),
    ("kplr011904151-2012179063303_slc.fits", "KIC 11904151", "Kepler", "quarter 13", 58.85),
])
def test_k2_and_kepler_short_cadence_layouts_are_read_with_their_star(name, star, mission,
                                                                     segment, cadence_s):
    import numpy as np

    lc = ingest(FIXTURES / name)
    assert (lc.meta["star_id"], lc.meta["mission"], lc.meta["segment"]) == (star, mission, segment)
    assert lc.meta["time_system"] == "BKJD" and lc.meta["time_reference_bjd"] == 2454833.0
    assert float(np.median(np.diff(lc.time))) * 86400 == pytest.approx(cadence_s, rel=1e-3)
