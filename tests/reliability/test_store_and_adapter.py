"""Regression tests of issue 11's store, adapter and control defects: odd keys, overwrites,
refusals that must not hold up other uploads, and uploads dressed as pipeline outputs."""
from __future__ import annotations

import json
import urllib.parse

import pytest
from sqlalchemy import select

from eas_runtime import events
from eas_runtime.adapter import create_app as adapter_app
from eas_runtime.control.app import create_app as control_app
from eas_runtime.db.models import Attempt, AttemptInput, DeadLetter, Job, Task
from eas_runtime.db.session import Database
from eas_runtime.demo import make_lightcurves
from eas_runtime.resources import Resources
from eas_runtime.store.base import InvalidKey, check_key, product_created_event
from eas_runtime.store.local import LocalStore
from tests.e2e.helpers import settled, wait_for, watch

TRAVERSALS = ["..%2F..%2Fetc%2Fpasswd", "inbox%2F..%2F..%2Fx.csv", "%2Fetc%2Fpasswd", "inbox%2F.%2Fx.csv",
              "inbox%2F%00x.csv", "inbox%2F%FF.csv", "a%5Cb.csv"]


@pytest.fixture
def db(settings):
    database = Database(settings.db_url)
    database.create_schema()
    yield database
    database.dispose()


def _record(key: str, *, etag: str = "0123456789abcdef0123456789abcdef", size: int = 10,
            metadata=None) -> dict:
    return {"eventVersion": "2.0", "eventSource": "minio:s3", "eventName": "s3:ObjectCreated:Put",
            "eventTime": "2026-12-03T12:00:00.000Z",
            "s3": {"bucket": {"name": "eas"}, "object": {
                "key": key, "size": size, "eTag": etag, "sequencer": "17F0A", "versionId": "v1",
                "userMetadata": metadata or {"content-type": "text/csv"}}}}


def _dead_letters(db) -> list[DeadLetter]:
    with db.read() as s:
        return list(s.scalars(select(DeadLetter).order_by(DeadLetter.id)))


# ---------------------------------------------------------------------- defect 6
@pytest.mark.parametrize("raw", TRAVERSALS)
def test_defect_6_traversal_key_is_a_dead_letter_at_the_adapter_and_the_good_record_goes_on(
        settings, db, capture_broker, raw):
    settings = settings.replace(adapter_token="t0ken")
    app = adapter_app(settings, db=db, send=lambda ev: events.send(ev, capture_broker.url))
    body = {"EventName": "s3:ObjectCreated:Put", "Records": [_record(raw), _record("inbox%2Fgood+star.csv")]}
    answer = app.test_client().post("/minio", json=body, headers={"Authorization": "Bearer t0ken"})
    assert answer.status_code == 200, answer.data
    assert answer.get_json() == {"accepted": 1, "ignored": 0, "dead_lettered": 1}
    (event,) = capture_broker.wait_for(lambda evs: len(evs) == 1)
    assert event["subject"] == "inbox/good star.csv"
    (letter,) = _dead_letters(db)
    assert letter.component == "storage-adapter" and "s3.object.key" in letter.reason
    assert raw[:12] in letter.reason


@pytest.mark.parametrize("key", ["../../etc/passwd", "inbox/../../x.csv", "/etc/passwd", "inbox//x.csv",
                                 "inbox/x\x00.csv", "inbox/x\n.csv", "a\\b.csv", "x" * 1001])
def test_defect_6_traversal_key_in_product_created_is_refused_by_control(settings, db, key):
    app = control_app(Resources(settings, db=db, send=lambda ev: None))
    event = events.make_event(events.PRODUCT_CREATED, "/eas/store/eas", {"key": key, "size": 1, "etag": "e"},
                              id="p-1", subject="x")
    headers, body = events.to_http(event, "structured")
    answer = app.test_client().post("/", headers=headers, data=body)
    assert answer.status_code == 400
    assert "'key'" in answer.get_data(as_text=True)
    with pytest.raises(InvalidKey):
        check_key(key)


