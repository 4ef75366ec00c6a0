"""The catalogue of vetted candidates: queries for ``eas candidates`` and the site's
``/candidates``, exports, and the inputs of a candidate's report.

Rows come from the ``candidates`` table (written by the wrapper when a ``vetting`` attempt
succeeds). Filters: ``verdict`` (``pc``/``fp`` or the full words), ``star`` (a part of the star's
identifier or name, any case), ``kind`` (``periodic``/``single``), ``job``, ``min_snr``,
``period_min`` and ``period_max`` [d]. Sorted by one of :data:`SORTS`, strongest first by default.
"""
from __future__ import annotations

import math
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import func, or_, select

from eas_runtime.db.models import (AttemptInput, CatalogueEntry, Product, ProductVersion,
                                   TaskOutput)
from eas_runtime.diagnostics import DiagnosticsError, NotFound
from eas_runtime.diagnostics._common import check_page, paged

from .names import FALSE_POSITIVE, KINDS, PLANET

C = CatalogueEntry
#: Sort keys and their columns.
SORTS = {"snr": C.snr, "period": C.period, "depth": C.depth, "duration": C.duration,
         "star": C.star_id, "verdict": C.verdict, "id": C.id, "job": C.job_id}
VERDICTS = {"pc": PLANET, "fp": FALSE_POSITIVE, PLANET: PLANET, FALSE_POSITIVE: FALSE_POSITIVE}
#: Most rows one export holds.
EXPORT_LIMIT = 100_000


def _number(name: str, value: Any) -> float | None:
    if value is None or value == "":
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        number = math.nan
    if not math.isfinite(number) or number < 0:
        raise DiagnosticsError(f"{name} must be a number >= 0, got {value!r}")
    return number


@dataclass(frozen=True)
class Filters:
    """Checked filters of a catalogue query."""
    verdict: str | None = None
    star: str | None = None
    kind: str | None = None
    job: int | None = None
    min_snr: float | None = None
    period_min: float | None = None
    period_max: float | None = None
    sort: str = "snr"
    ascending: bool = False

    @classmethod
    def of(cls, *, verdict=None, star=None, kind=None, job=None, min_snr=None, period_min=None,
           period_max=None, sort=None, order=None) -> Filters:
        """Filters from user input; DiagnosticsError names a bad one."""
        if verdict:
            if str(verdict).lower() not in VERDICTS:
                raise DiagnosticsError(f"verdict must be pc, fp, '{PLANET}' or "
                                       f"'{FALSE_POSITIVE}', got {verdict!r}")
            verdict = VERDICTS[str(verdict).lower()]
        if kind and kind not in KINDS:
            raise DiagnosticsError(f"kind must be one of {', '.join(KINDS)}, got {kind!r}")
        sort = sort or "snr"
        if sort not in SORTS:
            raise DiagnosticsError(f"sort must be one of {', '.join(SORTS)}, got {sort!r}")
        if order not in (None, "", "asc", "desc"):
            raise DiagnosticsError(f"order must be asc or desc, got {order!r}")
        ascending = order == "asc" if order else sort in ("star", "period", "verdict", "id", "job")
        return cls(verdict=verdict or None, star=(star or None), kind=kind or None,
                   job=job, min_snr=_number("min_snr", min_snr),
                   period_min=_number("period_min", period_min),
                   period_max=_number("period_max", period_max), sort=sort, ascending=ascending)

    def where(self, stmt):
        if self.verdict:
            stmt = stmt.where(C.verdict == self.verdict)
        if self.star:
            text = self.star.lower()       # '%' and '_' match themselves
            stmt = stmt.where(or_(func.lower(C.star_id).contains(text, autoescape=True),
                                  func.lower(C.star_name).contains(text, autoescape=True)))
        if self.kind:
            stmt = stmt.where(C.kind == self.kind)
        if self.job is not None:
            stmt = stmt.where(C.job_id == self.job)
        if self.min_snr is not None:
            stmt = stmt.where(C.snr >= self.min_snr)
        if self.period_min is not None:
            stmt = stmt.where(C.period >= self.period_min)
        if self.period_max is not None:
            stmt = stmt.where(C.period <= self.period_max)
        column = SORTS[self.sort]
        order = column.asc() if self.ascending else column.desc()
        # nulls (a single event's period) last either way, then a stable tie-break
        return stmt.order_by(column.is_(None), order, C.id)


def _row(e: CatalogueEntry) -> dict[str, Any]:
    details = dict(e.details or {})
    return {"id": e.id, "task_id": e.task_id, "attempt_id": e.attempt_id, "job_id": e.job_id,
            "number": e.number, "star_id": e.star_id, "star_name": e.star_name,
            "mission": e.mission, "kind": e.kind, "period": e.period, "epoch": e.epoch,
            "duration": e.duration, "depth": e.depth, "snr": e.snr,
            "transit_count": e.transit_count, "verdict": e.verdict,
            "reasons": list(e.reasons or []), "flags": list(details.get("flags") or []),
            "notes": list(details.get("notes") or []), "lightcurve_key": e.lightcurve_key,
            "created": e.created_at.isoformat() if e.created_at else None,
            "details": details}


