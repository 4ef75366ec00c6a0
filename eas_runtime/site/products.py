"""Products: directories, files with every version, downloads and plots."""
from __future__ import annotations

from flask import Blueprint, abort, current_app, jsonify, render_template, request
from sqlalchemy import select

from eas_runtime.db.models import Product, ProductVersion

bp = Blueprint("products", __name__)
PAGE = 100


def _db():
    return current_app.extensions["eas_resources"].db


def _page() -> int:
    try:
        return max(0, int(request.args.get("page", 0)))
    except ValueError:
        abort(400, "page must be a whole number")


def products_data(page: int, prefix: str = "") -> list[dict]:
    with _db().read() as s:
        q = select(Product).order_by(Product.key).offset(page * PAGE).limit(PAGE)
        if prefix:
            q = q.where(Product.key.startswith(prefix, autoescape=True))
        out = []
        for p in s.scalars(q):
            versions = s.scalars(select(ProductVersion).where(ProductVersion.product_id == p.id)
                                 .order_by(ProductVersion.id)).all()
            out.append({"key": p.key, "directory": p.directory, "filename": p.filename,
                        "semantic_type": p.semantic_type, "generator_task_id": p.generator_task_id,
                        "versions": [{"id": v.id, "size": v.size, "md5": v.etag, "passed_qc": v.passed_qc,
                                      "attempt_id": v.attempt_id, "created": v.created_at.isoformat()}
                                     for v in versions]})
        return out



@bp.get("/products")
def products():
    page = _page()
    return render_template("products.html", products=products_data(page, request.args.get("prefix", "")),
                           page=page, prefix=request.args.get("prefix", ""))


@bp.get("/api/products")
def api_products():
    return jsonify(products_data(_page(), request.args.get("prefix", "")))
