"""FITS light curves: Kepler/K2/TESS mission products and the pipeline's own product format.

Product format (``EASFMT = 1``): a primary HDU with no data, then a binary table extension
``LIGHTCURVE`` with columns TIME [d], FLUX, FLUX_ERR (all NaN when unknown) and FLAG, and one
``HIERARCH`` header card per metadata item, keeping the key's case and the value's type.
Strings that FITS cannot hold (non-ASCII, control characters) are stored escaped with the
card comment ``escaped``; non-finite floats are stored as text with the comment ``float``.
"""
from __future__ import annotations

import io
import math
import re
import warnings
from pathlib import Path
from typing import Any

import numpy as np
from astropy.io import fits

from ._common import FormatError, add_warning, build_lightcurve
from ._text import TIME_SYSTEMS
from .model import LightCurve

PRODUCT_VERSION = 1
PRODUCT_EXTNAME = "LIGHTCURVE"
_STRUCTURAL = re.compile(
    r"^(XTENSION|SIMPLE|EXTEND|BITPIX|NAXIS\d*|PCOUNT|GCOUNT|TFIELDS|T[A-Z]+\d+|EXTNAME|EXTVER"
    r"|EASFMT|CHECKSUM|DATASUM|COMMENT|HISTORY|END|)$", re.IGNORECASE)
_ESCAPED, _FLOAT_TEXT = "escaped", "float"
_MISSION_PRIMARY_KEYS = ("OBJECT", "TICID", "KEPLERID", "TARGETID", "MISSION", "TELESCOP", "INSTRUME",
                         "SECTOR", "CAMERA", "CCD", "QUARTER", "CAMPAIGN", "RA_OBJ", "DEC_OBJ",
                         "TESSMAG", "KEPMAG", "TEFF", "RADIUS")
_MISSION_TABLE_KEYS = ("TIMESYS", "TIMEUNIT", "TIMEREF", "BJDREFI", "BJDREFF", "EXPOSURE",
                       "TIMEDEL")


def _open(path: Path, content: bytes) -> tuple[fits.HDUList, list[str]]:
    """Open and fully parse the FITS content; astropy's warnings are returned, not raised.

    astropy decompresses whatever it is given, with no bound: a gzip, bzip2, xz or zip stream
    recognised by its magic bytes, and tile-compressed image HDUs when their data are read. The
    content here is already decompressed within the input limit (:func:`._common.load_bytes`),
    so anything that does not start as FITS is refused (a stream compressed twice, with a format
    forced), and image compression is left off: the readers use binary tables only.
    """
    if not content.startswith(b"SIMPLE"):
        raise FormatError(path, f"not a FITS file: the first card is not 'SIMPLE  =' "
                                f"(starts with {content[:9]!r})")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            hdul = fits.open(io.BytesIO(content), memmap=False, lazy_load_hdus=False,
                             disable_image_compression=True)
            hdul.verify("silentfix")
        except Exception as exc:  # astropy raises many types for a damaged header
            raise FormatError(path, f"corrupt FITS header ({type(exc).__name__}: {exc})") from None
    messages = [str(w.message) for w in caught]
    for message in messages:
        if "truncated" in message.lower():
            raise FormatError(path, f"truncated FITS file ({message})")
    return hdul, messages


def is_product(path: Path, content: bytes) -> bool:
    """True for the pipeline's product format, false for any other FITS file."""
    hdul, _ = _open(path, content)
    with hdul:
        return any(hdu.header.get("EASFMT") is not None for hdu in hdul)


def _column(path: Path, data, name: str) -> np.ndarray:
    try:
        return np.array(data[name], dtype=np.float64)
    except (KeyError, ValueError, TypeError) as exc:
        raise FormatError(path, f"cannot read column {name} ({exc})") from None


