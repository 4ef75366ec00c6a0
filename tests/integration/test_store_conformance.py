"""One contract, two object stores: every test runs on the local store and on a real MinIO."""
from __future__ import annotations

import datetime as dt
import hashlib
import threading
import time

import pytest
import requests

from eas_runtime.store.base import ObjectNotFound, StoreUnavailable
from eas_runtime.store.local import LocalStore
from eas_runtime.store.minio_store import MinioStore

#: Loopback calls never go through a proxy from the environment.
http = requests.Session()
http.trust_env = False


@pytest.fixture(params=["local", pytest.param("minio", marks=pytest.mark.minio)])
def store(request, tmp_path):
    if request.param == "local":
        return LocalStore(tmp_path / "store", "eas")
    return request.getfixturevalue("minio_store")


def md5(data: bytes) -> str:
    return hashlib.md5(data).hexdigest()


def test_put_and_get_round_trip(store, tmp_path):
    src = tmp_path / "in.bin"
    data = bytes(range(256)) * 1000
    src.write_bytes(data)
    info = store.put_file("run1/lc/star.bin", src)
    assert (info.bucket, info.key, info.size, info.etag) == (store.bucket, "run1/lc/star.bin",
                                                            len(data), md5(data))
    dest = tmp_path / "out" / "deeper" / "star.bin"  # parent folders are created
    got = store.get_file("run1/lc/star.bin", dest)
    assert dest.read_bytes() == data
    assert (got.size, got.etag) == (len(data), md5(data))
    assert store.get_bytes("run1/lc/star.bin") == data
    assert not any(p.name != "star.bin" for p in dest.parent.iterdir()), "no temporary files left"


def test_empty_object(store):
    info = store.put_bytes("empty/file", b"")
    assert info.size == 0
    assert store.get_bytes("empty/file") == b""
    assert store.stat("empty/file").size == 0


def test_stat_returns_metadata_and_content_type(store, tmp_path):
    metadata = {"task": "12", "attempt": "3", "semantic_type": "light_curve"}
    store.put_bytes("w/out.fits", b"SIMPLE  =", metadata, content_type="application/fits")
    info = store.stat("w/out.fits")
    assert info is not None
    assert dict(info.metadata) == metadata
    assert info.content_type == "application/fits"
    assert (info.size, info.etag) == (9, md5(b"SIMPLE  ="))
    assert info.last_modified.tzinfo is not None
    assert abs(info.last_modified - dt.datetime.now(dt.timezone.utc)) < dt.timedelta(minutes=5)
    got = store.get_file("w/out.fits", tmp_path / "x")
    assert dict(got.metadata) == metadata


def test_exists_and_not_found(store, tmp_path):
    assert store.stat("nothing/here") is None
    assert not store.exists("nothing/here")
    with pytest.raises(ObjectNotFound):
        store.get_file("nothing/here", tmp_path / "x")
    with pytest.raises(KeyError):  # ObjectNotFound is a KeyError as well
        store.get_bytes("nothing/here")
    assert not (tmp_path / "x").exists()
    store.put_bytes("nothing/here", b"now")
    assert store.exists("nothing/here")


def test_list_is_recursive_and_filters_by_prefix(store):
    for key in ("a/1.txt", "a/b/2.txt", "a/b/c/3.txt", "ab/4.txt", "b/5.txt"):
        store.put_bytes(key, key.encode(), {"origin": key})
    assert sorted(i.key for i in store.list()) == ["a/1.txt", "a/b/2.txt", "a/b/c/3.txt",
                                                   "ab/4.txt", "b/5.txt"]
    assert sorted(i.key for i in store.list("a/")) == ["a/1.txt", "a/b/2.txt", "a/b/c/3.txt"]
    assert sorted(i.key for i in store.list("a")) == ["a/1.txt", "a/b/2.txt", "a/b/c/3.txt",
                                                      "ab/4.txt"]
    assert list(store.list("zzz/")) == []
    for info in store.list():
        assert info.size == len(info.key)
        assert info.etag == md5(info.key.encode())
        assert dict(info.metadata) == {"origin": info.key}
        assert info.bucket == store.bucket


def test_delete(store):
    store.put_bytes("d/x", b"1")
    store.put_bytes("d/y", b"2")
    store.delete("d/x")
    assert not store.exists("d/x")
    assert store.exists("d/y")
    store.delete("d/x")  # deleting a missing key is not an error
    store.delete("never/existed")
    assert [i.key for i in store.list("d/")] == ["d/y"]