def test_defect_6_local_store_refuses_traversal_keys(tmp_path):
    store = LocalStore(tmp_path / "store")
    source = tmp_path / "f.csv"
    source.write_text("1,2\n")
    for key in ("../x.csv", "inbox/../../x.csv", "inbox/" + "y" * 251):
        with pytest.raises(InvalidKey):
            store.put_file(key, source)
    assert not (tmp_path / "x.csv").exists()


# ---------------------------------------------------------------------- defect 7 (control, adapter)
@pytest.mark.parametrize("size", ["big", 1e30, 10 ** 30, -1, True, None, [1]])
def test_defect_7_bad_size_in_product_created_is_400_not_500(settings, db, size):
    app = control_app(Resources(settings, db=db, send=lambda ev: None))
    data = {"key": "inbox/a.csv", "size": size, "etag": "e"}
    event = events.make_event(events.PRODUCT_CREATED, "/eas/store/eas", data, id=f"size-{size!r}", subject="x")
    headers, body = events.to_http(event, "structured")
    answer = app.test_client().post("/", headers=headers, data=body)
    if size is None:                   # "size" absent or null: an unknown size, recorded as 0
        assert answer.status_code in (200, 202)
        return
    assert answer.status_code == 400, answer.data
    assert "'size'" in answer.get_data(as_text=True)


def test_defect_7_deeply_nested_json_at_the_adapter_is_a_dead_letter(settings, db, capture_broker):
    settings = settings.replace(adapter_token="t0ken")
    app = adapter_app(settings, db=db, send=lambda ev: events.send(ev, capture_broker.url))
    body = "[" * 100_000 + "]" * 100_000
    answer = app.test_client().post("/minio", data=body, headers={"Authorization": "Bearer t0ken",
                                                                  "Content-Type": "application/json"})
    assert answer.status_code == 200
    (letter,) = _dead_letters(db)
    assert "nests" in letter.reason
    # and the next, ordinary notification is accepted
    ok = app.test_client().post("/minio", json={"Records": [_record("inbox%2Fnext.csv")]},
                                headers={"Authorization": "Bearer t0ken"})
    assert ok.get_json()["accepted"] == 1


# ---------------------------------------------------------------------- defect 1 (store, adapter)
def test_defect_1_a_refused_record_never_holds_up_the_others_at_the_adapter(settings, db, capture_broker):
    """The broker refuses one event for good (400): that record becomes a dead letter, the batch
    is acknowledged, and the good record after it is delivered."""
    settings = settings.replace(adapter_token="t0ken")
    app = adapter_app(settings, db=db, send=lambda ev: events.send(ev, capture_broker.url))
    capture_broker.fail_next(1, status=400)
    records = [_record(urllib.parse.quote("inbox/one 1.csv")), _record("inbox%2Fafter.csv")]
    answer = app.test_client().post("/minio", json={"Records": records}, headers={"Authorization": "Bearer t0ken"})
    assert answer.status_code == 200
    assert answer.get_json() == {"accepted": 1, "ignored": 0, "dead_lettered": 1}
    (letter,) = _dead_letters(db)
    assert "refused by the broker for good" in letter.reason and "inbox/one 1.csv" in letter.reason
    assert [ev["subject"] for ev in capture_broker.events] == ["inbox/after.csv"]
    # a broker that is down still makes MinIO resend (503), nothing is dead-lettered for it
    capture_broker.fail_next(1, status=503)
    again = app.test_client().post("/minio", json={"Records": [_record("inbox%2Flater.csv")]},
                                   headers={"Authorization": "Bearer t0ken"})
    assert again.status_code == 503 and len(_dead_letters(db)) == 1


