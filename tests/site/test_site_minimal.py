"""The index site through Flask's test client: pages, JSON twins, escaping."""
from __future__ import annotations

import pytest

from eas_runtime.db.models import Attempt, DeadLetter, Job, ProductVersion, Task
from eas_runtime.db.products import ensure_product
from eas_runtime.site import create_app


@pytest.fixture
def client(resources):
    with resources.db.session() as s:
        job = Job(name="j")
        s.add(job)
        s.flush()
        task = Task(job_id=job.id, task_type="verify", state="failed")
        s.add(task)
        s.flush()
        attempt = Attempt(task_id=task.id, number=1, state="finished", error=True, error_kind="science",
                          error_text="Traceback (most recent call last):\nValueError: <b>bad</b>")
        s.add(attempt)
        product = ensure_product(s, "inbox/<script>alert(1)</script>.csv", semantic_type="upload")
        s.add(ProductVersion(product_id=product.id, etag="abc", size=12, passed_qc=True))
        s.add(DeadLetter(component="broker", reason="delivery failed (HTTP 502)", event_id="e1"))
    return create_app(resources).test_client()


def test_pages_render(client):
    for path in ("/", "/products", "/errors"):
        response = client.get(path)
        assert response.status_code == 200, path


def test_names_are_escaped(client):
    # the key's '/' inside '</script>' makes "inbox/<script>alert(1)<" its directory
    listing = client.get("/products?prefix=inbox/").get_data(as_text=True)
    assert "<script>" not in listing and "&lt;script&gt;alert(1)&lt;/" in listing
    page = client.get("/products/file/inbox/%3Cscript%3Ealert(1)%3C/script%3E.csv").get_data(as_text=True)
    assert "<script>alert(1)</script>" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    errors = client.get("/errors").get_data(as_text=True)
    assert "&lt;b&gt;bad&lt;/b&gt;" in errors and "Traceback" in errors


def test_json_api(client):
    summary = client.get("/api/summary").get_json()
    assert summary["tasks"]["failed"] == 1 and summary["dead_letters"] == 1
    products = client.get("/api/products?prefix=inbox/<script>alert(1)</").get_json()
    assert products["items"][0]["latest"]["md5"] == "abc"
    # failed attempts and dead letters: tests/site/test_site_errors.py


def test_bad_page_number_is_a_clear_400(client):
    response = client.get("/products?page=x")
    assert response.status_code == 400 and b"page must be a whole number" in response.data
