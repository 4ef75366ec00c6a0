"""The storage event adapter over real HTTP: MinIO's webhook (with queue_dir) -> adapter ->
broker. MinIO resends a queued notification every 3 s until the adapter answers 2xx."""
from __future__ import annotations

import hashlib
import io
import json
import logging
import threading
import time
from types import SimpleNamespace

import pytest
import requests
from sqlalchemy import select

from eas_runtime import events
from eas_runtime.adapter import create_app
from eas_runtime.db.models import DeadLetter
from eas_runtime.db.session import Database, DatabaseUnavailable
from eas_runtime.settings import Settings
from eas_runtime.store.base import StoreError
from eas_runtime.store.minio_store import MinioStore

TOKEN = "adapter-test-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
BUCKET = "eas"

#: Loopback calls never go through a proxy from the environment.
http = requests.Session()
http.trust_env = False

log = logging.getLogger(__name__)


class StatusRecorder:
    """WSGI middleware that records the status of every answer the adapter gives."""

    def __init__(self, app):
        self.app = app
        self.statuses: list[int] = []
        self.cond = threading.Condition()

    def __call__(self, environ, start_response):
        def recording_start_response(status, headers, exc_info=None):
            if environ.get("REQUEST_METHOD") == "POST":
                with self.cond:
                    self.statuses.append(int(status.split()[0]))
                    self.cond.notify_all()
            return start_response(status, headers, exc_info)
        return self.app(environ, recording_start_response)

    def wait_for(self, predicate, timeout_s: float) -> list[int]:
        deadline = time.monotonic() + timeout_s
        with self.cond:
            while not predicate(self.statuses):
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"adapter answers so far: {self.statuses}")
                self.cond.wait(min(left, 0.5))
            return list(self.statuses)


def start_adapter(db, broker, wsgi_server, tmp_path) -> SimpleNamespace:
    settings = Settings.load(environ={}, home=str(tmp_path), adapter_token=TOKEN,
                             broker_url=broker.url)
    recorder = StatusRecorder(create_app(settings, db=db))
    return SimpleNamespace(url=wsgi_server(recorder), db=db, broker=broker, recorder=recorder)


@pytest.fixture
def sqlite_db(tmp_path):
    db = Database(f"sqlite:///{tmp_path / 'eas.db'}")
    db.create_schema()
    yield db
    db.dispose()


@pytest.fixture
def adapter(sqlite_db, capture_broker, wsgi_server, tmp_path):
    return start_adapter(sqlite_db, capture_broker, wsgi_server, tmp_path)


@pytest.fixture
def pipeline(adapter, minio_factory):
    """MinIO with its webhook (queue_dir on) pointing at the adapter, bucket notifications on."""
    server = minio_factory(webhook_endpoint=adapter.url + "/minio", webhook_token=TOKEN)
    store = MinioStore(server.endpoint, server.access_key, server.secret_key, BUCKET)
    store.ensure_bucket()
    store.enable_notifications()
    return SimpleNamespace(server=server, store=store, client=server.client(), adapter=adapter,
                           broker=adapter.broker)


def s3_record(key: str = "inbox/x.fits", *, bucket: str = BUCKET, name="s3:ObjectCreated:Put",
              **object_fields) -> dict:
    """A notification record shaped like MinIO's."""
    obj = {"key": key, "size": 4, "eTag": "0123456789abcdef0123456789abcdef",
           "contentType": "application/octet-stream",
           "userMetadata": {"X-Amz-Meta-Task": "7", "content-type": "application/octet-stream"},
           "sequencer": "1869A1B2C3D4E5F6"}
    obj.update(object_fields)
    return {"eventVersion": "2.0", "eventSource": "minio:s3", "eventName": name,
            "eventTime": "2026-02-12T20:18:48.123Z",
            "s3": {"s3SchemaVersion": "1.0", "bucket": {"name": bucket}, "object": obj}}


def notification(*records) -> dict:
    return {"EventName": "s3:ObjectCreated:Put", "Key": "eas/x", "Records": list(records)}


def dead_letters(db) -> list[DeadLetter]:
    with db.read() as s:
        return list(s.scalars(select(DeadLetter).order_by(DeadLetter.id)))