def test_defect_1_store_flush_sets_aside_a_refused_event_and_goes_on(settings, db, capture_broker, tmp_path):
    resources = Resources(settings, db=db, send=lambda ev: events.send(ev, capture_broker.url))
    store = resources.store
    source = tmp_path / "f.csv"
    source.write_text("1,2\n")
    capture_broker.fail_next(1, status=503)          # the broker is down for the first upload
    store.put_file("inbox/first.csv", source)
    capture_broker.fail_next(1, status=400)          # ... and refuses the second for good
    store.put_file("inbox/second.csv", source)
    store.put_file("inbox/third.csv", source)        # taken at once
    assert store.pending_events() == 1               # first: kept for a later flush
    assert store.flush_events() == 1
    assert store.pending_events() == 0
    subjects = [ev["subject"] for ev in capture_broker.events]
    assert sorted(subjects) == ["inbox/first.csv", "inbox/third.csv"]
    (letter,) = _dead_letters(db)
    assert letter.component == "store" and "inbox/second.csv" in letter.reason
    assert json.loads(letter.payload)["data"]["key"] == "inbox/second.csv"
    # a queue that starts with a refused event does not stop at it either
    capture_broker.fail_next(2, status=503)
    store.put_file("inbox/fourth.csv", source)
    store.put_file("inbox/fifth.csv", source)
    capture_broker.fail_next(1, status=422)
    assert store.flush_events() == 1 and store.pending_events() == 0
    assert len(_dead_letters(db)) == 2


# ---------------------------------------------------------------------- defect 5
def test_defect_5_local_store_keeps_every_version(tmp_path):
    store = LocalStore(tmp_path / "store")
    a, b = tmp_path / "a.csv", tmp_path / "b.csv"
    a.write_text("first\n")
    b.write_text("second\n")
    va = store.put_file("inbox/星.csv", a).version_id
    vb = store.put_file("inbox/星.csv", b).version_id
    assert va != vb
    assert store.get_bytes("inbox/星.csv") == b"second\n"
    assert store.get_bytes("inbox/星.csv", va) == b"first\n"
    assert store.get_bytes("inbox/星.csv", vb) == b"second\n"
    for missing in ("0" * 32, "../../etc/passwd", ""):
        with pytest.raises(KeyError):
            store.get_bytes("inbox/星.csv", missing)
    store.delete("inbox/星.csv")
    with pytest.raises(KeyError):
        store.get_bytes("inbox/星.csv", va)


@pytest.mark.minio
def test_defect_5_minio_bucket_keeps_every_version(minio_store, tmp_path):
    a, b = tmp_path / "a.csv", tmp_path / "b.csv"
    a.write_text("first\n")
    b.write_text("second\n")
    va = minio_store.put_file("inbox/星.csv", a).version_id
    vb = minio_store.put_file("inbox/星.csv", b).version_id
    assert va and vb and va != vb
    assert minio_store.get_bytes("inbox/星.csv") == b"second\n"
    assert minio_store.get_bytes("inbox/星.csv", va) == b"first\n"


def test_defect_5_two_uploads_to_one_key_each_job_processes_its_own_content(make_runtime, tmp_path):
    """Upload A then B to the same key at once: each job reads the content whose upload made it
    (its inputs are pinned to that version), and every attempt records the version it read."""
    runtime = make_runtime()
    chain = ["ingest_external_lcs", "verify", "transit_search_bls_reference"]
    watch(runtime, chain=chain)
    made = make_lightcurves(tmp_path / "lcs", 3)
    (a, period_a), (b, period_b) = made[0], made[2]            # two CSV light curves
    store = Resources(runtime.settings, db=runtime.db).store
    etag_a = store.put_file("inbox/same.csv", a).etag
    etag_b = store.put_file("inbox/same.csv", b).etag
    wait_for(settled(runtime.db, expected_tasks=2 * len(chain)), what="both jobs to end")
    from eas_runtime.db import metadata as md
    found = {}
    with runtime.db.read() as s:
        for job in s.scalars(select(Job)):
            search = s.scalar(select(Task).where(Task.job_id == job.id,
                                                 Task.task_type == "transit_search_bls_reference"))
            attempt = s.scalar(select(Attempt).where(Attempt.task_id == search.id, Attempt.error.is_(False)))
            ingest = s.scalar(select(Task).where(Task.job_id == job.id, Task.task_type == "ingest_external_lcs"))
            read = s.scalars(select(AttemptInput).join(Attempt, Attempt.id == AttemptInput.attempt_id)
                             .where(Attempt.task_id == ingest.id)).all()
            found[job.spec["etag"]] = (md.get_metadata(s, "attempt", attempt.id)["period"], [r.etag for r in read])
    assert set(found) == {etag_a, etag_b}
    assert abs(found[etag_a][0] / period_a - 1) < 0.01, found
    assert abs(found[etag_b][0] / period_b - 1) < 0.01, found
    assert found[etag_a][1] == [etag_a] and found[etag_b][1] == [etag_b]


