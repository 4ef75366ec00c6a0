"""The products area of the index site on a real MinIO: presigned downloads and plots."""
from __future__ import annotations

from urllib.parse import urlsplit

import numpy as np
import pytest
import requests
from sqlalchemy import select

from eas_runtime.db.models import ProductVersion
from eas_runtime.db.products import ensure_product
from eas_runtime.db.session import Database
from eas_runtime.lightcurve import LightCurve, write_lightcurve
from eas_runtime.resources import Resources
from eas_runtime.site import create_app

pytestmark = pytest.mark.minio
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


@pytest.fixture
def site(settings, minio_store):
    db = Database(settings.db_url)
    db.create_schema()
    resources = Resources(settings, send=lambda event: None, store=minio_store, db=db)
    yield resources, create_app(resources).test_client()
    db.dispose()


def put(resources, key: str, data: bytes) -> int:
    info = resources.store.put_bytes(key, data)
    with resources.db.session() as s:
        product = ensure_product(s, key, semantic_type="upload")
        version = ProductVersion(product_id=product.id, etag=info.etag, size=info.size,
                                 object_version=info.version_id, passed_qc=True)
        s.add(version)
        s.flush()
        return version.id


def test_download_redirects_to_a_presigned_url_that_serves_the_bytes(site, minio_server):
    resources, client = site
    data = bytes(range(256)) * 64
    version = put(resources, "inbox/star one.fits", data)
    response = client.get(f"/products/download/{version}")
    assert response.status_code == 302
    location = response.headers["Location"]
    assert urlsplit(location).netloc == minio_server.endpoint
    assert "X-Amz-Signature=" in location and "X-Amz-Expires=900" in location
    fetched = requests.get(location, timeout=30)
    assert fetched.status_code == 200 and fetched.content == data
    # the signature covers the URL: a changed one is refused by MinIO
    forged = location.replace("star%20one.fits", "other.fits")
    assert requests.get(forged, timeout=30).status_code == 403


def test_an_overwritten_version_is_still_served_from_the_versioned_bucket(site):
    """The bucket keeps every version: the old one is served (a presigned URL of that version)
    after the key was overwritten, and both are listed as held."""
    resources, client = site
    old = put(resources, "inbox/a.csv", b"0,1\n1,1\n")
    new = put(resources, "inbox/a.csv", b"0,1\n1,2\n")
    kept = client.get(f"/products/download/{old}")
    assert kept.status_code == 302 and "versionId=" in kept.headers["Location"]
    assert requests.get(kept.headers["Location"], timeout=30).content == b"0,1\n1,1\n"
    assert requests.get(client.get(f"/products/download/{new}").headers["Location"],
                        timeout=30).content == b"0,1\n1,2\n"
    versions = client.get("/api/products/file/inbox/a.csv").get_json()["versions"]["items"]
    assert [(v["id"], v["held"]) for v in versions] == [(new, True), (old, True)]


def test_a_version_recorded_without_a_store_version_is_410_once_overwritten(site):
    resources, client = site
    put(resources, "inbox/b.csv", b"0,1\n1,1\n")
    with resources.db.session() as s:
        old = s.scalar(select(ProductVersion).order_by(ProductVersion.id.desc()))
        old.object_version = None
        old_id = old.id
    put(resources, "inbox/b.csv", b"0,1\n1,2\n")
    gone = client.get(f"/products/download/{old_id}")
    assert gone.status_code == 410 and "latest content of a key only" in gone.get_data(as_text=True)
    assert "not kept by the store" in client.get("/products/file/inbox/b.csv").get_data(as_text=True)


def test_plots_read_the_object_from_minio(site, tmp_path):
    resources, client = site
    lc = LightCurve(np.arange(3000) * 0.01, 1 + 1e-3 * np.sin(np.arange(3000) / 50))
    version = put(resources, "inbox/star.fits",
                  write_lightcurve(lc, tmp_path / "star.fits").read_bytes())
    png = client.get(f"/plots/{version}/lc.png")
    assert png.status_code == 200 and png.data.startswith(PNG_MAGIC)
    data = client.get(f"/api/plots/{version}/lc").get_json()
    assert data["n_samples"] == 3000 and data["binned"] and data["x"]["unit"] == "d"
