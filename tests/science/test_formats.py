"""Reading every supported format, product round trips, and recognition by content."""
from __future__ import annotations

import gzip
import shutil

import numpy as np
import pytest
from astropy.io import fits

from eas_runtime.lightcurve import (
    FORMATS, LightCurve, detect_format, read_lightcurve, read_metadata_cfg, write_lightcurve)

TESS_WASP126 = "hlsp_tess-data-alerts_tess_phot_00025155310-s01_tess_v1_lc.fits"
KEPLER_10 = "kplr011904151-2012179063303_llc.fits"
K2_3 = "tls_EPIC201367065.csv"


# ---------------------------------------------------------------- prototype text
def test_prototype_demo_superearth(demo_superearth):
    assert detect_format(demo_superearth) == "prototype"
    lc = read_lightcurve(demo_superearth)
    # 240 d at 900 s: 23,040 rows, times converted from seconds to days (exact)
    assert len(lc) == 23040
    assert lc.time[0] == 0.0 and lc.estimate_sampling_interval() == pytest.approx(900 / 86400)
    assert lc.is_fixed_step()
    # the prototype wrote the flux into the flag column: flags ignored, and said so
    assert not lc.flags.any()
    assert "flag column" in lc.meta["warnings"]
    assert lc.flux_err is None  # its uncertainty column is all zero
    assert np.median(lc.flux) == pytest.approx(1.0, abs=1e-3)


def test_prototype_metadata_cfg(demo_superearth):
    meta = read_metadata_cfg(f"{demo_superearth}.metadata.cfg")
    assert meta["orbital_period"] == 50.0 and meta["mode"] == "main_sequence"
    lc = read_lightcurve(demo_superearth, metadata=meta)
    assert lc.meta["orbital_period"] == 50.0 and lc.meta["source_format"] == "prototype"


def test_prototype_writer_round_trip_keeps_flags(tmp_path, lc_factory):
    lc = lc_factory(n=50, step=25 / 86400, flags=np.arange(50) % 7 == 0,
                    flux_err=np.full(50, 1e-4))
    path = write_lightcurve(lc, tmp_path / "lc.gz", fmt="prototype")
    assert path.read_bytes()[:2] == b"\x1f\x8b"
    back = read_lightcurve(path)
    assert back.meta["source_format"] == "prototype" and "warnings" not in back.meta
    assert np.array_equal(back.flags, lc.flags)
    # times pass through seconds with 18 significant digits (tolerance 1e-12 d)
    assert np.allclose(back.time, lc.time, atol=1e-12, rtol=0)
    assert np.allclose(back.flux, lc.flux, rtol=1e-15) and np.allclose(back.flux_err, 1e-4)


# ---------------------------------------------------------------- LCSG
LCSG_TEXT = """# PLATO LCSG light curve
# #star_id = 1234
# #magnitude = 9.25
# #camera_group = north
# time [days], flux, flag
0.0,1.0001,0
0.1,0.9999,0
0.2,0.9990,1
0.3,1.0000,0
"""


@pytest.mark.parametrize("gzipped", [False, True])
def test_lcsg_csv_with_metadata(tmp_path, gzipped):
    data = LCSG_TEXT.encode()
    path = tmp_path / "plato_bright_1234.csv"
    path.write_bytes(gzip.compress(data) if gzipped else data)
    assert detect_format(path) == "lcsg"
    lc = read_lightcurve(path)
    assert lc.time.tolist() == [0.0, 0.1, 0.2, 0.3]
    assert lc.flags.tolist() == [0, 0, 1, 0]
    assert lc.meta["star_id"] == 1234 and type(lc.meta["star_id"]) is int
    assert lc.meta["magnitude"] == 9.25 and lc.meta["camera_group"] == "north"


def test_lcsg_without_metadata_is_recognised_by_its_flag_column(tmp_path):
    path = tmp_path / "x.txt"
    path.write_text("0.0,1.0,0\n0.1,1.0,1\n0.2,1.0,0\n")
    assert detect_format(path) == "lcsg"
    assert read_lightcurve(path).flags.tolist() == [0, 1, 0]


def test_lcsg_sample(functions_dir):
    lc = read_lightcurve(functions_dir / "ingest_external_lcs/sample/lcsg_example.csv")
    assert lc.meta["source_format"] == "lcsg" and lc.meta["orbital_period"] == 2.5
    assert lc.flags.sum() == 3