# ---------------------------------------------------------------------- defect 11 (forged outputs)
@pytest.mark.parametrize("meta", [{"eas-attempt-id": "999999"}, {"eas-attempt-id": "x"},
                                  {"eas-attempt-id": "99999999999999999999999999999"}])
def test_defect_11_upload_dressed_as_an_output_is_a_dead_letter(settings, db, meta):
    app = control_app(Resources(settings, db=db, send=lambda ev: None))
    store = LocalStore(settings.store_path)
    info = store.stat("inbox/a.csv")
    assert info is None
    from eas_runtime.store.base import ObjectInfo
    import datetime as dt
    info = ObjectInfo(bucket="eas", key="inbox/forged.csv", size=3, etag="abc",
                      last_modified=dt.datetime.now(dt.timezone.utc), metadata=meta)
    headers, body = events.to_http(product_created_event(info, "seq"))
    answer = app.test_client().post("/", headers=headers, data=body)
    assert answer.status_code == 202
    (letter,) = _dead_letters(db)
    assert letter.component == "control" and "inbox/forged.csv" in letter.reason
    assert "eas-attempt-id" in letter.reason or "attempt" in letter.reason


def test_defect_1_unicode_key_upload_is_processed_and_holds_up_nothing(tmp_path):
    """`eas upload --key 'inbox/星.csv'` against a running `eas up`: that upload and the ones
    after it are all processed (S3 keys are any UTF-8; the event's subject header is
    percent-encoded)."""
    import os
    import signal
    import subprocess
    import sys

    from eas_runtime import devservers
    from eas_runtime.settings import PROJECT_ROOT
    sample = PROJECT_ROOT / "functions" / "ingest_external_lcs" / "sample" / "lcsg_example.csv"
    env = dict(os.environ, EAS_HOME=str(tmp_path / "home"), EAS_GATEWAY_PORT=str(devservers.free_port()),
               EAS_INDEX_PORT=str(devservers.free_port()), EAS_ADAPTER_PORT=str(devservers.free_port()),
               EAS_RECONCILE_S="2")
    eas = [sys.executable, "-m", "eas_runtime.cli"]

    def run(*args):
        return subprocess.run([*eas, *args], env=env, capture_output=True, text=True, timeout=120, check=True,
                              cwd=PROJECT_ROOT)
    run("watch", "add", "--prefix", "inbox/", "--tasks", "ingest_external_lcs,verify")
    up = subprocess.Popen([*eas, "up"], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                          cwd=PROJECT_ROOT)
    try:
        wait_for(lambda: "EAS is up" in (up.stdout.readline() or ""), timeout_s=90, what="eas up")
        keys = ["inbox/星.csv", "inbox/ümlaut %20 \"quoted\".csv", "inbox/plain.csv"]
        for key in keys:
            assert key in run("upload", "--key", key, str(sample)).stdout

        def finished():
            status = json.loads(run("status", "--json").stdout)
            return status if status["tasks"]["done"] + status["tasks"]["failed"] == 2 * len(keys) else None
        status = wait_for(finished, timeout_s=240, interval_s=1, what="every upload to be processed")
        assert status["tasks"]["done"] == 2 * len(keys), status
        db = Database(f"sqlite:///{tmp_path / 'home' / 'eas.db'}")
        with db.read() as s:
            uploaded = {spec["object"] for spec in s.scalars(select(Job.spec))}
            letters = s.scalars(select(DeadLetter)).all()
        db.dispose()
        assert uploaded == set(keys) and not letters
        assert not list((tmp_path / "home" / "store-events").glob("*"))     # nothing left queued
    finally:
        up.send_signal(signal.SIGTERM)
        up.wait(timeout=60)
