"""The embedded default store: a directory that behaves like one bucket of an S3 store.

An object ``key`` lives at ``<root>/<bucket>/<key>``; its user metadata, ETag and content type
at ``<root>/.meta/<bucket>/<key>.json``. Writes go to a temporary name in the same folder and
are renamed into place (atomic on POSIX), metadata first, so a reader never sees half an object.

Like a versioned S3 bucket, every write is a new immutable version: its bytes are hard-linked
at ``<root>/.versions/<bucket>/<h>/<sha256 of key>/<version id>`` (a link costs no space until
the key is overwritten; the hash keeps any key, however long or odd, a short file name) with its
record beside it, so ``get_file(key, dest, version_id)`` returns the content of that upload
even after later writes to the key. ``delete`` removes the key and all its versions.

Like a MinIO bucket with a webhook target and ``queue_dir``, every write produces a
``product.created`` event: it is first written to ``queue_dir`` and then handed to ``notify``;
events that could not be delivered stay queued and are sent again by :meth:`flush_events`.
A refusal that a retry cannot change (the broker's 4xx, an event that cannot be encoded) is
not retried: the event is moved aside (``*.refused``) and handed to ``on_refused`` (the
runtime keeps it as a dead letter), so it never holds up the events queued after it.
"""
from __future__ import annotations

import datetime as dt
import hashlib
import json
import logging
import os
import shutil
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any, Callable, Iterator, Mapping

from cloudevents.conversion import to_json
from cloudevents.http import CloudEvent, from_json

from eas_runtime import events
from eas_runtime.store.base import (InvalidKey, ObjectInfo, ObjectNotFound, ObjectStore, StoreUnavailable,
                                    check_key, md5_of, product_created_event)

log = logging.getLogger(__name__)

Notify = Callable[[CloudEvent], None]
Refused = Callable[[CloudEvent | None, str], None]   # None: the queued file was unreadable
#: Longest key component the local store accepts, in UTF-8 bytes: file names are at most 255
#: bytes on Linux file systems, and a metadata record adds ".json".
MAX_COMPONENT_BYTES = 250


