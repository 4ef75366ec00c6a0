"""Which product versions the object store can still serve, and fetching them.

Both stores keep every version of a key (S3 bucket versioning; the local store's version
files), so a recorded version with a store version id (``object_version``) is served from that
version, whatever the key holds now. A version without one (recorded before the store kept
versions, or a file dropped into the store by hand) can be served only while the store's
current object has its ETag (MD5); otherwise it is reported as superseded (HTTP 410).
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
                      f"no longer in the object store: {what}; it was recorded without a store "
                      f"version id, and for such versions the store serves the latest content of "
                      f"a key only")


def kept(store: ObjectStore, version: dict) -> str | None:
    """The store version id of a version the store still keeps, else None."""
    object_version = version.get("object_version")
    if object_version and store.has_version(version["key"], object_version):
        return object_version
    return None


def check_held(store: ObjectStore, version: dict) -> None:
    """Raise :class:`Superseded` unless the store holds this version's content (as a kept
    version, or as the key's current content)."""
    if kept(store, version):
        return
    current = current_etag(store, version["key"])
    if not held(version, current):
        raise _superseded(version, current)


def local_path(store: ObjectStore, version: dict) -> Path | None:
    """The file behind the version when the store is a local folder (streamed as it is): its
    version file when kept (never rewritten), else the key's current file."""
    if isinstance(store, LocalStore):
        object_version = version.get("object_version")
        path = store.version_path(version["key"], object_version) if object_version else None
        return path or store.data_dir / version["key"]
    return None


def url(store: ObjectStore, version: dict, expires_s: int) -> str | None:
    """A presigned URL of exactly this version, when the store gives URLs."""
    return store.url(version["key"], expires_s=expires_s, version_id=kept(store, version))


def fetch(store: ObjectStore, version: dict, dest: Path) -> Path:
    """Copy the version's content to ``dest``; Superseded when the store holds other content
    (checked before and after the copy, so a concurrent overwrite is noticed)."""
    held_version = kept(store, version)
    if held_version:
        try:
            store.get_file(version["key"], dest, version_id=held_version)
            return dest
        except ObjectNotFound:
            pass                    # deleted meanwhile: fall back to the key's content
    check_held(store, version)
    try:
        info = store.get_file(version["key"], dest)
    except ObjectNotFound:
        raise _superseded(version, None) from None
    if _plain(info.etag) != _plain(version["md5"]):
        raise _superseded(version, _plain(info.etag))
    return dest
