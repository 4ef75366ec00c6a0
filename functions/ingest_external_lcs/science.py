"""The ``ingest_external_lcs`` task: light-curve files of any supported format -> products.

Two modes:

- input ``lightcurve``: that one object becomes the output ``lightcurve`` (how watch rules and
  most jobs use it);
- parameter ``input_path``, a glob pattern of object keys (the prototype's mode, e.g.
  ``lightcurves_v2/csvs/bright/plato_bright*``; ``*`` and ``?`` stay within one folder): every
  matching object becomes a product ``lightcurve_00000``, ``lightcurve_00001``... named after
  the object and its content (:func:`product_name`), so that ingesting the same objects again
  adds nothing (the prototype duplicated them).

``lc_type`` forces a reader (``lcsg``, ``prototype``, ``mission``, ``table``, ``product``);
by default (``auto``) the format is recognised from the content. The text-table reader options
(``columns``, ``select``, ``time_system``, ``time_offset``, ``time_unit``) are task parameters
too. Uncertainties that are missing, all zero or constant are replaced by the flux's robust
point-to-point scatter, with a warning on the product (:func:`fill_uncertainties`).
"""
from __future__ import annotations

import fnmatch
import hashlib
import os
import re
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any, Callable, Iterable, Mapping

import numpy as np

from eas_runtime.lightcurve import (FORMATS, FormatError, LightCurve, read_lightcurve,
                                    write_lightcurve)
from eas_runtime.lightcurve._common import add_warning
from eas_runtime.lightcurve._fits import reserved_meta_keys
from eas_runtime.lightcurve.search import robust_sigma
from eas_runtime.lightcurve.stars import star_identity
from eas_runtime.task_api import InputError, ParameterError


def reader_options(params: Mapping[str, Any]) -> dict[str, Any]:
    """The text-table reader options among a task's parameters (checked: ParameterError)."""
    from eas_runtime.lightcurve._text import TABLE_OPTIONS, check_table_options
    return check_table_options({k: params[k] for k in TABLE_OPTIONS if params.get(k) is not None})


def point_to_point_scatter(flux: np.ndarray) -> float:
    """Robust per-sample scatter of ``flux`` (finite values, in order): 1.4826 x the median
    absolute deviation of successive differences / sqrt(2); their standard deviation / sqrt(2)
    when that MAD is 0 (coarsely quantised values, where most differences are equal). 0 for a
    flat or too short series."""
    diff = np.diff(flux[np.isfinite(flux)])
    if diff.size < 2:
        return 0.0
    sigma = robust_sigma(diff)      # differences: blind to slow trends; the median: to transits
    return (sigma if sigma > 0 else float(np.std(diff))) / float(np.sqrt(2.0))


def fill_uncertainties(lc: LightCurve) -> LightCurve:
    """Uncertainties that are missing, all zero or one constant value (a placeholder, such as a
    column of 1.0 or 0.001) are replaced by the robust scatter of the flux
    (:func:`point_to_point_scatter`), with a warning on the light curve that gives both. A
    flux without scatter (a noiseless synthesis) keeps unknown uncertainties."""
    good = lc.good_mask()
    err = None if lc.flux_err is None else lc.flux_err[good]
    if err is not None:
        err = err[np.isfinite(err)]
    if err is not None and err.size and np.any(err != 0) and np.ptp(err) > 0:
        return lc
    what = ("missing" if err is None or not err.size else "all zero" if not np.any(err)
            else f"one constant value ({err[0]:.6g})")
    sigma = point_to_point_scatter(np.asarray(lc.flux[good], dtype=np.float64))
    meta = dict(lc.meta)
    if not sigma > 0:
        if err is not None and err.size and np.any(err):
            return lc                     # a constant error beside a flat flux: nothing better
        add_warning(meta, f"uncertainties {what} and the flux has no scatter: left unknown")
        return LightCurve(lc.time, lc.flux, None, lc.flags, meta)
    add_warning(meta, f"uncertainties {what}: replaced by the robust point-to-point scatter of the "
                      f"flux, {sigma:.6g} (1.4826 MAD of successive differences / sqrt 2)")
    meta["flux_err_source"] = "point-to-point scatter"
    return LightCurve(lc.time, lc.flux, np.full(len(lc), sigma), lc.flags, meta)


def ingest(path: str | os.PathLike, *, metadata: Mapping[str, Any] | None = None,
           fmt: str | None = None, options: Mapping[str, Any] | None = None) -> LightCurve:
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
    lc = read_lightcurve(path, fmt=fmt, metadata=metadata, options=options)
    if not lc.good_mask().any():
        raise FormatError(path, f"none of the {len(lc)} samples is good "
                                "(flag 0 with a finite flux)")
    if lc.flux_err is not None and not np.isfinite(lc.flux_err[lc.good_mask()]).any():
        lc = LightCurve(lc.time, lc.flux, None, lc.flags, lc.meta)
    lc = fill_uncertainties(lc)
    # the star and the segment of its observation (eas_runtime.lightcurve.stars): what products
    # are grouped by; metadata given with the upload wins
    lc = lc.with_meta(**{k: v for k, v in star_identity(lc.meta, path.name).items()
                         if lc.meta.get(k) in (None, "")})
    reserved = reserved_meta_keys(lc.meta)
    if reserved:
        raise FormatError(path, f"metadata key(s) {reserved} are reserved by the product format")
    return lc


