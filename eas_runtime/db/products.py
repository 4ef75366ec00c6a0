"""Products (one per object key) and their versions."""
from __future__ import annotations

import mimetypes
import posixpath
from typing import Any

from sqlalchemy import bindparam, insert, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection, Row
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from eas_runtime.db.models import Product, ProductVersion, utcnow

_P = Product.__table__
_FIND = select(_P.c.id, _P.c.semantic_type, _P.c.generator_task_id).where(_P.c.key == bindparam("key"))
_CREATE = insert(_P).returning(_P.c.id)
#: INSERT ... ON CONFLICT (key) DO NOTHING RETURNING id: the new id, or no row when it exists.
_CREATE_IF_NEW = {name: dialect.insert(_P).on_conflict_do_nothing(index_elements=[_P.c.key]).returning(_P.c.id)
                  for name, dialect in (("sqlite", sqlite), ("postgresql", postgresql))}
_COMPLETE = update(_P).where(_P.c.id == bindparam("product_id")).values(
    semantic_type=bindparam("semantic_type"), generator_task_id=bindparam("generator_task_id"))


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
        winner = session.scalar(select(Product).where(Product.key == key))
        if winner is None:              # not a concurrent creator: e.g. no such generator task
            raise
        return winner
    return product


def ensure_product_id(conn: Connection, key: str, *, semantic_type: str = "",
                      generator_task_id: int | None = None) -> tuple[int, bool]:
    """:func:`ensure_product` on a Core connection (prebuilt statements): the product's id, and
    whether this call created it. A new key costs one statement (an insert that does nothing
    when a concurrent creator won)."""
    directory, filename = posixpath.split(key)
    values = {"key": key, "directory": directory, "filename": filename, "semantic_type": semantic_type,
              "mime_type": guess_mime(key), "generator_task_id": generator_task_id, "created_at": utcnow()}
    create = _CREATE_IF_NEW.get(conn.dialect.name)
    row: Row[*tuple[Any, ...]] | None
    if create is not None:
        made = conn.execute(create, values).scalar()
        if made is not None:
            return made, True
        row = conn.execute(_FIND, {"key": key}).one()
    else:
        row = conn.execute(_FIND, {"key": key}).first()
        if row is None:
            try:
                with conn.begin_nested():
                    return conn.execute(_CREATE, values).scalar_one(), True
            except IntegrityError:          # a concurrent creator won
                row = conn.execute(_FIND, {"key": key}).one()
    new_type = row.semantic_type or semantic_type
    new_generator = row.generator_task_id if row.generator_task_id is not None else generator_task_id
    if (new_type, new_generator) != (row.semantic_type, row.generator_task_id):
        conn.execute(_COMPLETE, {"product_id": row.id, "semantic_type": new_type,
                                 "generator_task_id": new_generator})
    return row.id, False


def latest_passed_version(session: Session, key: str) -> ProductVersion | None:
    return session.scalar(
        select(ProductVersion).join(Product).where(Product.key == key, ProductVersion.passed_qc)
        .order_by(ProductVersion.id.desc()).limit(1))