def _table_hdu(path: Path, hdul: fits.HDUList, want: str | None = None):
    for hdu in hdul:
        if not isinstance(hdu, fits.BinTableHDU):
            continue
        if want is not None and hdu.name != want:
            continue
        if want is not None or "TIME" in hdu.columns.names:
            return hdu
    what = f"binary table extension {want}" if want else "binary table with a TIME column"
    raise FormatError(path, f"no {what}")


def read_mission(path: Path, content: bytes, meta: dict[str, Any]) -> LightCurve:
    """Kepler/K2/TESS light-curve FITS: PDCSAP_FLUX (else SAP_FLUX, else FLUX: lightkurve's
    ``to_fits``), QUALITY/SAP_QUALITY.

    Rows without a finite time are dropped (counted in ``n_rows_without_time``); a sample is
    flagged 1 where the quality word is non-zero or the flux is not finite. Flux and error are
    divided by the median good flux (``meta['flux_normalisation']``). Times stay in the
    mission's system (BTJD or BKJD, days; see ``time_reference_bjd``).
    """
    hdul, messages = _open(path, content)
    with hdul:
        hdu = _table_hdu(path, hdul)
        names = hdu.columns.names
        data = hdu.data
        if data is None or len(data) == 0:
            raise FormatError(path, "light-curve table has no rows")
        time = _column(path, data, "TIME")
        time_unit = hdu.columns["TIME"].unit or ""
        flux_name = next((n for n in ("PDCSAP_FLUX", "SAP_FLUX", "FLUX") if n in names
                          and np.isfinite(_column(path, data, n)).any()), None)
        if flux_name is None:
            present = [n for n in ("PDCSAP_FLUX", "SAP_FLUX", "FLUX") if n in names]
            raise FormatError(path, "all flux values are NaN or infinite" if present else
                              f"no PDCSAP_FLUX, SAP_FLUX or FLUX column (columns: {names})")
        flux = _column(path, data, flux_name)
        err_name = f"{flux_name}_ERR"
        err = _column(path, data, err_name) if err_name in names else None
        quality_name = next((n for n in ("QUALITY", "SAP_QUALITY") if n in names), None)
        quality = (np.asarray(data[quality_name]) if quality_name
                   else np.zeros(time.size, dtype=np.int32))
        out = dict(meta)
        for key in _MISSION_PRIMARY_KEYS:
            value = hdul[0].header.get(key, hdu.header.get(key))
            if value is not None and not isinstance(value, fits.card.Undefined):
                out[key.lower()] = value
        for key in _MISSION_TABLE_KEYS:
            value = hdu.header.get(key)
            if value is not None and not isinstance(value, fits.card.Undefined):
                out[key.lower()] = value
    telescope = str(out.get("telescop", "")).upper()
    if "bjdrefi" in out:
        out["time_reference_bjd"] = float(out["bjdrefi"]) + float(out.get("bjdreff", 0.0))
        out["time_system"] = "BTJD" if "TESS" in telescope else "BKJD"
    elif str(time_unit).lower() in TIME_SYSTEMS:
        # lightkurve's to_fits writes no BJDREFI: the TIME column's unit (btjd, bkjd) names the
        # system, as a text table's time column name does
        out["time_system"] = str(time_unit).upper()
        out["time_reference_bjd"] = TIME_SYSTEMS[str(time_unit).lower()]
    has_time = np.isfinite(time)
    if not has_time.all():
        out["n_rows_without_time"] = int((~has_time).sum())
    time, flux, quality = time[has_time], flux[has_time], quality[has_time]
    err = None if err is None else err[has_time]
    flags = (quality != 0) | ~np.isfinite(flux)
    good_flux = flux[~flags]
    if good_flux.size == 0:
        raise FormatError(path, f"no sample with {quality_name or 'quality'} 0 and a finite "
                                f"{flux_name}")
    scale = float(np.median(good_flux))
    if not scale > 0:
        raise FormatError(path, f"median {flux_name} is {scale}, cannot normalise")
    out.update(flux_column=flux_name, flux_normalisation=scale)
    for message in messages:
        add_warning(out, message)
    return build_lightcurve(path, time, flux / scale, None if err is None else err / scale,
                            flags, out)


