"""The products area's queries on a real PostgreSQL: sub-directories by GROUP BY on the first
path segment (split_part there, substr/instr on SQLite), LIKE prefixes with % and _ taken
literally and case-sensitively, paging, one file with its versions and readers."""
from __future__ import annotations

import pytest

from eas_runtime.db.models import ProductVersion
from eas_runtime.db.products import ensure_product
from eas_runtime.db.session import Database
from eas_runtime.diagnostics import NotFound
from eas_runtime.site import _product_queries as queries

pytestmark = pytest.mark.postgres


@pytest.fixture
def pg(postgres_url):
    db = Database(postgres_url)
    db.create_schema()
    yield db
    db.dispose()


def add(db, key: str, versions: int = 1) -> None:
    with db.session() as s:
        product = ensure_product(s, key, semantic_type="upload")
        for n in range(versions):
            s.add(ProductVersion(product_id=product.id, etag=f"{n:032x}", size=n, passed_qc=True))


def test_listing_on_postgres(pg):
    for key in ("a_b/1.csv", "axb/x/2.csv", "a%b/3.csv", "a%xb/q/9.csv", "A_B/y/4.csv",
                "a_b/deep/er/5.csv", "a_b/deep/6.csv", "top.csv"):
        add(pg, key)
    root = queries.listing(pg, "")
    assert [(i["kind"], i["name"], i.get("files")) for i in root["items"]][-1] == ("file", "top.csv", None)
    assert {i["name"]: i["files"] for i in root["items"] if i["kind"] == "directory"} == {
        "a_b": 3, "axb": 1, "a%b": 1, "a%xb": 1, "A_B": 1}
    a_b = queries.listing(pg, "a_b/")
    assert [(i["kind"], i["name"], i.get("files")) for i in a_b["items"]] == [
        ("directory", "deep", 2), ("file", "1.csv", None)]
    assert [i["name"] for i in queries.listing(pg, "a%b/")["items"]] == ["3.csv"]
    assert [i["name"] for i in queries.listing(pg, "A_B/")["items"]] == ["y"]
    with pytest.raises(NotFound):
        queries.listing(pg, "a__/")
    paged = queries.listing(pg, "a_b/", page=1, page_size=1)
    assert [i["name"] for i in paged["items"]] == ["1.csv"] and paged["pages"] == 2


def test_file_detail_on_postgres(pg):
    add(pg, "inbox/x.fits", versions=3)
    detail = queries.file_detail(pg, "inbox/x.fits")
    assert [v["size"] for v in detail["versions"]["items"]] == [2, 1, 0]
    assert detail["product"]["readers"] == [] and detail["product"]["searches"] == []
