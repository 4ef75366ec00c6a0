"""Text tables as astronomers write them: named columns (a header line, commented or not), text
columns and a selection on one, the time system, and uncertainties that are missing, zero or a
placeholder. One test per rule of the README's light-curve formats table."""
from __future__ import annotations

import numpy as np
import pytest

from eas_runtime.lightcurve import FormatError, read_lightcurve
from eas_runtime.task_api import ParameterError
from functions.ingest_external_lcs.science import fill_uncertainties, ingest, point_to_point_scatter

REAL = "tls_EPIC206154641.csv"


def _write(tmp_path, text: str, name: str = "lc.csv"):
    path = tmp_path / name
    path.write_text(text)
    return path


def _rows(n: int = 50, *, err: float | None = 0.002, seed: int = 1) -> list[tuple[float, float, float]]:
    rng = np.random.default_rng(seed)
    t = np.arange(n) * 0.02
    return [(ti, 1 + rng.normal(0, 0.002), err if err is not None else 0.0) for ti in t]


def test_a_commented_header_names_the_columns(tmp_path):
    """``# time,flux,flux_err`` before the data: its columns by name, not LCSG with the error
    column read as flags (the third column here is all 1.0, as LCSG flags could be)."""
    text = "# time,flux,flux_err\n" + "".join(f"{t},{f},1.0\n" for t, f, _ in _rows())
    lc = read_lightcurve(_write(tmp_path, text))
    assert lc.meta["source_format"] == "table" and lc.meta["columns"] == "time,flux,flux_err"
    assert np.all(lc.flux_err == 1.0) and not lc.flags.any()


def test_columns_are_found_by_name_in_any_order(tmp_path):
    text = "flux, e_flux, BTJD\n" + "".join(f"{f},{e},{t}\n" for t, f, e in _rows())
    lc = read_lightcurve(_write(tmp_path, text))
    assert lc.time[1] == pytest.approx(0.02) and np.all(lc.flux_err == 0.002)
    assert lc.meta["time_system"] == "BTJD" and lc.meta["time_reference_bjd"] == 2457000.0


def test_an_archive_export_with_bjd_tdb_and_relative_flux(tmp_path):
    """An observer's export: a comment line, BJD_TDB in full Julian days, rel_flux and its
    rel_flux_err, the time column not first."""
    text = ("# Kepler-62, quarter 13\nrel_flux,BJD_TDB,rel_flux_err\n"
            + "".join(f"{f},{t + 2456015.0},{e}\n" for t, f, e in _rows()))
    lc = read_lightcurve(_write(tmp_path, text))
    assert lc.time[1] == pytest.approx(2456015.02) and np.all(lc.flux_err == 0.002)
    assert lc.meta["time_system"] == "BJD" and lc.meta["time_reference_bjd"] == 0.0


def test_columns_chosen_by_name_or_position_and_errors_ignored(tmp_path):
    text = "a b c d\n" + "".join(f"{t} 7 {f} {e}\n" for t, f, e in _rows())
    by_name = read_lightcurve(_write(tmp_path, text), options={"columns": {"time": "a", "flux": "c",
                                                                           "flux_err": "d"}})
    by_position = read_lightcurve(_write(tmp_path, text), options={"columns": {"time": 0, "flux": 2,
                                                                               "flux_err": None}})
    assert np.array_equal(by_name.flux, by_position.flux) and by_position.flux_err is None
    assert np.all(by_name.flux_err == 0.002)
    with pytest.raises(FormatError, match=r"columns.flux: no column named 'fluxx'; the header names"):
        read_lightcurve(_write(tmp_path, text), options={"columns": {"flux": "fluxx"}})
    with pytest.raises(FormatError, match=r"column 9 \(0-based\) does not exist; the table has 4"):
        read_lightcurve(_write(tmp_path, text), options={"columns": {"flux": 9}})


def test_a_text_column_is_allowed_and_a_selection_keeps_its_rows(tmp_path):
    """A table mixing space- and ground-based rows (an instrument column of text)."""
    lines = ["time,flux,flux_err,instrument"]
    for i, (t, f, e) in enumerate(_rows(60)):
        lines.append(f"{t},{f},{e},{'K2' if i % 3 else 'LCO'}")
    path = _write(tmp_path, "\n".join(lines) + "\n")
    everything = read_lightcurve(path)
    assert len(everything) == 60
    k2 = read_lightcurve(path, options={"select": {"instrument": "K2"}})
    assert len(k2) == 40 and k2.meta["selected_rows"] == 40 and k2.meta["rows_in_file"] == 60
    both = read_lightcurve(path, options={"select": {"instrument": ["K2", "LCO"]}})
    assert len(both) == 60
    with pytest.raises(FormatError, match=r"select 'instrument' = 'TESS' keeps no row; the column holds "
                                          r"\['K2', 'LCO'\]"):
        read_lightcurve(path, options={"select": {"instrument": "TESS"}})


def test_text_in_a_time_flux_or_error_column_is_named(tmp_path):
    text = "time,flux,flux_err\n0,1,0.1\n0.1,1,0.1\n0.2,bad,0.1\n"
    with pytest.raises(FormatError, match=r"non-numeric cell 'bad' at line 4, column 2, in the flux "
                                          r"column 'flux'"):
        read_lightcurve(_write(tmp_path, text))