# ---------------------------------------------------------------------- many objects at once
#: ``lc_type`` values: a format name forces that reader; ``auto`` recognises the content.
LC_TYPES = ("auto", *FORMATS)
_WILDCARDS = "*?["


def lc_format(lc_type: Any) -> str | None:
    """The reader to force for ``lc_type`` (None: recognise from the content)."""
    if lc_type is None or lc_type == "auto":
        return None
    if lc_type not in FORMATS:
        raise ParameterError(f"parameter 'lc_type' must be one of {list(LC_TYPES)}, got {lc_type!r}")
    return lc_type


def glob_pattern(input_path: Any) -> str:
    """The object-key pattern of ``input_path`` (a leading '/' means the store root)."""
    if not isinstance(input_path, str) or not input_path.strip("/"):
        raise ParameterError(f"parameter 'input_path' must be a glob pattern of object keys "
                             f"(e.g. 'lightcurves/bright/plato_bright*'), got {input_path!r}")
    pattern = input_path.lstrip("/")
    if ".." in pattern.split("/"):
        raise ParameterError(f"parameter 'input_path' must stay inside the store, got {input_path!r}")
    return pattern


def listing_prefix(pattern: str) -> str:
    """The longest key prefix before the first wildcard (what to list)."""
    cut = min([pattern.find(c) for c in _WILDCARDS if c in pattern] or [len(pattern)])
    return pattern[:cut]


def key_matches(key: str, pattern: str) -> bool:
    """Glob match segment by segment: ``*`` and ``?`` never cross a '/'."""
    keys, pats = key.split("/"), pattern.split("/")
    return len(keys) == len(pats) and all(fnmatch.fnmatchcase(k, p) for k, p in zip(keys, pats))


def product_name(key: str, etag: str) -> str:
    """The file name of the product made from object ``key`` with content ``etag``: the same
    object with the same content always gives the same name (how re-ingesting is noticed)."""
    stem = re.sub(r"(\.(gz|bz2|fits|fit|fts|csv|txt|dat|tbl|lc))+$", "", PurePosixPath(key).name,
                  flags=re.IGNORECASE) or "lightcurve"
    stem = re.sub(r"[^A-Za-z0-9_.-]+", "_", stem)
    where = hashlib.md5(key.encode()).hexdigest()[:6]
    return f"{stem}.{(etag or 'noetag')[:8]}{where}.fits"


@dataclass
class BatchIngest:
    """Outcome of ingesting the objects that match a pattern."""

    outputs: dict[str, Path] = field(default_factory=dict)
    output_metadata: dict[str, dict[str, Any]] = field(default_factory=dict)
    ingested: list[str] = field(default_factory=list)
    skipped: dict[str, str] = field(default_factory=dict)    # source key -> earlier product
    failed: dict[str, str] = field(default_factory=dict)     # source key -> why

    def summary(self, pattern: str) -> dict[str, Any]:
        return {"input_path": pattern, "n_matched": len(self.ingested) + len(self.skipped)
                + len(self.failed), "n_ingested": len(self.ingested),
                "n_skipped": len(self.skipped), "n_failed": len(self.failed),
                "ingested": self.ingested, "skipped": self.skipped, "failed": self.failed}


def ingest_matching(objects: Iterable[tuple[str, str]], fetch: Callable[[str, Path], Any],
                    workdir: Path, *, fmt: str | None = None,
                    earlier: Mapping[str, str] | None = None,
                    options: Mapping[str, Any] | None = None) -> BatchIngest:
    """Ingest every ``(key, etag)`` object; ``fetch(key, dest)`` copies one to a local file.

    An object whose product name (:func:`product_name`) is in ``earlier`` (name -> key of the
    product made before) is skipped: re-ingesting the same content adds no product (the
    prototype registered a duplicate each time). A file that cannot be read is recorded in
    ``failed`` with its defect and the others are still ingested; InputError when every one
    failed.
    """
    earlier = dict(earlier or {})
    out = BatchIngest()
    for key, etag in sorted(objects):
        name = product_name(key, etag)
        if name in earlier:
            out.skipped[key] = earlier[name]
            continue
        local = workdir / "sources" / hashlib.md5(key.encode()).hexdigest()[:12] / PurePosixPath(key).name
        local.parent.mkdir(parents=True, exist_ok=True)
        try:
            fetch(key, local)
            lc = ingest(local, fmt=fmt, options=options).with_meta(source_key=key, source_etag=etag or "")
        except (InputError, KeyError) as exc:
            out.failed[key] = str(exc).replace(str(local), key)
            continue
        output = f"lightcurve_{len(out.outputs):05d}"
        path = workdir / "outputs" / output / name
        path.parent.mkdir(parents=True, exist_ok=True)
        write_lightcurve(lc, path)
        out.outputs[output] = path
        out.output_metadata[output] = dict(lc.meta)
        out.ingested.append(key)
        earlier[name] = key
    if out.failed and not out.outputs and not out.skipped:
        raise InputError("no object could be ingested: " + "; ".join(
            f"{k}: {v}" for k, v in out.failed.items()))
    return out
