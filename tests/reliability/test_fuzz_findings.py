"""Regression tests of what the seeded fuzz campaign found after issue 11's defects were fixed
(defect 7: 5xx, or an answer that is not a 4xx, where a 4xx belongs), each named after it."""
from __future__ import annotations

from eas_runtime import events
from eas_runtime.control.app import create_app as control_app
from eas_runtime.db.session import Database
from eas_runtime.resources import Resources
from eas_runtime.site import create_app as site_app

HUGE_INTEGER = b"9" * 5000          # past Python's 4300-digit limit for int(str)


def test_defect_7_an_integer_of_5000_digits_as_event_data_is_400_at_control(settings):
    db = Database(settings.db_url)
    db.create_schema()
    client = control_app(Resources(settings, db=db, send=lambda ev: None)).test_client()
    binary = {"ce-specversion": "1.0", "ce-id": "huge-1", "ce-source": "/fuzz",
              "ce-type": events.PRODUCT_CREATED, "Content-Type": "application/json"}
    answer = client.post("/", headers=binary, data=HUGE_INTEGER)
    assert answer.status_code == 400 and "data" in answer.get_data(as_text=True)
    structured = b'{"specversion": "1.0", "id": "huge-2", "source": "/fuzz", "type": "' + \
        events.PRODUCT_CREATED.encode() + b'", "data": ' + HUGE_INTEGER + b"}"
    answer = client.post("/", headers={"Content-Type": "application/cloudevents+json"}, data=structured)
    assert answer.status_code == 400 and "JSON" in answer.get_data(as_text=True)
    db.dispose()


def test_defect_7_a_double_slash_key_is_not_redirected_to_another_key(resources):
    client = site_app(resources).test_client()
    for path in ("/products/file//etc/passwd", "/api/products/file//etc/passwd", "/products//"):
        answer = client.get(path)
        assert 400 <= answer.status_code < 500, (path, answer.status_code)
        assert answer.get_data(as_text=True).strip()


def test_defect_7_a_request_body_past_8_mib_is_413_before_it_is_read(resources):
    client = site_app(resources.__class__(resources.settings.replace(api_token="t"), send=resources.send,
                                          store=resources.store, db=resources.db)).test_client()
    answer = client.post("/api/jobs", data=b" " * (9 * 1024 * 1024), content_type="application/json",
                         headers={"Authorization": "Bearer t"})
    assert answer.status_code == 413