class LocalStore(ObjectStore):
    def __init__(self, root: Path, bucket: str = "eas", *, queue_dir: Path | None = None,
                 notify: Notify | None = None, on_refused: Refused | None = None):
        self.root = Path(root)
        self.bucket = bucket
        self.data_dir = self.root / bucket
        self.meta_dir = self.root / ".meta" / bucket
        self.versions_dir = self.root / ".versions" / bucket
        self.queue_dir = Path(queue_dir) if queue_dir else self.root / ".events"
        self.notify = notify
        self.on_refused = on_refused
        for d in (self.data_dir, self.meta_dir, self.versions_dir, self.queue_dir):
            d.mkdir(parents=True, exist_ok=True)

    # ------------------------------------------------------------------ paths
    @staticmethod
    def _checked(key: str) -> str:
        check_key(key)
        for part in key.split("/"):
            if len(part.encode("utf-8")) > MAX_COMPONENT_BYTES:
                raise InvalidKey(f"invalid object key {key[:80]!r}: the local store keeps each '/'-separated "
                                 f"part as a file name, at most {MAX_COMPONENT_BYTES} bytes of UTF-8")
        return key

    def _data(self, key: str) -> Path:
        return self.data_dir / self._checked(key)

    def _meta(self, key: str) -> Path:
        return self.meta_dir / (self._checked(key) + ".json")

    def _versions(self, key: str) -> Path:
        digest = hashlib.sha256(self._checked(key).encode("utf-8")).hexdigest()
        return self.versions_dir / digest[:2] / digest

    def _version(self, key: str, version_id: str) -> Path:
        if not version_id or not all(c in "0123456789abcdef" for c in version_id):
            raise ObjectNotFound(f"no version {version_id!r} of {key!r} in bucket {self.bucket!r}")
        return self._versions(key) / version_id

    # ------------------------------------------------------------------ writes
    def put_file(self, key: str, path: Path, metadata: Mapping[str, str] | None = None,
                 content_type: str = "application/octet-stream") -> ObjectInfo:
        dest = self._data(key)
        meta_path = self._meta(key)
        dest.parent.mkdir(parents=True, exist_ok=True)
        meta_path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp_name = tempfile.mkstemp(prefix=".put-", dir=dest.parent)
        os.close(fd)
        tmp = Path(tmp_name)
        try:
            shutil.copyfile(path, tmp)
            etag = md5_of(tmp)
            size = tmp.stat().st_size
            record: dict[str, Any] = {"etag": etag, "size": size, "content_type": content_type,
                      "metadata": {str(k): str(v) for k, v in (metadata or {}).items()},
                      "version_id": uuid.uuid4().hex,
                      "last_modified": dt.datetime.now(dt.timezone.utc).isoformat()}
            versions = self._versions(key)
            versions.mkdir(parents=True, exist_ok=True)
            _atomic_write_text(versions / (record["version_id"] + ".json"), json.dumps(record))
            os.link(tmp, versions / record["version_id"])
            _atomic_write_text(meta_path, json.dumps(record))
            os.replace(tmp, dest)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
        info = self._info(key, record)
        self._emit(info, record["version_id"])
        return info

    def delete(self, key: str) -> None:
        self._data(key).unlink(missing_ok=True)
        self._meta(key).unlink(missing_ok=True)
        shutil.rmtree(self._versions(key), ignore_errors=True)

    # ------------------------------------------------------------------ reads
    def _record(self, key: str) -> dict | None:
        data = self._data(key)
        if not data.is_file():
            return None
        try:
            return json.loads(self._meta(key).read_text())
        except (FileNotFoundError, json.JSONDecodeError):
            # A file dropped into the folder by hand: describe it from the file itself.
            st = data.stat()
            return {"etag": md5_of(data), "size": st.st_size, "metadata": {},
                    "content_type": "application/octet-stream", "version_id": None,
                    "last_modified": dt.datetime.fromtimestamp(st.st_mtime, dt.timezone.utc).isoformat()}

    def _info(self, key: str, record: dict) -> ObjectInfo:
        return ObjectInfo(bucket=self.bucket, key=key, size=int(record["size"]), etag=record["etag"],
                          last_modified=dt.datetime.fromisoformat(record["last_modified"]),
                          version_id=record.get("version_id"),
                          content_type=record.get("content_type", "application/octet-stream"),
                          metadata=record.get("metadata", {}))

    def stat(self, key: str) -> ObjectInfo | None:
        record = self._record(key)
        return None if record is None else self._info(key, record)

    def version_path(self, key: str, version_id: str) -> Path | None:
        """The file holding that version's bytes (never rewritten), or None when gone."""
        try:
            path = self._version(key, version_id)
        except (ObjectNotFound, InvalidKey):
            return None
        return path if path.is_file() else None

    def has_version(self, key: str, version_id: str) -> bool:
        return self.version_path(key, version_id) is not None

    def get_file(self, key: str, dest: Path, version_id: str | None = None) -> ObjectInfo:
        if version_id is not None:
            source = self._version(key, version_id)
            try:
                record = json.loads(source.with_name(version_id + ".json").read_text())
            except (FileNotFoundError, json.JSONDecodeError):
                raise ObjectNotFound(f"no version {version_id!r} of {key!r} in bucket {self.bucket!r}") from None
        else:
            record = self._record(key)
            if record is None:
                raise ObjectNotFound(f"no object {key!r} in bucket {self.bucket!r}")
            source = self._data(key)
        dest = Path(dest)
        dest.parent.mkdir(parents=True, exist_ok=True)
        try:
            shutil.copyfile(source, dest)
        except FileNotFoundError:       # deleted (or overwritten by hand) since the record was read
            raise ObjectNotFound(f"no object {key!r} (version {version_id}) in bucket {self.bucket!r}") from None
        return self._info(key, record)

    def list(self, prefix: str = "") -> Iterator[ObjectInfo]:
        for path in sorted(self.data_dir.rglob("*")):
            if not path.is_file() or path.name.startswith(".put-"):
                continue
            key = path.relative_to(self.data_dir).as_posix()
            try:
                self._checked(key)
            except InvalidKey:              # a file dropped in by hand under a name no key can have
                continue
            if key.startswith(prefix):
                info = self.stat(key)
                if info is not None:
                    yield info

    def ping(self) -> None:
        if not self.data_dir.is_dir() or not os.access(self.data_dir, os.W_OK):
            raise StoreUnavailable(f"local store folder {self.data_dir} is missing or not writable")

    # ------------------------------------------------------------------ notifications
    def _emit(self, info: ObjectInfo, sequencer: str) -> None:
        event = product_created_event(info, sequencer)
        queued = self.queue_dir / f"{time.time_ns():020d}-{event['id']}.json"
        _atomic_write_text(queued, to_json(event).decode())
        self._deliver(queued, event)

    def _deliver(self, queued: Path, event: CloudEvent) -> bool | None:
        """True: delivered; False: not now (the broker is unreachable or answered a status
        worth retrying), the event stays queued; None: refused for good, moved aside."""
        if self.notify is None:
            return False
        try:
            self.notify(event)
        except Exception as exc:  # noqa: BLE001 - every failure is either kept or set aside
            if events.is_transient(exc):
                log.warning("product.created for %s queued, delivery failed: %s", event["subject"], exc)
                return False
            self._refuse(queued, event, f"product.created for {event['subject']!r} refused for good, "
                                        f"not retried: {type(exc).__name__}: {exc}")
            return None
        queued.unlink(missing_ok=True)
        return True

    def _refuse(self, queued: Path, event: CloudEvent | None, reason: str) -> None:
        log.error("%s (%s)", reason, queued.name)
        try:
            queued.rename(queued.with_suffix(".refused"))
        except FileNotFoundError:       # a concurrent flush set it aside first
            return
        if self.on_refused is not None:
            try:
                self.on_refused(event, reason)
            except Exception as exc:  # noqa: BLE001 - the file stays as the record
                log.error("could not record the refused event %s: %s", queued.name, exc)

    def flush_events(self) -> int:
        """Send every queued event again, oldest first; return how many were delivered. Stops
        at the first event the broker could not take now (it is down: the order is kept for
        the next flush); an event refused for good is set aside and the flush goes on."""
        sent = 0
        for queued in sorted(self.queue_dir.glob("*.json")):
            try:
                event = from_json(queued.read_bytes())
            except FileNotFoundError:       # delivered by a concurrent flush meanwhile
                continue
            except Exception as exc:  # noqa: BLE001 - a corrupt queue file must not block others
                self._refuse(queued, None, f"unreadable queued store event: {type(exc).__name__}: {exc}")
                continue
            delivered = self._deliver(queued, event)
            if delivered is False:
                break
            sent += int(bool(delivered))
        return sent

    def pending_events(self) -> int:
        return sum(1 for _ in self.queue_dir.glob("*.json"))


def _atomic_write_text(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".put-", dir=path.parent)
    with os.fdopen(fd, "w") as fh:
        fh.write(text)
    os.replace(tmp, path)
