"""Stars: ``/stars`` lists every star with products (search by identifier), ``/stars/<id>``
shows one star's segments with their light curves, its candidates with their reports, every
product and the jobs that made them. JSON twins under ``/api/``."""
from __future__ import annotations

from flask import Blueprint, jsonify, render_template

from eas_runtime.planets import stars as queries
from eas_runtime.site._request import check_text, db, install, page_args, text_arg

bp = install(Blueprint("stars", __name__))


def stars_data() -> dict:
    return queries.stars(db(), search=text_arg("search"), **page_args())


def star_data(star_id: str) -> dict:
    return queries.star(db(), check_text("star", star_id))


@bp.get("/stars")
def stars():
    return render_template("stars.html", data=stars_data())


@bp.get("/api/stars")
def api_stars():
    return jsonify(stars_data())


@bp.get("/stars/<path:star_id>")
def star(star_id: str):
    from eas_runtime.site.plots import PIXELS

    return render_template("star.html", s=star_data(star_id), plot_px=PIXELS)


@bp.get("/api/stars/<path:star_id>")
def api_star(star_id: str):
    return jsonify(star_data(star_id))
