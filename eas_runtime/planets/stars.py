"""Stars, not files: the products and candidates of each star (``products.star_id``, set when
an attempt records its outputs; the catalogue's ``star_id``).

:func:`stars` lists the stars with their counts; :func:`star` gives one star's segments (the
ingested light curves, with mission, segment and time system from their metadata), every
product of it, its candidates and the jobs that made them.

A star's ``star_id`` is the designation ingest recorded (``TIC 38846515``, or whatever the upload
named it); its ``name`` is the object name the light curves carry (FITS OBJECT, the upload's
``object``), else the catalogue's ``star_name``, else empty. :func:`star_names` gives both for
any set of stars in one query each; :func:`star_of_keys` the star of a task's files.
"""
from __future__ import annotations

from typing import Any

from sqlalchemy import Text, case, cast, func, or_, select

from eas_runtime.db import metadata as md
from eas_runtime.db.models import CatalogueEntry, MetadataItem, Product, ProductVersion, Task
from eas_runtime.diagnostics import DiagnosticsError, NotFound
from eas_runtime.diagnostics._common import check_page, iso, paged

from .names import PLANET

#: Metadata of a light-curve version shown per segment.
SEGMENT_KEYS = ("mission", "segment", "object", "time_system", "time_reference_bjd",
                "source_file", "source_format", "n_samples", "warnings")


def star_names(s, star_ids) -> dict[str, str]:
    """``{star_id: name}`` of the stars that have a name other than their id (see module);
    two queries whatever the number of stars."""
    ids = sorted({i for i in star_ids if i})
    names: dict[str, str] = {}
    if not ids:
        return names
    for star_id, value in s.execute(
            select(Product.star_id, MetadataItem.value)
            .join(ProductVersion, ProductVersion.product_id == Product.id)
            .join(MetadataItem, (MetadataItem.owner_kind == "version")
                  & (MetadataItem.owner_id == ProductVersion.id))
            .where(Product.star_id.in_(ids), MetadataItem.key == "object")
            .order_by(ProductVersion.id)):
        text = str(value or "").strip()
        if text and text != star_id:
            names.setdefault(star_id, text)
    missing = [i for i in ids if i not in names]
    if missing:
        for star_id, name in s.execute(select(CatalogueEntry.star_id, CatalogueEntry.star_name)
                                       .where(CatalogueEntry.star_id.in_(missing),
                                              CatalogueEntry.star_name != "")
                                       .order_by(CatalogueEntry.id)):
            if name != star_id:
                names.setdefault(star_id, name)
    return names


def star_of_keys(db, keys) -> dict[str, str] | None:
    """``{"star_id", "name"}`` of the first of the files ``keys`` that names a star, or None."""
    keys = list(keys)
    if not keys:
        return None
    with db.read() as s:
        found = dict(s.execute(select(Product.key, Product.star_id)
                               .where(Product.key.in_(keys), Product.star_id != "")).all())
        star_id = next((found[k] for k in keys if k in found), None)
        if star_id is None:
            return None
        return {"star_id": star_id, "name": star_names(s, [star_id]).get(star_id, "")}


