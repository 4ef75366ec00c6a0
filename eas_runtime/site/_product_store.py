"""Which product versions the object store can still serve, and fetching them.

Both stores keep one object per key: a new version of a file replaces the previous content
(the MinIO bucket is not versioned, and :meth:`ObjectStore.url` presigns the current object
only). A recorded version can therefore be served exactly when the store's current object
has that version's ETag (MD5); any other version is reported as superseded (HTTP 410).
"""
from __future__ import annotations

from pathlib import Path

from eas_runtime.store import ObjectNotFound, ObjectStore
from eas_runtime.store.local import LocalStore


class Superseded(LookupError):
    """The store no longer holds this version's content (the message says what it holds)."""


def _plain(etag: str | None) -> str:
    return (etag or "").strip('"')


def current_etag(store: ObjectStore, key: str) -> str | None:
    """ETag of the object the store holds under ``key`` now, or None when it holds none."""
    info = store.stat(key)
    return None if info is None else _plain(info.etag)


def held(version: dict, current: str | None) -> bool:
    """Whether the store's current object (ETag ``current``) is this version's content."""
    return current is not None and _plain(version["md5"]) == current


def _superseded(version: dict, current: str | None) -> Superseded:
    what = (f"it holds other content under that key now (MD5 {current})" if current
            else "it holds no object under that key")
    return Superseded(f"version {version['id']} of {version['key']} (MD5 {version['md5']}) is "
                      f"no longer in the object store: {what}; the store keeps the latest "
                      f"content of a key only")


def check_held(store: ObjectStore, version: dict) -> None:
    """Raise :class:`Superseded` unless the store holds this version's content now."""
    current = current_etag(store, version["key"])
    if not held(version, current):
        raise _superseded(version, current)


def local_path(store: ObjectStore, key: str) -> Path | None:
    """The file behind ``key`` when the store is a local folder (streamed as it is)."""
    if isinstance(store, LocalStore):
        return store.data_dir / key
    return None


def fetch(store: ObjectStore, version: dict, dest: Path) -> Path:
    """Copy the version's content to ``dest``; Superseded when the store holds other content
    (checked before and after the copy, so a concurrent overwrite is noticed)."""
    check_held(store, version)
    try:
        info = store.get_file(version["key"], dest)
    except ObjectNotFound:
        raise _superseded(version, None) from None
    if _plain(info.etag) != _plain(version["md5"]):
        raise _superseded(version, _plain(info.etag))
    return dest