# ---------------------------------------------------------------- mission FITS
def _independent_fits_read(path, quality_column):
    with fits.open(path) as hdul:
        data = hdul[1].data
        time = np.array(data["TIME"], float)
        flux = np.array(data["PDCSAP_FLUX"], float)
        quality = np.array(data[quality_column])
    has_time = np.isfinite(time)
    time, flux, quality = time[has_time], flux[has_time], quality[has_time]
    bad = (quality != 0) | ~np.isfinite(flux)
    return time, flux / np.median(flux[~bad]), bad


@pytest.mark.parametrize("name, quality, ident, mission", [
    (TESS_WASP126, "QUALITY", ("ticid", 25155310), "TESS"),
    (KEPLER_10, "SAP_QUALITY", ("keplerid", 11904151), "Kepler"),
])
def test_mission_fits(real_dir, name, quality, ident, mission):
    path = real_dir / name
    assert detect_format(path) == "mission"
    lc = read_lightcurve(path)
    time, flux, bad = _independent_fits_read(path, quality)
    assert np.array_equal(lc.time, time)
    assert np.array_equal(lc.flags.astype(bool), bad)
    good = ~bad
    # normalised by the median good flux (float32 data: tolerance 1e-6)
    assert np.allclose(lc.flux[good], flux[good], rtol=1e-6)
    assert np.median(lc.flux[good]) == pytest.approx(1.0, abs=1e-6)
    assert lc.meta[ident[0]] == ident[1] and lc.meta["telescop"] == mission
    assert lc.meta["flux_column"] == "PDCSAP_FLUX" and lc.meta["flux_normalisation"] > 0
    assert lc.meta["time_system"] == ("BTJD" if mission == "TESS" else "BKJD")
    assert lc.flux_err is not None and np.isfinite(lc.flux_err[good]).all()


def test_mission_fits_falls_back_to_sap_flux(tmp_path, real_dir):
    with fits.open(real_dir / KEPLER_10) as hdul:
        hdul[1].data["PDCSAP_FLUX"][:] = np.nan
        hdul.writeto(tmp_path / "sap_only.fits")
    lc = read_lightcurve(tmp_path / "sap_only.fits")
    assert lc.meta["flux_column"] == "SAP_FLUX" and lc.good_mask().sum() > 3000


def test_gzipped_mission_fits(tmp_path, functions_dir):
    sample = functions_dir / "ingest_external_lcs/sample/tess_wasp126_first_3.5d.fits"
    gz = tmp_path / "sample.fits.gz"
    gz.write_bytes(gzip.compress(sample.read_bytes()))
    a, b = read_lightcurve(sample), read_lightcurve(gz)
    assert np.array_equal(a.flux, b.flux) and a.meta["ticid"] == b.meta["ticid"] == 25155310


# ---------------------------------------------------------------- text tables
def test_k2_tls_csv_without_header(real_dir):
    path = real_dir / K2_3
    assert detect_format(path) == "table"
    lc = read_lightcurve(path)
    assert len(lc) == 3632 and lc.flux_err is None
    assert lc.time[0] == pytest.approx(1977.26244947) and lc.flux[0] == pytest.approx(1.00531531)


def test_table_with_header_picks_columns_by_name(tmp_path):
    path = tmp_path / "t.dat"
    path.write_text("# comment\nflux   bjd   err  extra\n1.0 10.0 0.1 5\n1.1 10.5 0.2 5\n"
                    "# trailing comment\n0.9 11.0 0.1 5\n")
    lc = read_lightcurve(path)
    assert lc.time.tolist() == [10.0, 10.5, 11.0]
    assert lc.flux.tolist() == [1.0, 1.1, 0.9] and lc.flux_err.tolist() == [0.1, 0.2, 0.1]


def test_table_time_in_seconds_by_header(tmp_path):
    path = tmp_path / "t.csv"
    path.write_text("time [s],flux\n0,1\n86400,1\n")
    assert read_lightcurve(path).time.tolist() == [0.0, 1.0]


def test_whitespace_table_three_columns(tmp_path):
    path = tmp_path / "t.txt"
    path.write_text("1 1.0 0.01\n2 1.0 0.02\n3 1.0 0.03\n")
    lc = read_lightcurve(path)
    assert lc.meta["source_format"] == "table" and lc.flux_err.tolist() == [0.01, 0.02, 0.03]