def query(db, filters: Filters | None = None, *, page: int = 0,
          page_size: int = 50) -> dict[str, Any]:
    """One page of catalogue rows (``items``, ``page``, ``page_size``, ``total``, ``pages``) and
    ``counts``;
    ``counts`` gives the number of each verdict under the filters (the verdict filter aside)."""
    filters = filters or Filters()
    offset, limit = check_page(page, page_size)
    with db.read() as s:
        total = s.scalar(filters.where(select(func.count(C.id))).order_by(None))
        rows = s.scalars(filters.where(select(C)).offset(offset).limit(limit)).all()
        unfiltered = Filters(**{**filters.__dict__, "verdict": None})
        counts = dict(s.execute(unfiltered.where(select(C.verdict, func.count(C.id)))
                                .order_by(None).group_by(C.verdict)).all())
        return paged([_row(r) for r in rows], int(total or 0), page, page_size, counts=counts)


def export_rows(db, filters: Filters | None = None) -> list[dict[str, Any]]:
    """Flat rows of every match (up to :data:`EXPORT_LIMIT`) for CSV, VOTable or JSON: the
    catalogue columns, reasons and flags joined, and the vetting metrics."""
    filters = filters or Filters()
    with db.read() as s:
        entries = s.scalars(filters.where(select(C)).limit(EXPORT_LIMIT)).all()
        out = []
        for e in entries:
            row = _row(e)
            details = row.pop("details")
            row.pop("created")
            flat = {**row, **{k: v for k, v in details.items()
                              if k not in row and not isinstance(v, (dict, list))}}
            out.append(flat)
        return out


def entry(db, candidate_id: int) -> dict[str, Any]:
    with db.read() as s:
        e = s.get(C, candidate_id)
        if e is None:
            raise NotFound(f"no candidate {candidate_id} in the catalogue")
        return _row(e)


@dataclass(frozen=True)
class ReportInputs:
    """Where a candidate's report reads from: the light-curve version the vetting attempt read
    and the periodogram of the search that made its candidates table (None when unknown)."""
    lightcurve: dict[str, Any] | None
    periodogram: dict[str, Any] | None


def _version(s, version_id: int | None) -> dict[str, Any] | None:
    if version_id is None:
        return None
    v = s.get(ProductVersion, version_id)
    if v is None:
        return None
    return {"id": v.id, "key": v.product.key, "md5": v.etag, "object_version": v.object_version}


def report_inputs(db, row: dict[str, Any]) -> ReportInputs:
    with db.read() as s:
        read = {a.semantic_name: a for a in s.scalars(
            select(AttemptInput).where(AttemptInput.attempt_id == row["attempt_id"]))}
        lightcurve = _version(s, read["lightcurve"].version_id) if "lightcurve" in read else None
        periodogram = None
        if "candidates" in read:
            search_task = s.scalar(select(TaskOutput.task_id)
                                   .where(TaskOutput.key == read["candidates"].key))
            key = s.scalar(select(TaskOutput.key).where(TaskOutput.task_id == search_task,
                                                        TaskOutput.semantic_name == "periodogram"))
            if key is not None:
                version_id = s.scalar(
                    select(ProductVersion.id).join(Product)
                    .where(Product.key == key, ProductVersion.passed_qc.is_(True))
                    .order_by(ProductVersion.id.desc()).limit(1))
                periodogram = _version(s, version_id)
        return ReportInputs(lightcurve=lightcurve, periodogram=periodogram)


def report(db, store, candidate_id: int, fmt: str = "png") -> bytes:
    """The one-page report of a candidate (:mod:`.report`) as PNG or PDF bytes. NotFound for
    an unknown candidate; :class:`eas_runtime.site._product_store.Superseded` when the store
    no longer holds the light curve that was vetted."""
    from eas_runtime.site import _product_store

    from .report import render

    row = entry(db, candidate_id)
    inputs = report_inputs(db, row)
    if inputs.lightcurve is None:
        raise NotFound(f"candidate {candidate_id}: the light curve its vetting read is not "
                       f"recorded")
    with db.read() as s:
        siblings = [_row(e) for e in s.scalars(select(C).where(C.task_id == row["task_id"]))]
    with tempfile.TemporaryDirectory(prefix="eas-report-") as tmp:
        lc_path = _product_store.fetch(store, inputs.lightcurve, Path(tmp) / "lightcurve")
        gram_path = None
        if inputs.periodogram is not None:
            try:
                gram_path = _product_store.fetch(store, inputs.periodogram,
                                                 Path(tmp) / "periodogram")
            except _product_store.Superseded:
                gram_path = None
        return render(row, lc_path, gram_path, fmt=fmt, others=siblings)
