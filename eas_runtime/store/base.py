"""The object-store interface shared by the MinIO and local-directory implementations.

Keys are ``/``-separated paths inside one bucket, never starting with ``/`` and never holding
``..``; any other UTF-8 is allowed, as in S3. Writes are atomic: an object appears whole or not
at all. User metadata is a flat ``str -> str`` map (S3 user metadata), stored with the object.

Every write makes a new, immutable version (S3 bucket versioning; the local store keeps each
version's bytes), so a task can read exactly the content whose upload created its job, however
often the key is overwritten meanwhile: ``get_file(key, dest, version_id=...)``.
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


#: S3's limit on a key's length, in UTF-8 bytes.
MAX_KEY_BYTES = 1024
#: The task database's key columns hold 1000 characters (VARCHAR(1000) on PostgreSQL).
MAX_KEY_CHARS = 1000
#: Largest object size a notification or event may state: S3's limit is 5 TiB, well inside 2**62.
MAX_OBJECT_SIZE = 2 ** 62


class InvalidKey(ValueError):
    """An object key that no store accepts; the message names the key and the rule it breaks."""


def check_key(key: str) -> str:
    """``key`` when it is a usable object key, else :class:`InvalidKey` naming the problem.

    Allowed: any UTF-8 text of 1-1024 bytes (and at most 1000 characters), ``/``-separated,
    relative (no leading ``/``), with no empty, ``.`` or ``..`` component (so a key can never
    name a path outside the bucket, in the local store or anywhere a key becomes a file name),
    no backslash and no control characters (NUL ends a C string; a newline breaks logs and
    headers)."""
    if not isinstance(key, str) or not key:
        raise InvalidKey(f"invalid object key {key!r}: a key is a non-empty string")
    try:
        size = len(key.encode("utf-8"))
    except UnicodeEncodeError:
        raise InvalidKey(f"invalid object key {key!r}: not valid UTF-8 (lone surrogate)") from None
    if size > MAX_KEY_BYTES or len(key) > MAX_KEY_CHARS:
        raise InvalidKey(f"invalid object key {key[:80]!r}...: {len(key)} characters, {size} bytes of "
                         f"UTF-8; at most {MAX_KEY_CHARS} characters and {MAX_KEY_BYTES} bytes")
    if any(ord(c) < 0x20 or ord(c) == 0x7F for c in key):
        raise InvalidKey(f"invalid object key {key!r}: control characters are not allowed")
    if key.startswith("/") or "\\" in key or any(p in ("", ".", "..") for p in key.split("/")):
        raise InvalidKey(f"invalid object key {key!r}: use a relative '/'-separated path without "
                         "empty, '.' or '..' parts or backslashes")
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
    def get_file(self, key: str, dest: Path, version_id: str | None = None) -> ObjectInfo:
        """Copy the object to ``dest``: the version ``version_id`` when given (ObjectNotFound
        when the store no longer holds it), else the latest."""

    def get_bytes(self, key: str, version_id: str | None = None) -> bytes:
        import tempfile
        with tempfile.TemporaryDirectory(prefix="eas-get-") as tmp:
            dest = Path(tmp) / "object"
            self.get_file(key, dest, version_id)
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

    def has_version(self, key: str, version_id: str) -> bool:
        """Whether the store still holds version ``version_id`` of ``key``."""
        return False

    def url(self, key: str, expires_s: int = 3600, version_id: str | None = None) -> str | None:
        """A URL a browser can download the object (that version) from, or None (the site
        streams it)."""
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
