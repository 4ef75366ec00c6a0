"""ingest_external_lcs: every sample and real format becomes a checked LightCurve."""
from __future__ import annotations

import numpy as np
import pytest

from eas_runtime.lightcurve import FormatError, read_lightcurve, write_lightcurve
from functions.ingest_external_lcs.science import ingest

SAMPLES = {
    "lcsg_example.csv": ("lcsg", 384),
    "tess_wasp126_first_3.5d.fits": ("mission", 2500),
    "demo_superearth_first_5d.gz": ("prototype", 480),
}


@pytest.mark.parametrize("name", sorted(SAMPLES))
def test_ingest_samples_then_write_products(tmp_path, functions_dir, name):
    fmt, n = SAMPLES[name]
    lc = ingest(functions_dir / "ingest_external_lcs" / "sample" / name, metadata={"campaign": 7})
    assert lc.meta["source_format"] == fmt and len(lc) == n and lc.meta["campaign"] == 7
    back = read_lightcurve(write_lightcurve(lc, tmp_path / "product.fits"))
    assert np.array_equal(back.time, lc.time) and np.array_equal(back.flags, lc.flags)
    assert back.meta == lc.meta


def test_ingest_real_k2_csv_and_kepler_fits(real_dir):
    assert len(ingest(real_dir / "tls_EPIC206154641.csv")) == 3203
    lc = ingest(real_dir / "kplr009002278-2012179063303_llc.fits")
    assert lc.meta["keplerid"] == 9002278 and lc.good_mask().sum() == 3997


def test_ingest_metadata_argument_wins(functions_dir):
    lc = ingest(functions_dir / "ingest_external_lcs/sample/lcsg_example.csv",
                metadata={"orbital_period": 2.51})
    assert lc.meta["orbital_period"] == 2.51


def test_ingest_rejects_a_curve_without_good_samples(tmp_path):
    path = tmp_path / "all_flagged.csv"
    path.write_text("0.0,1.0,1\n0.1,1.0,1\n0.2,1.0,1\n")
    with pytest.raises(FormatError, match="all_flagged.csv: none of the 3 samples is good"):
        ingest(path)


def test_ingest_rejects_metadata_the_product_cannot_hold(tmp_path):
    path = tmp_path / "reserved.csv"
    path.write_text("# #NAXIS = 3\n0.0,1.0,0\n0.1,1.0,0\n")
    with pytest.raises(FormatError, match="reserved"):
        ingest(path)
