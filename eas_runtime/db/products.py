"""Products (one per object key) and their versions."""
from __future__ import annotations

import mimetypes
import posixpath

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from eas_runtime.db.models import Product, ProductVersion


def guess_mime(key: str) -> str:
    if key.endswith((".fits", ".fits.gz", ".fit")):
        return "application/fits"
    return mimetypes.guess_type(key)[0] or "application/octet-stream"


def ensure_product(session: Session, key: str, *, semantic_type: str = "",
                   generator_task_id: int | None = None) -> Product:
    """The product row for ``key``, created when missing (safe against a concurrent creator)."""
    product = session.scalar(select(Product).where(Product.key == key))
    if product is not None:
        if generator_task_id is not None and product.generator_task_id is None:
            product.generator_task_id = generator_task_id
        if semantic_type and not product.semantic_type:
            product.semantic_type = semantic_type
        return product
    directory, filename = posixpath.split(key)
    product = Product(key=key, directory=directory, filename=filename, semantic_type=semantic_type,
                      mime_type=guess_mime(key), generator_task_id=generator_task_id)
    try:
        with session.begin_nested():
            session.add(product)
    except IntegrityError:
        product = session.scalar(select(Product).where(Product.key == key))
    return product


def latest_passed_version(session: Session, key: str) -> ProductVersion | None:
    return session.scalar(
        select(ProductVersion).join(Product).where(Product.key == key, ProductVersion.passed_qc)
        .order_by(ProductVersion.id.desc()).limit(1))
