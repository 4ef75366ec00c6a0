"""The ``ingest_external_lcs`` task: any supported light-curve file -> a checked LightCurve."""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Mapping

import numpy as np

from eas_runtime.lightcurve import FormatError, LightCurve, read_lightcurve
from eas_runtime.lightcurve._fits import reserved_meta_keys


def ingest(path: str | os.PathLike, *, metadata: Mapping[str, Any] | None = None,
           fmt: str | None = None) -> LightCurve:
    """Read ``path`` (format recognised from its content unless ``fmt`` is given) and check it.

    The result is ready to be written in the product format: at least one sample, finite
    and strictly increasing times, at least one good sample, metadata keys the product
    format can hold. ``metadata`` (for example an LCSG catalogue row or a prototype
    ``.metadata.cfg``) wins over metadata found in the file.

    Raises
    ------
    FormatError
        Naming the file and the defect.
    """
    path = Path(path)
    lc = read_lightcurve(path, fmt=fmt, metadata=metadata)
    if not lc.good_mask().any():
        raise FormatError(path, f"none of the {len(lc)} samples is good "
                                "(flag 0 with a finite flux)")
    if lc.flux_err is not None and not np.isfinite(lc.flux_err[lc.good_mask()]).any():
        lc = LightCurve(lc.time, lc.flux, None, lc.flags, lc.meta)
    reserved = reserved_meta_keys(lc.meta)
    if reserved:
        raise FormatError(path, f"metadata key(s) {reserved} are reserved by the product format")
    return lc