def stars(db, *, search: str | None = None, page: int = 0, page_size: int = 50) -> dict:
    """Stars with products, by identifier: ``star_id``, ``name``, ``products``, ``lightcurves``,
    ``planet_candidates``, ``false_positives``, ``updated`` (newest product). ``search`` keeps
    the stars whose identifier or name contains it (any case)."""
    offset, limit = check_page(page, page_size)
    if search is not None and len(search) > 200:
        raise DiagnosticsError("search must be at most 200 characters")
    P = Product
    with db.read() as s:
        base = select(P.star_id).where(P.star_id != "")
        if search:
            needle = search.lower()
            named = (select(P.star_id).join(ProductVersion, ProductVersion.product_id == P.id)
                     .join(MetadataItem, (MetadataItem.owner_kind == "version")
                           & (MetadataItem.owner_id == ProductVersion.id))
                     .where(MetadataItem.key == "object",
                            func.lower(cast(MetadataItem.value, Text)).contains(needle, autoescape=True)))
            catalogued = select(CatalogueEntry.star_id).where(
                func.lower(CatalogueEntry.star_name).contains(needle, autoescape=True))
            base = base.where(or_(func.lower(P.star_id).contains(needle, autoescape=True),
                                  P.star_id.in_(named), P.star_id.in_(catalogued)))
        total = s.scalar(select(func.count()).select_from(base.distinct().subquery()))
        rows = s.execute(
            select(P.star_id, func.count(P.id), func.max(P.created_at),
                   func.sum(case((P.semantic_type == "lightcurve", 1), else_=0)))
            .where(P.star_id.in_(base.scalar_subquery()))
            .group_by(P.star_id).order_by(P.star_id).offset(offset).limit(limit)).all()
        ids = [r[0] for r in rows]
        verdicts: dict[tuple[str, str], int] = {}
        for star_id, verdict, n in s.execute(
                select(CatalogueEntry.star_id, CatalogueEntry.verdict, func.count(CatalogueEntry.id))
                .where(CatalogueEntry.star_id.in_(ids))
                .group_by(CatalogueEntry.star_id, CatalogueEntry.verdict)).all():
            verdicts[(star_id, verdict)] = n
        names = star_names(s, ids)
        items = [{"star_id": sid, "name": names.get(sid, ""), "products": int(n), "updated": iso(updated),
                  "lightcurves": int(lcs or 0),
                  "planet_candidates": verdicts.get((sid, PLANET), 0),
                  "false_positives": sum(v for (k, verdict), v in verdicts.items()
                                         if k == sid and verdict != PLANET)}
                 for sid, n, updated, lcs in rows]
        return paged(items, int(total or 0), page, page_size)


def star(db, star_id: str) -> dict[str, Any]:
    """One star: ``segments`` (ingested light curves and their metadata), ``products`` (every
    file of the star with its latest version), ``candidates`` (catalogue rows) and ``jobs``."""
    from .catalogue import _row

    with db.read() as s:
        products = s.execute(
            select(Product.id, Product.key, Product.semantic_type, Product.generator_task_id,
                   Task.task_type, Task.job_id)
            .outerjoin(Task, Task.id == Product.generator_task_id)
            .where(Product.star_id == star_id).order_by(Product.key)).all()
        entries = s.scalars(select(CatalogueEntry).where(CatalogueEntry.star_id == star_id)
                            .order_by(CatalogueEntry.snr.desc(), CatalogueEntry.id)).all()
        if not products and not entries:
            raise NotFound(f"no products or candidates of star {star_id!r}")
        latest = dict(s.execute(
            select(ProductVersion.product_id, func.max(ProductVersion.id))
            .where(ProductVersion.product_id.in_([p.id for p in products]))
            .group_by(ProductVersion.product_id)).all())
        versions = {v.id: v for v in s.scalars(select(ProductVersion).where(
            ProductVersion.id.in_(list(latest.values()))))}
        metas = md.get_metadata_many(s, "version", [latest[p.id] for p in products
                                                     if p.task_type == "ingest_external_lcs"
                                                     and p.id in latest])
        files, segments = [], []
        for p in products:
            v = versions.get(latest.get(p.id))
            item = {"key": p.key, "semantic_type": p.semantic_type, "task_id": p.generator_task_id,
                    "task_type": p.task_type, "job_id": p.job_id,
                    "version_id": v.id if v else None, "passed_qc": bool(v.passed_qc) if v else None,
                    "created": iso(v.created_at) if v else None, "size": v.size if v else None}
            files.append(item)
            if v is not None and v.id in metas:
                meta = metas[v.id]
                segments.append({**item, **{k: meta.get(k) for k in SEGMENT_KEYS}})
        segments.sort(key=lambda x: (str(x.get("segment") or ""), x["created"] or ""))
        missions = sorted({str(x["mission"]) for x in segments if x.get("mission")})
        names = sorted({str(x["object"]) for x in segments if x.get("object")})
        name = star_names(s, [star_id]).get(star_id, "")
        return {"star_id": star_id, "name": name, "missions": missions, "names": names,
                "segments": segments, "products": files,
                "candidates": [_row(e) for e in entries],
                "jobs": sorted({f["job_id"] for f in files if f["job_id"] is not None}
                               | {e.job_id for e in entries if e.job_id is not None})}