# --------------------------------------------------------------------------- real MinIO
@pytest.mark.minio
def test_upload_produces_exactly_one_product_created_event(pipeline):
    key = "inbox/campaign 1/star+42 é.fits"
    data = b"SIMPLE  = T" * 100
    t0 = time.monotonic()
    pipeline.client.put_object(BUCKET, key, io.BytesIO(data), len(data),
                               content_type="application/fits",
                               metadata={"Task": "17", "Semantic-Type": "light_curve"})
    pipeline.broker.wait_for(lambda evs: len(evs) >= 1, timeout_s=20)
    log.info("upload -> product.created took %.2f s", time.monotonic() - t0)
    time.sleep(4)  # longer than MinIO's 3 s retry interval: no second delivery follows
    assert len(pipeline.broker.events) == 1
    event = pipeline.broker.events[0]
    data_ = events.data_of(event)
    stat = pipeline.store.stat(key)
    assert event["type"] == events.PRODUCT_CREATED
    assert event["source"] == events.SOURCE_STORE + "/" + BUCKET
    assert event["subject"] == key
    assert data_["bucket"] == BUCKET and data_["key"] == key
    assert data_["size"] == len(data) == stat.size
    assert data_["etag"] == hashlib.md5(data).hexdigest() == stat.etag
    assert data_["metadata"] == {"task": "17", "semantic-type": "light_curve"} == stat.metadata
    assert data_["content_type"] == "application/fits"
    assert event["id"] == events.stable_id(BUCKET, key, data_["etag"], data_["sequencer"])
    assert pipeline.adapter.recorder.statuses == [200]

    # The same content uploaded again is a new version: a new event with another id.
    pipeline.client.put_object(BUCKET, key, io.BytesIO(data), len(data))
    evs = pipeline.broker.wait_for(lambda evs: len(evs) >= 2, timeout_s=20)
    assert evs[1]["id"] != evs[0]["id"]
    assert events.data_of(evs[1])["etag"] == data_["etag"]


@pytest.mark.minio
def test_removals_are_acknowledged_and_ignored(pipeline):
    pipeline.store.enable_notifications(events=("s3:ObjectCreated:*", "s3:ObjectRemoved:*"))
    pipeline.store.put_bytes("gone/soon", b"x")
    pipeline.broker.wait_for(lambda evs: len(evs) == 1, timeout_s=20)
    pipeline.store.delete("gone/soon")
    pipeline.adapter.recorder.wait_for(lambda st: len(st) >= 2, timeout_s=20)
    assert pipeline.adapter.recorder.statuses == [200, 200]
    assert len(pipeline.broker.events) == 1
    assert dead_letters(pipeline.adapter.db) == []


@pytest.mark.minio
def test_broker_outage_is_answered_503_and_minio_redelivers_from_its_queue(pipeline):
    broker, recorder = pipeline.broker, pipeline.adapter.recorder
    broker.fail_next(10**6, status=503)
    keys = [f"outage/obj-{i}" for i in range(3)]
    for key in keys:
        pipeline.store.put_bytes(key, key.encode())
    # The adapter refuses while the broker fails, and MinIO keeps retrying.
    recorder.wait_for(lambda st: st.count(503) >= 3, timeout_s=30)
    assert 200 not in recorder.statuses and broker.events == []

    recovered = time.monotonic()
    broker.recover()
    broker.wait_for(lambda evs: {ev["subject"] for ev in evs} >= set(keys), timeout_s=60)
    delay = time.monotonic() - recovered
    log.info("broker recovered -> all %d queued uploads delivered in %.2f s", len(keys), delay)
    unique = broker.unique_events()
    assert sorted(ev["subject"] for ev in unique.values()) == keys
    assert recorder.statuses[-1] == 200
    # The queue drains: MinIO deletes each notification once the adapter answered 2xx.
    deadline = time.monotonic() + 10
    while any(pipeline.server.queue_dir.rglob("*.event")) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not any(pipeline.server.queue_dir.rglob("*.event"))


