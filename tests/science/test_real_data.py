"""Real light curves (examples/real_data/lightcurves): ingest -> detrend -> search recovers the known
planets' periods (the README there: a ~1-day biweight and BLS over 0.5-15 d; 0.03 %)."""
from __future__ import annotations

import pytest

from functions.detrend.science import detrend
from functions.ingest_external_lcs.science import ingest
from functions.transit_search_bls_kovacs.science import search as kovacs
from functions.transit_search_bls_reference.science import search as bls
from functions.transit_search_tls.science import search as tls

#: file -> (planet, period [d]) from the data folder's README
PLANETS = {
    "hlsp_tess-data-alerts_tess_phot_00025155310-s01_tess_v1_lc.fits": ("WASP-126 b", 3.28880),
    "tess2018206045859-s0001-0000000038846515-0120-s_lc.fits": ("WASP-100 b", 2.849375),
    "tess2018206045859-s0001-0000000149603524-0120-s_lc.fits": ("WASP-62 b", 4.411953),
    "tess2018206045859-s0001-0000000231663901-0120-s_lc.fits": ("WASP-46 b", 1.43037),
    "tess2018206045859-s0001-0000000231670397-0120-s_lc.fits": ("WASP-73 b", 4.08722),
    "tess2018206045859-s0001-0000000281459670-0120-s_lc.fits": ("HATS-30 b", 3.174352),
    "kplr011904151-2012179063303_llc.fits": ("Kepler-10 b", 0.8374907),
    "kplr009002278-2012179063303_llc.fits": ("Kepler-62 b", 5.714932),
    "tls_EPIC201367065.csv": ("K2-3 b", 10.05449),
    "tls_EPIC206154641.csv": ("WASP-75 b", 2.484193),
}
#: In the default tier: a TESS curve, Kepler-62 (a close second peak at 9.08 d), K2-3 (CSV).
QUICK = {"tess2018206045859-s0001-0000000281459670-0120-s_lc.fits",
         "kplr009002278-2012179063303_llc.fits", "tls_EPIC201367065.csv"}


def _cases():
    for name, (planet, period) in PLANETS.items():
        marks = () if name in QUICK else (pytest.mark.slow,)
        yield pytest.param(name, period, id=planet.replace(" ", "_"), marks=marks)


@pytest.mark.parametrize("name, period", list(_cases()))
def test_known_planet_recovered_after_detrending(real_dir, name, period):
    flat, summary = detrend(ingest(real_dir / name), window_length=1.0)
    assert summary.scatter_after_ppm < summary.scatter_before_ppm
    result = bls(flat, search_settings={"period_min": 0.5, "period_max": 15},
                 target_period=period)
    assert abs(result.period / period - 1) < 3e-4          # within 0.03 %
    assert result.outcome == "PASS" and result.sde > 10 and result.extra["detected"]


@pytest.mark.slow
def test_tls_and_kovacs_recover_a_real_planet(real_dir):
    """The other searches on one real curve (WASP-75 b, K2): TLS within 0.1 %; the Kovacs BLS
    with 200 bins and boxes of 0.5-5 % of the period within 0.1 %."""
    flat, _ = detrend(ingest(real_dir / "tls_EPIC206154641.csv"), window_length=1.0)
    period = 2.484193
    found = tls(flat, search_settings={"period_min": 0.5, "period_max": 15}, cpus=2,
                target_period=period)
    assert abs(found.period / period - 1) < 1e-3 and found.outcome == "PASS"
    found = kovacs(flat, search_settings={"period_min": 0.5, "period_max": 15, "nb": 200,
                                          "qmi": 0.005, "qma": 0.05, "frequency_factor": 4},
                   target_period=period)
    assert abs(found.period / period - 1) < 1e-3 and found.outcome == "PASS"


def test_tls_on_a_tess_sector_is_transitleastsquares_itself(real_dir):
    """A TESS sector (18,000 samples at 2 min) is below TLS's binning threshold: the default
    search is TLS on every sample, with its own SDE (binned, WASP-100 b's SDE came out 12.9
    where TLS gives 20.5)."""
    from eas_runtime.lightcurve import read_lightcurve
    from functions.transit_search_tls.science import BIN_MIN_SAMPLES

    lc = read_lightcurve(real_dir / "tess2018206045859-s0001-0000000038846515-0120-s_lc.fits")
    flat, _ = detrend(lc, window_length=0.75)
    default = tls(flat, cpus=1)
    reference = tls(flat, search_settings={"binning": "none"}, cpus=1)
    meta = default.to_dict()
    assert meta["n_points"] == meta["n_samples"] < BIN_MIN_SAMPLES
    assert (default.period, default.sde) == (reference.period, reference.sde)
    assert abs(default.period / 2.849375 - 1) < 1e-3
