"""The catalogue of vetted transit candidates: ``/candidates`` (sort and filter), one
candidate's page with its report, and exports (CSV, VOTable, JSON).

Query parameters: ``verdict`` (pc, fp), ``star``, ``kind``, ``job``, ``min_snr``,
``period_min``, ``period_max`` [d], ``sort`` (:data:`eas_runtime.planets.catalogue.SORTS`),
``order`` (asc, desc) and ``page``. Exports take the same filters and hold every match.
Reports (PNG, PDF) are drawn once per candidate and kept in the plot cache.
"""
from __future__ import annotations

from flask import Blueprint, Response, jsonify, render_template, request, send_file

from eas_runtime.planets import catalogue
from eas_runtime.planets import table as ctable
from eas_runtime.site import _product_store as stored
from eas_runtime.site.plots import PlotError
from eas_runtime.site._request import answer, db, install, int_arg, page_args, resources, text_arg

bp = install(Blueprint("candidates", __name__))
bp.register_error_handler(stored.Superseded, lambda exc: answer(410, str(exc)))
bp.register_error_handler(PlotError, lambda exc: answer(422, str(exc)))
#: Seconds a report may be cached by a browser: a candidate's report never changes.
REPORT_MAX_AGE_S = 3600


def _filters() -> catalogue.Filters:
    return catalogue.Filters.of(
        verdict=text_arg("verdict"), star=text_arg("star"), kind=text_arg("kind"),
        job=int_arg("job", low=1, meaning="a job id"), min_snr=text_arg("min_snr"),
        period_min=text_arg("period_min"), period_max=text_arg("period_max"),
        sort=text_arg("sort"), order=text_arg("order"))


def _named(rows: list[dict]) -> list[dict]:
    """Rows whose ``star_name`` is empty get the star's name from its light curves
    (planets.stars.star_names), so a star is shown by name wherever its id is."""
    from eas_runtime.planets.stars import star_names

    unnamed = {r["star_id"] for r in rows if r.get("star_id") and not r.get("star_name")}
    if unnamed:
        with db().read() as s:
            names = star_names(s, unnamed)
        for r in rows:
            if r.get("star_id") in names and not r.get("star_name"):
                r["star_name"] = names[r["star_id"]]
    return rows


def candidates_data() -> dict:
    filters = _filters()
    data = catalogue.query(db(), filters, **page_args())
    _named(data["items"])
    data["sort"], data["ascending"] = filters.sort, filters.ascending
    return data


@bp.get("/candidates")
def candidates():
    return render_template("candidates.html", data=candidates_data(), sorts=catalogue.SORTS,
                           kinds=catalogue.KINDS)


@bp.get("/api/candidates")
def api_candidates():
    return jsonify(candidates_data())


_EXPORTS = {"csv": ("text/csv; charset=utf-8", "csv"),
            "votable": ("application/x-votable+xml", "xml"),
            "json": ("application/json", "json")}


@bp.get("/candidates.<fmt>")
def export(fmt: str):
    if fmt not in _EXPORTS:
        return answer(404, f"no export {fmt!r}: csv, votable or json")
    rows = catalogue.export_rows(db(), _filters())
    mime, suffix = _EXPORTS[fmt]
    return Response(ctable.export(rows, fmt), mimetype=mime, headers={
        "Content-Disposition": f"attachment; filename=candidates.{suffix}"})


@bp.get("/candidates/<int:candidate_id>")
def candidate(candidate_id: int):
    return render_template("candidate.html", c=_named([catalogue.entry(db(), candidate_id)])[0])


@bp.get("/api/candidates/<int:candidate_id>")
def api_candidate(candidate_id: int):
    return jsonify(_named([catalogue.entry(db(), candidate_id)])[0])


def _report(candidate_id: int, fmt: str) -> bytes:
    """The report's bytes; a light curve that cannot be read is a PlotError (422, cached)."""
    from eas_runtime.lightcurve import FormatError

    try:
        return catalogue.report(db(), resources().store, candidate_id, fmt)
    except FormatError as exc:
        raise PlotError(f"candidate {candidate_id}: its light curve cannot be read: {exc}") from None


@bp.get("/candidates/<int:candidate_id>/report.<fmt>")
def report(candidate_id: int, fmt: str):
    from eas_runtime.planets.report import FORMATS
    from eas_runtime.site.products import _cache

    if fmt not in FORMATS:
        return answer(404, f"no report format {fmt!r}: png or pdf")
    row = catalogue.entry(db(), candidate_id)
    name = f"candidate-{candidate_id}-a{row['attempt_id']}"
    path = _cache().get(name, f".{fmt}", lambda: _report(candidate_id, fmt))
    return send_file(path, mimetype="image/png" if fmt == "png" else "application/pdf",
                     etag=f"{name}-{fmt}", conditional=True, max_age=REPORT_MAX_AGE_S,
                     download_name=f"candidate_{candidate_id}.{fmt}",
                     as_attachment=fmt == "pdf" and "inline" not in request.args)