@pytest.mark.minio
def test_no_upload_is_lost_when_minio_restarts_or_crashes(pipeline):
    server, store, broker = pipeline.server, pipeline.store, pipeline.broker
    uploaded: list[str] = []
    failures = []
    done = threading.Event()

    def uploader():
        try:
            for i in range(30):
                key = f"restart/obj-{i:03d}"
                deadline = time.monotonic() + 60
                while True:
                    try:
                        store.put_bytes(key, f"content {i}".encode())
                        break
                    except StoreError as exc:  # server down or starting: retry like a client
                        if time.monotonic() > deadline:
                            raise
                        log.debug("upload of %s failed (%s), retrying", key, exc)
                        time.sleep(0.1)
                uploaded.append(key)
                time.sleep(0.05)
        except Exception as exc:  # noqa: BLE001 - reported by the test below
            failures.append(exc)
        finally:
            done.set()

    thread = threading.Thread(target=uploader)
    thread.start()
    try:
        while len(uploaded) < 8 and not done.is_set():
            time.sleep(0.05)
        server.restart()  # graceful
        while len(uploaded) < 18 and not done.is_set():
            time.sleep(0.05)
        server.kill()  # crash
        time.sleep(0.5)
        server.start()  # same data folder, ports and queue_dir
    finally:
        thread.join(120)
    assert not failures, failures
    assert len(uploaded) == 30

    listed = {info.key: info.etag for info in store.list("restart/")}
    assert set(listed) == set(uploaded)

    def all_delivered(evs) -> bool:
        seen = {(ev["subject"], events.data_of(ev)["etag"]) for ev in evs}
        return set(listed.items()) <= seen

    broker.wait_for(all_delivered, timeout_s=60)
    unique = broker.unique_events()
    assert {ev["subject"] for ev in unique.values()} == set(uploaded)


# --------------------------------------------------------------------------- by hand
def test_healthz(adapter):
    assert http.get(adapter.url + "/healthz", timeout=5).status_code == 200


@pytest.mark.parametrize("path", ["/minio", "/"])
def test_token_is_required(adapter, path):
    body = notification(s3_record("auth/x"))
    url = adapter.url + path
    assert http.post(url, json=body, timeout=5).status_code == 401
    assert http.post(url, json=body, headers={"Authorization": "Basic " + TOKEN},
                         timeout=5).status_code == 401
    assert http.post(url, json=body, headers={"Authorization": "Bearer"},
                         timeout=5).status_code == 401
    assert http.post(url, json=body, headers={"Authorization": "Bearer wrong-token"},
                         timeout=5).status_code == 403
    assert http.post(url, json=body, headers={"Authorization": "Bearer " + TOKEN + "x"},
                         timeout=5).status_code == 403
    assert adapter.broker.calls == 0
    response = http.post(url, json=body, headers=AUTH, timeout=5)
    assert response.status_code == 200
    assert [ev["subject"] for ev in adapter.broker.events] == ["auth/x"]


def test_record_conversion(adapter):
    record = s3_record("inbox/a%2Fb+c%C3%A9.fits", size=1234, eTag='"abc"', versionId="v1",
                       contentType="application/fits")
    assert http.post(adapter.url + "/minio", json=notification(record), headers=AUTH,
                         timeout=5).status_code == 200
    (event,) = adapter.broker.events
    data = events.data_of(event)
    assert event["subject"] == data["key"] == "inbox/a/b cé.fits"
    assert (data["size"], data["etag"], data["version_id"]) == (1234, "abc", "v1")
    assert data["metadata"] == {"task": "7"}
    assert data["content_type"] == "application/fits"
    assert data["last_modified"].startswith("2026-02-12T20:18:48.123")
    assert data["sequencer"] == "1869A1B2C3D4E5F6"
    # A resent record is the same event (same id): receivers see a duplicate.
    http.post(adapter.url + "/minio", json=notification(record), headers=AUTH, timeout=5)
    assert adapter.broker.events[1]["id"] == event["id"]


