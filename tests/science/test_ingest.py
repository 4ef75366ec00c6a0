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


# ---------------------------------------------------------------- many objects (input_path)
from functions.ingest_external_lcs import science as ingest_science  # noqa: E402


def test_glob_patterns_match_segment_by_segment():
    pattern = ingest_science.glob_pattern("/lightcurves_v2/csvs/bright/plato_bright*")
    assert pattern == "lightcurves_v2/csvs/bright/plato_bright*"
    assert ingest_science.listing_prefix(pattern) == "lightcurves_v2/csvs/bright/plato_bright"
    assert ingest_science.key_matches("lightcurves_v2/csvs/bright/plato_bright_7.csv", pattern)
    assert not ingest_science.key_matches("lightcurves_v2/csvs/bright/sub/plato_bright_7.csv",
                                          pattern)
    for bad in ("", "/", None, "a/../b", 5):
        with pytest.raises(ingest_science.ParameterError, match="'input_path'"):
            ingest_science.glob_pattern(bad)
    with pytest.raises(ingest_science.ParameterError, match="'lc_type' must be one of"):
        ingest_science.lc_format("kepler")
    assert ingest_science.lc_format("auto") is None and ingest_science.lc_format("lcsg") == "lcsg"


def test_product_names_depend_on_key_and_content():
    a = ingest_science.product_name("in/star.csv.gz", "abcdef0123")
    assert a.startswith("star.abcdef01") and a.endswith(".fits")
    assert a == ingest_science.product_name("in/star.csv.gz", "abcdef0123")
    assert a != ingest_science.product_name("in/star.csv.gz", "ffffff0123")
    assert a != ingest_science.product_name("other/star.csv.gz", "abcdef0123")


def test_ingest_matching_skips_what_was_ingested_and_records_failures(tmp_path, functions_dir):
    sample = functions_dir / "ingest_external_lcs" / "sample"
    store = {"in/a.csv": (sample / "lcsg_example.csv").read_bytes(),
             "in/b.gz": (sample / "demo_superearth_first_5d.gz").read_bytes(),
             "in/broken.csv": b"time,flux\n1,2\nx,y\n"}

    def fetch(key, dest):
        dest.write_bytes(store[key])

    objects = [(k, f"etag{i}") for i, k in enumerate(store)]
    first = ingest_science.ingest_matching(objects, fetch, tmp_path / "one")
    assert sorted(first.ingested) == ["in/a.csv", "in/b.gz"] and list(first.failed) == ["in/broken.csv"]
    assert "in/broken.csv" in first.failed["in/broken.csv"]       # names the object, not the copy
    assert sorted(first.outputs) == ["lightcurve_00000", "lightcurve_00001"]
    meta = first.output_metadata["lightcurve_00000"]
    assert meta["source_key"] == "in/a.csv" and meta["source_etag"] == "etag0"
    earlier = {path.name: f"work/ingest_1_{path.name}" for path in first.outputs.values()}
    again = ingest_science.ingest_matching(objects, fetch, tmp_path / "two", earlier=earlier)
    assert again.outputs == {} and sorted(again.skipped) == ["in/a.csv", "in/b.gz"]
    summary = again.summary("in/*")
    assert (summary["n_matched"], summary["n_ingested"], summary["n_skipped"]) == (3, 0, 2)
    with pytest.raises(ingest_science.InputError, match="no object could be ingested"):
        ingest_science.ingest_matching([("in/broken.csv", "e")], fetch, tmp_path / "three")
