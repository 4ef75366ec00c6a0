"""Malformed files fail with a FormatError whose message names the file and the defect."""
from __future__ import annotations

import gzip
import io

import numpy as np
import pytest

from eas_runtime.lightcurve import FormatError, detect_format, read_lightcurve, write_lightcurve
from functions.ingest_external_lcs.science import ingest

from .conftest import make_lc


def _product_bytes(tmp_path) -> bytes:
    return write_lightcurve(make_lc(n=400), tmp_path / "good.fits").read_bytes()


def _prototype_text(times) -> bytes:
    out = io.StringIO()
    table = np.column_stack([times, np.ones(len(times)), np.zeros(len(times)),
                             np.zeros(len(times))])
    np.savetxt(out, table)
    return out.getvalue().encode()


def _truncated_gzip(tmp_path):
    data = gzip.compress(_prototype_text(np.arange(2000) * 900.0))
    return data[: len(data) // 2]


def _corrupt_fits_header(tmp_path):
    data = bytearray(_product_bytes(tmp_path))
    card = data.index(b"BITPIX")
    data[card:card + 30] = b"BITPIX  = 'not a number'  %%%%"
    return bytes(data)


def _truncated_fits(tmp_path):
    data = _product_bytes(tmp_path)
    return data[: len(data) - 2880]


CASES = {
    # name: (file name, content maker, words the message must contain)
    "truncated gzip": ("lc.gz", _truncated_gzip, ["truncated gzip"]),
    "corrupt gzip": ("lc.gz", lambda p: b"\x1f\x8b\x08\x00garbage-not-deflate" * 3,
                     ["gzip"]),
    "corrupt FITS header": ("lc.fits", _corrupt_fits_header, ["corrupt FITS header"]),
    "truncated FITS": ("lc.fits", _truncated_fits, ["truncated FITS"]),
    "non-numeric cell": ("lc.csv", lambda p: b"0.0,1.0\n0.1,1.0\n# note\n0.2,abc\n0.3,1.0\n",
                         ["non-numeric", "'abc'", "line 4", "column 2"]),
    "ragged row": ("lc.csv", lambda p: b"0.0,1.0\n0.1,1.0,7\n", ["line 2", "columns"]),
    "unsorted times": ("lc.csv", lambda p: b"0.0,1.0\n0.2,1.0\n0.1,1.0\n",
                       ["unsorted", "line 3"]),
    "duplicate times": ("lc.csv", lambda p: b"# c\n0.0,1.0\n0.1,1.0\n0.1,1.0\n",
                        ["duplicate time", "line 3", "line 4"]),
    "unsorted prototype times": ("lc.gz", lambda p: gzip.compress(_prototype_text([0, 900, 450])),
                                 ["unsorted"]),
    "all-NaN flux": ("lc.csv", lambda p: b"0.0,nan\n0.1,nan\n0.2,nan\n", ["NaN"]),
    "empty file": ("lc.csv", lambda p: b"", ["empty file"]),
    "empty gzip": ("lc.gz", lambda p: gzip.compress(b""), ["empty file"]),
    "comments only": ("lc.csv", lambda p: b"# nothing here\n# at all\n", ["unknown format"]),
    "header without data": ("lc.csv", lambda p: b"time,flux\n", ["no data rows"]),
    "single column": ("lc.csv", lambda p: b"1.0\n2.0\n", ["1 column(s); at least 2 needed"]),
    "unknown binary": ("lc.bin", lambda p: bytes(range(256)) * 4,
                       ["unknown format", "product", "mission", "prototype", "lcsg", "table"]),
    "unknown text": ("README", lambda p: b"Just some words\nand more words\n",
                     ["unknown format", "recognised formats"]),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_malformed_file_names_file_and_defect(tmp_path, case):
    name, make, words = CASES[case]
    path = tmp_path / name
    path.write_bytes(make(tmp_path))
    with pytest.raises(FormatError) as caught:
        read_lightcurve(path)
    message = str(caught.value)
    assert str(path) in message and caught.value.path == str(path)
    for word in words:
        assert word in message, (word, message)
    # ingest reports the same defect
    with pytest.raises(FormatError, match=str(path)):
        ingest(path)


def test_missing_file(tmp_path):
    with pytest.raises(FormatError, match="no such file"):
        detect_format(tmp_path / "absent.fits")


def test_format_error_is_a_value_error():
    assert issubclass(FormatError, ValueError)


def test_mission_fits_without_good_samples(tmp_path, real_dir):
    from astropy.io import fits

    with fits.open(real_dir / "kplr011904151-2012179063303_llc.fits") as hdul:
        hdul[1].data["SAP_QUALITY"][:] = 1
        hdul.writeto(tmp_path / "all_bad.fits")
    with pytest.raises(FormatError, match="all_bad.fits: no sample with SAP_QUALITY 0"):
        read_lightcurve(tmp_path / "all_bad.fits")