def test_time_system_offset_and_unit(tmp_path):
    rows = "".join(f"{t},{f}\n" for t, f, _ in _rows())
    plain = _write(tmp_path, "time,flux\n" + rows)
    lc = read_lightcurve(plain, options={"time_system": "BJD", "time_offset": 2450000})
    assert lc.meta["time_system"] == "BJD" and lc.meta["time_reference_bjd"] == 2450000.0
    assert lc.time[1] == pytest.approx(0.02)          # the times are kept as in the file
    kepler = read_lightcurve(_write(tmp_path, "bkjd,flux\n" + rows, "kepler.csv"))
    assert kepler.meta["time_system"] == "BKJD" and kepler.meta["time_reference_bjd"] == 2454833.0
    seconds = read_lightcurve(plain, options={"time_unit": "s"})
    assert seconds.time[1] == pytest.approx(0.02 / 86400)
    with pytest.raises(ParameterError, match="'time_offset' needs 'time_system'"):
        read_lightcurve(plain, options={"time_offset": 2450000})


@pytest.mark.parametrize("options, message", [
    ({"colums": {}}, r"unknown reader option\(s\) \['colums'\]"),
    ({"columns": {"flux": True}}, "'columns.flux' must be a column name or a 0-based position"),
    ({"columns": {"mag": "x"}}, "option 'columns' must map some of"),
    ({"select": {"instrument": []}}, "'select.instrument' must be a value or a non-empty list"),
    ({"time_system": "TDB"}, "'time_system' must be one of"),
    ({"time_offset": float("nan"), "time_system": "BJD"}, "'time_offset' must be a finite number"),
    ({"time_unit": "h"}, "'time_unit' must be one of"),
])
def test_bad_reader_options_are_parameter_errors_that_name_them(tmp_path, options, message):
    path = _write(tmp_path, "time,flux\n0,1\n1,1\n")
    with pytest.raises(ParameterError, match=message):
        read_lightcurve(path, options=options)


def test_reader_options_do_not_apply_to_fits(shared_dir):
    path = shared_dir / "data" / "real" / "kplr009002278-2012179063303_llc.fits"
    with pytest.raises(ParameterError, match="apply to text tables; kplr009002278"):
        read_lightcurve(path, options={"time_system": "BJD"})


def test_point_to_point_scatter_is_the_white_noise_under_a_trend_and_transits():
    """Within 5 % of the injected sigma, with a 1 % trend and 1 % deep transits on 10 % of the
    samples (1.4826 MAD of successive differences / sqrt 2)."""
    rng = np.random.default_rng(7)
    t = np.linspace(0, 30, 20000)
    flux = 1 + 0.01 * np.sin(t / 5) + rng.normal(0, 300e-6, t.size)
    flux[(t % 3) < 0.3] -= 0.01
    assert point_to_point_scatter(flux) == pytest.approx(300e-6, rel=0.05)


@pytest.mark.parametrize("column, what", [("", "missing"), (",0", "all zero"), (",1.0", "one constant value (1)"),
                                          (",0.001", "one constant value (0.001)")])
def test_missing_zero_or_placeholder_uncertainties_are_replaced_by_the_scatter(shared_dir, tmp_path, column, what):
    """The real K2 light curve with no error column, a column of zeros, or a placeholder
    (1.0: S/N 0.005 for a real planet before): the same estimated uncertainty each time."""
    source = shared_dir / "data" / "real" / REAL
    lines = [line + column for line in source.read_text().splitlines() if line.strip()]
    lc = ingest(_write(tmp_path, "\n".join(lines) + "\n", "k2.csv"),
                options={"columns": {"time": 0, "flux": 1, "flux_err": 2 if column else None}})
    reference = point_to_point_scatter(np.asarray(lc.flux))
    assert np.all(lc.flux_err == reference) and 20e-6 < reference < 200e-6
    assert f"uncertainties {what}: replaced by the robust point-to-point scatter" in lc.meta["warnings"]
    assert lc.meta["flux_err_source"] == "point-to-point scatter"


def test_real_varying_uncertainties_are_kept(shared_dir):
    lc = ingest(shared_dir / "data" / "real" / "kplr009002278-2012179063303_llc.fits")
    assert "flux_err_source" not in lc.meta and np.ptp(lc.flux_err[lc.good_mask()]) > 0


def test_a_flux_without_scatter_keeps_unknown_uncertainties():
    from eas_runtime.lightcurve import LightCurve
    flat = fill_uncertainties(LightCurve(np.arange(10.0), np.ones(10)))
    assert flat.flux_err is None and "the flux has no scatter: left unknown" in flat.meta["warnings"]


@pytest.mark.parametrize("name, system, reference, target, n", [
    ("lightkurve_tess_tic38846515.fits", "BTJD", 2457000.0, 38846515, 3000),
    ("lightkurve_kepler_kic9002278.fits", "BKJD", 2454833.0, 9002278, 1500),
])
def test_files_written_by_lightkurve(name, system, reference, target, n):
    """``lightkurve.LightCurve.to_fits()`` files (lightkurve 2.6.0, from the real TESS and
    Kepler files of examples/real_data/lightcurves/: ``lk.read(f).remove_nans()[:n]``, the TESS one
    flattened): FLUX and FLUX_ERR, no BJDREFI, the time system in the TIME column's unit."""
    from pathlib import Path
    lc = ingest(Path(__file__).parent / "fixtures" / name)
    assert len(lc) == n and lc.meta["source_format"] == "mission" and lc.meta["flux_column"] == "FLUX"
    assert lc.meta["time_system"] == system and lc.meta["time_reference_bjd"] == reference
    assert int(lc.meta["targetid"] if "targetid" in lc.meta else lc.meta["object"]) == target
    assert np.ptp(lc.flux_err[lc.good_mask()]) > 0 and "flux_err_source" not in lc.meta