# ---------------------------------------------------------------- product format
def test_product_round_trip_keeps_values_and_types(tmp_path):
    meta = {"orbital_period": 50.0, "pixels_in_transit": 95, "mode": "main_sequence",
            "enable_transits": True, "impact_parameter": None, "mes": float("inf"),
            "t0": 1, "a_rather_long_metadata_key_name": "x" * 150, "OBJECT": "TIC 1",
            "note": "caf\u00e9\nline two", "empty": ""}
    lc = LightCurve(np.arange(20) * 0.01, np.linspace(0.99, 1.01, 20), np.full(20, 1e-3),
                    np.arange(20) % 5 == 0, meta)
    path = write_lightcurve(lc, tmp_path / "lc.fits")
    assert detect_format(path) == "product"
    back = read_lightcurve(path)
    assert np.array_equal(back.time, lc.time) and np.array_equal(back.flux, lc.flux)
    assert np.array_equal(back.flux_err, lc.flux_err) and np.array_equal(back.flags, lc.flags)
    for key, value in meta.items():
        assert back.meta[key] == value and type(back.meta[key]) is type(value), key
    assert back.meta["source_format"] == "product"


def test_product_layout(tmp_path, lc_factory):
    path = write_lightcurve(lc_factory(n=5, meta={"orbital_period": 3.5}), tmp_path / "x.fits")
    with fits.open(path) as hdul:
        assert hdul[0].header["EASFMT"] == 1
        table = hdul["LIGHTCURVE"]
        assert table.header["EASFMT"] == 1
        assert table.columns.names == ["TIME", "FLUX", "FLUX_ERR", "FLAG"]
        assert table.columns["TIME"].unit == "d"
        assert table.header["orbital_period"] == 3.5


def test_product_without_errors_and_gzipped(tmp_path, lc_factory):
    lc = lc_factory(n=10)
    back = read_lightcurve(write_lightcurve(lc, tmp_path / "x.fits.gz"))
    assert back.flux_err is None and np.array_equal(back.flux, lc.flux)


def test_product_keeps_the_origin_of_an_ingested_file(tmp_path, real_dir):
    lc = read_lightcurve(real_dir / K2_3)
    back = read_lightcurve(write_lightcurve(lc, tmp_path / "k2.fits"))
    assert back.meta["source_file"] == K2_3 and back.meta["source_format"] == "table"


def test_write_is_atomic_and_leaves_no_temporary_file(tmp_path, lc_factory):
    target = tmp_path / "out.fits"
    target.write_bytes(b"old")
    write_lightcurve(lc_factory(n=5), target)
    assert detect_format(target) == "product"
    assert [p.name for p in tmp_path.iterdir()] == ["out.fits"]


def test_product_rejects_reserved_metadata(tmp_path, lc_factory):
    with pytest.raises(ValueError, match="NAXIS"):
        write_lightcurve(lc_factory(n=5, meta={"NAXIS": 3}), tmp_path / "x.fits")
    assert not (tmp_path / "x.fits").exists()


# ---------------------------------------------------------------- recognition by content
def test_detection_uses_content_not_file_name(tmp_path, real_dir, demo_superearth, lc_factory):
    fits_as_txt = tmp_path / "looks_like.txt"
    shutil.copy(real_dir / TESS_WASP126, fits_as_txt)
    assert detect_format(fits_as_txt) == "mission"
    assert read_lightcurve(fits_as_txt).meta["ticid"] == 25155310

    product_as_csv = write_lightcurve(lc_factory(n=5), tmp_path / "product.csv")
    assert detect_format(product_as_csv) == "product"

    csv_as_fits = tmp_path / "table.fits"
    shutil.copy(real_dir / K2_3, csv_as_fits)
    assert detect_format(csv_as_fits) == "table"

    prototype_as_dat = tmp_path / "demo.dat"
    shutil.copy(demo_superearth, prototype_as_dat)
    assert detect_format(prototype_as_dat) == "prototype"


def test_forced_format(real_dir):
    lc = read_lightcurve(real_dir / K2_3, fmt="table")
    assert lc.meta["source_format"] == "table"
    with pytest.raises(ValueError, match="recognised formats"):
        read_lightcurve(real_dir / K2_3, fmt="nope")
    assert set(FORMATS) == {"product", "mission", "prototype", "lcsg", "table"}