POISON = {
    "body is not JSON": b'{"Records": [',
    "body has no 'Records' list": json.dumps({"EventName": "s3:ObjectCreated:Put"}).encode(),
    "not an object": json.dumps(notification(42)).encode(),
    "eventName is missing": json.dumps(notification(
        {k: v for k, v in s3_record().items() if k != "eventName"})).encode(),
    "s3.object.size has type str": json.dumps(notification(s3_record(size="big"))).encode(),
    "s3.object.key is missing": json.dumps(notification(
        {**s3_record(), "s3": {"bucket": {"name": BUCKET}, "object": {"size": 1}}})).encode(),
    "s3.bucket.name is missing": json.dumps(notification(
        {**s3_record(), "s3": {"object": {"key": "k", "size": 1, "eTag": "e"}}})).encode(),
    "eventTime 'yesterday'": json.dumps(notification(
        {**s3_record(), "eventTime": "yesterday"})).encode(),
    "userMetadata must map strings": json.dumps(notification(
        s3_record(userMetadata={"X-Amz-Meta-N": 5}))).encode(),
}


@pytest.mark.parametrize("defect", list(POISON))
def test_poisoned_records_are_dead_lettered_and_acknowledged(adapter, defect):
    body = POISON[defect]
    response = http.post(adapter.url + "/minio", data=body, headers=AUTH, timeout=5)
    assert response.status_code == 200  # acknowledged: MinIO must not retry it forever
    assert adapter.broker.calls == 0
    (letter,) = dead_letters(adapter.db)
    assert letter.component == "storage-adapter"
    assert defect in letter.reason
    if defect.startswith("body"):
        assert letter.payload == body.decode()
    else:
        assert letter.payload == json.dumps(json.loads(body)["Records"][0])


@pytest.mark.postgres
def test_dead_letters_on_postgresql(postgres_url, capture_broker, wsgi_server, tmp_path):
    db = Database(postgres_url)
    db.create_schema()
    try:
        adapter = start_adapter(db, capture_broker, wsgi_server, tmp_path)
        response = http.post(adapter.url + "/minio", headers=AUTH, timeout=5,
                                 json=notification(s3_record(size=-1)))
        assert response.status_code == 200
        (letter,) = dead_letters(db)
        assert "negative" in letter.reason and letter.component == "storage-adapter"
    finally:
        db.dispose()


def test_mixed_batch(adapter):
    body = notification(s3_record("good/1"), s3_record(size=None),
                        s3_record("gone/2", name="s3:ObjectRemoved:Delete"), s3_record("good/3"))
    response = http.post(adapter.url + "/minio", json=body, headers=AUTH, timeout=5)
    assert response.status_code == 200
    assert response.json() == {"accepted": 2, "ignored": 1, "dead_lettered": 1}
    assert [ev["subject"] for ev in adapter.broker.events] == ["good/1", "good/3"]
    assert ["s3.object.size is missing" in d.reason for d in dead_letters(adapter.db)] == [True]


def test_broker_failure_answers_503_and_leaves_no_dead_letter(adapter):
    adapter.broker.fail_next(1, status=500)
    body = notification(s3_record("retry/1"), s3_record(eTag=7))
    assert http.post(adapter.url + "/minio", json=body, headers=AUTH,
                         timeout=5).status_code == 503
    assert dead_letters(adapter.db) == []  # written only once the batch is acknowledged
    assert http.post(adapter.url + "/minio", json=body, headers=AUTH,
                         timeout=5).status_code == 200
    assert [ev["subject"] for ev in adapter.broker.events] == ["retry/1"]
    assert len(dead_letters(adapter.db)) == 1


def test_broker_unreachable_answers_503(sqlite_db, capture_broker, wsgi_server, tmp_path):
    adapter = start_adapter(sqlite_db, capture_broker, wsgi_server, tmp_path)
    capture_broker.close()  # nothing listens any more
    response = http.post(adapter.url + "/minio", json=notification(s3_record()),
                             headers=AUTH, timeout=30)
    assert response.status_code == 503


class DownDatabase:
    url = "postgresql://down"

    def session(self):
        raise DatabaseUnavailable("database down")


def test_poison_is_acknowledged_even_when_the_database_is_down(capture_broker, wsgi_server,
                                                             tmp_path, caplog):
    adapter = start_adapter(DownDatabase(), capture_broker, wsgi_server, tmp_path)
    with caplog.at_level(logging.ERROR, logger="eas_runtime.adapter"):
        response = http.post(adapter.url + "/minio", data=b"garbage", headers=AUTH, timeout=5)
    assert response.status_code == 200
    assert any("could not store dead letter" in r.getMessage() for r in caplog.records)
