"""The object-store interface shared by the MinIO and local-directory implementations.

Keys are ``/``-separated paths inside one bucket, never starting with ``/`` and never holding
``..``. Writes are atomic: an object appears whole or not at all. User metadata is a flat
``str -> str`` map (S3 user metadata), stored with the object.
"""
from __future__ import annotations

import abc
import datetime as dt
import hashlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator, Mapping

from eas_runtime import events


class StoreError(RuntimeError):
    """Base class of store failures."""


class StoreUnavailable(StoreError):
    """The store cannot be reached; the caller should retry later (HTTP 503)."""


class ObjectNotFound(StoreError, KeyError):
    """No object has that key."""

    def __str__(self) -> str:  # KeyError quotes its argument; keep the plain message
        return str(self.args[0]) if self.args else "object not found"


@dataclass(frozen=True)
class ObjectInfo:
    bucket: str
    key: str
    size: int
    etag: str
    last_modified: dt.datetime
    version_id: str | None = None
    content_type: str = "application/octet-stream"
    metadata: Mapping[str, str] = field(default_factory=dict)

    def to_dict(self) -> dict:
        return {"bucket": self.bucket, "key": self.key, "size": self.size, "etag": self.etag,
                "last_modified": self.last_modified.isoformat(), "version_id": self.version_id,
                "content_type": self.content_type, "metadata": dict(self.metadata)}


def check_key(key: str) -> str:
    if not key or key.startswith("/") or "\\" in key or any(p in ("", ".", "..") for p in key.split("/")):
        raise ValueError(f"invalid object key {key!r}: use a relative '/'-separated path without '..'")
    return key


def md5_of(path: Path) -> str:
    h = hashlib.md5()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


class ObjectStore(abc.ABC):
    """What the runtime needs from an object store."""

    bucket: str

    @abc.abstractmethod
    def put_file(self, key: str, path: Path, metadata: Mapping[str, str] | None = None,
                 content_type: str = "application/octet-stream") -> ObjectInfo: ...

    def put_bytes(self, key: str, data: bytes, metadata: Mapping[str, str] | None = None,
                  content_type: str = "application/octet-stream") -> ObjectInfo:
        import tempfile
        with tempfile.NamedTemporaryFile(prefix="eas-put-") as tmp:
            tmp.write(data)
            tmp.flush()
            return self.put_file(key, Path(tmp.name), metadata, content_type)

    @abc.abstractmethod
    def get_file(self, key: str, dest: Path) -> ObjectInfo: ...

    def get_bytes(self, key: str) -> bytes:
        import tempfile
        with tempfile.TemporaryDirectory(prefix="eas-get-") as tmp:
            dest = Path(tmp) / "object"
            self.get_file(key, dest)
            return dest.read_bytes()

    @abc.abstractmethod
    def stat(self, key: str) -> ObjectInfo | None: ...

    def exists(self, key: str) -> bool:
        return self.stat(key) is not None

    @abc.abstractmethod
    def list(self, prefix: str = "") -> Iterator[ObjectInfo]: ...

    @abc.abstractmethod
    def delete(self, key: str) -> None: ...

    @abc.abstractmethod
    def ping(self) -> None:
        """Raise :class:`StoreUnavailable` when the store cannot be reached."""

    def url(self, key: str, expires_s: int = 3600) -> str | None:
        """A URL a browser can download the object from, or None (the site streams it)."""
        return None


def product_created_event(info: ObjectInfo, sequencer: str):
    """The ``product.created`` CloudEvent for a stored object.

    ``sequencer`` distinguishes two uploads of the same content to the same key; a store that
    resends the same notification gives the same sequencer, hence the same event id.
    """
    data = info.to_dict()
    data["sequencer"] = sequencer
    return events.make_event(
        events.PRODUCT_CREATED, events.SOURCE_STORE + "/" + info.bucket, data,
        id=events.stable_id(info.bucket, info.key, info.etag, sequencer), subject=info.key)