# ---------------------------------------------------------------------- product format
def reserved_meta_keys(meta: dict[str, Any]) -> list[str]:
    """The metadata keys that the product format cannot store (FITS structural keywords)."""
    return [key for key in meta if _STRUCTURAL.match(key)]


def _card_value(value: Any) -> tuple[Any, str]:
    if isinstance(value, float) and not math.isfinite(value):
        return repr(value), _FLOAT_TEXT
    if isinstance(value, str) and not all(32 <= ord(c) < 127 for c in value):
        return value.encode("unicode_escape").decode("ascii"), _ESCAPED
    return value, ""


def _meta_value(card: fits.Card) -> Any:
    value = card.value
    if isinstance(value, fits.card.Undefined):
        return None
    if card.comment == _FLOAT_TEXT and isinstance(value, str):
        return float(value)
    if card.comment == _ESCAPED and isinstance(value, str):
        return value.encode("ascii").decode("unicode_escape")
    return value


def product_bytes(lc: LightCurve) -> bytes:
    """The light curve in the product format, as the bytes of a FITS file."""
    primary = fits.PrimaryHDU()
    primary.header["EASFMT"] = (PRODUCT_VERSION, "PLATO EAS light-curve product format")
    err = lc.flux_err if lc.flux_err is not None else np.full(len(lc), np.nan)
    columns = [
        fits.Column(name="TIME", format="D", unit="d", array=lc.time),
        fits.Column(name="FLUX", format="D", array=lc.flux),
        fits.Column(name="FLUX_ERR", format="D", array=err),
        fits.Column(name="FLAG", format="B", array=lc.flags),
    ]
    table = fits.BinTableHDU.from_columns(columns, name=PRODUCT_EXTNAME)
    table.header["EASFMT"] = (PRODUCT_VERSION, "PLATO EAS light-curve product format")
    for key, value in lc.meta.items():
        if _STRUCTURAL.match(key):
            raise ValueError(f"metadata key {key!r} is reserved by FITS or the product format")
        card_value, comment = _card_value(value)
        try:
            table.header.append(fits.Card(f"HIERARCH {key}", card_value, comment), end=True)
        except (ValueError, TypeError) as exc:
            raise ValueError(f"metadata {key!r} = {value!r} cannot be a FITS card: {exc}") \
                from None
    out = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        fits.HDUList([primary, table]).writeto(out)
    return out.getvalue()


def read_product(path: Path, content: bytes, meta: dict[str, Any]) -> LightCurve:
    """The pipeline's product format (see the module docstring)."""
    hdul, messages = _open(path, content)
    with hdul:
        hdu = _table_hdu(path, hdul, PRODUCT_EXTNAME)
        version = hdu.header.get("EASFMT", hdul[0].header.get("EASFMT"))
        if version != PRODUCT_VERSION:
            raise FormatError(path, f"product format version {version!r}; "
                                    f"this reader knows {PRODUCT_VERSION}")
        data = hdu.data
        if data is None or len(data) == 0:
            raise FormatError(path, "no data rows")
        names = hdu.columns.names
        missing = [n for n in ("TIME", "FLUX", "FLAG") if n not in names]
        if missing:
            raise FormatError(path, f"missing column(s) {missing} in {PRODUCT_EXTNAME}")
        time, flux = _column(path, data, "TIME"), _column(path, data, "FLUX")
        err = _column(path, data, "FLUX_ERR") if "FLUX_ERR" in names else None
        if err is not None and not np.isfinite(err).any():
            err = None
        flags = np.asarray(data["FLAG"])
        stored = {card.keyword: _meta_value(card) for card in hdu.header.cards
                  if not _STRUCTURAL.match(card.keyword)}
    out = {**stored, **meta}
    for message in messages:
        add_warning(out, message)
    return build_lightcurve(path, time, flux, err, flags, out)