def test_keys_with_spaces_plus_and_unicode(store):
    key = "inbox/campaign 1/star+42 ü.fits"
    store.put_bytes(key, b"data", {"k": "v"})
    assert store.get_bytes(key) == b"data"
    assert [i.key for i in store.list("inbox/")] == [key]
    assert store.stat(key).metadata == {"k": "v"}


@pytest.mark.parametrize("key", ["", "/abs", "a/../b", "a//b", "./a", "a\\b"])
def test_invalid_keys_are_refused(store, key):
    with pytest.raises(ValueError):
        store.put_bytes(key, b"x")


def test_overwrite_is_atomic(store):
    """Readers of a key being overwritten see one whole version, never a mix or nothing."""
    versions = [bytes([65 + i]) * (1 << 20) for i in range(3)]
    store.put_bytes("atomic/obj", versions[0])
    stop = threading.Event()
    errors: list[str] = []

    def writer():
        i = 0
        while not stop.is_set():
            i += 1
            store.put_bytes("atomic/obj", versions[i % 3], {"version": str(i % 3)})

    thread = threading.Thread(target=writer)
    thread.start()
    try:
        deadline = time.monotonic() + 3
        reads = 0
        while time.monotonic() < deadline:
            data = store.get_bytes("atomic/obj")
            reads += 1
            if data not in versions:
                errors.append(f"read {len(data)} bytes that are no whole version")
    finally:
        stop.set()
        thread.join()
    assert not errors, errors[:3]
    assert reads > 3
    final = store.get_bytes("atomic/obj")
    info = store.stat("atomic/obj")
    assert info.etag == md5(final) and info.size == len(final)
    assert info.metadata["version"] == str(versions.index(final))


def test_url(store):
    store.put_bytes("u/file.txt", b"download me", content_type="text/plain")
    url = store.url("u/file.txt", expires_s=60)
    if isinstance(store, LocalStore):
        assert url is None  # the index site streams local objects itself
        return
    response = http.get(url, timeout=10)
    assert response.status_code == 200
    assert response.content == b"download me"
    assert http.get(url.replace("u/file.txt", "u/other.txt"), timeout=10).status_code == 403


def test_ping(store):
    store.ping()


@pytest.mark.minio
def test_minio_unavailable_is_reported_quickly(minio_factory, tmp_path):
    server = minio_factory()
    store = MinioStore(server.endpoint, server.access_key, server.secret_key, "unavailable")
    store.ensure_bucket()
    store.put_bytes("k/1", b"one")
    src = tmp_path / "src"
    src.write_bytes(b"two")
    server.stop()
    operations = {
        "ping": store.ping,
        "stat": lambda: store.stat("k/1"),
        "exists": lambda: store.exists("k/1"),
        "get_file": lambda: store.get_file("k/1", tmp_path / "dest"),
        "put_file": lambda: store.put_file("k/2", src),
        "list": lambda: list(store.list()),
        "delete": lambda: store.delete("k/1"),
        "ensure_bucket": store.ensure_bucket,
        "enable_notifications": store.enable_notifications,
    }
    for name, operation in operations.items():
        t0 = time.monotonic()
        with pytest.raises(StoreUnavailable):
            operation()
        assert time.monotonic() - t0 < 3, f"{name} took {time.monotonic() - t0:.1f} s to fail"
    # Back up: the same client works again and nothing was lost.
    server.start()
    store.ping()
    assert store.get_bytes("k/1") == b"one"


@pytest.mark.minio
def test_minio_ping_reports_missing_bucket(minio_server):
    store = MinioStore(minio_server.endpoint, minio_server.access_key, minio_server.secret_key,
                       "no-such-bucket-here")
    with pytest.raises(StoreUnavailable, match="no bucket"):
        store.ping()
    assert store.stat("a/b") is None
    assert list(store.list()) == []


@pytest.mark.minio
def test_minio_wrong_credentials_are_not_unavailability(minio_server):
    from eas_runtime.store.base import StoreError

    store = MinioStore(minio_server.endpoint, minio_server.access_key, "wrong-secret-key",
                       "whatever")
    with pytest.raises(StoreError) as excinfo:
        store.put_bytes("a/b", b"x")
    assert not isinstance(excinfo.value, StoreUnavailable)


@pytest.mark.minio
def test_minio_notifications_need_the_webhook_target(minio_store):
    from eas_runtime.store.base import StoreError

    # The session server has no webhook target, so the ARN is unknown to it.
    with pytest.raises(StoreError, match="MINIO_NOTIFY_WEBHOOK"):
        minio_store.enable_notifications()
