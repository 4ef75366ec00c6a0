"""The embedded default store: a directory that behaves like one bucket of an S3 store.

An object ``key`` lives at ``<root>/<bucket>/<key>``; its user metadata, ETag and content type
at ``<root>/.meta/<bucket>/<key>.json``. Writes go to a temporary name in the same folder and
are renamed into place (atomic on POSIX), metadata first, so a reader never sees half an object.

Like a MinIO bucket with a webhook target and ``queue_dir``, every write produces a
``product.created`` event: it is first written to ``queue_dir`` and then handed to ``notify``;
events that could not be delivered stay queued and are sent again by :meth:`flush_events`.
"""
from __future__ import annotations

import datetime as dt
import json
import logging
import os
import shutil
import tempfile
import time
import uuid
from pathlib import Path
from typing import Callable, Iterator, Mapping

from cloudevents.conversion import to_json
from cloudevents.http import CloudEvent, from_json

from eas_runtime.store.base import (ObjectInfo, ObjectNotFound, ObjectStore, StoreUnavailable,
                                    check_key, md5_of, product_created_event)

log = logging.getLogger(__name__)

Notify = Callable[[CloudEvent], None]


class LocalStore(ObjectStore):
    def __init__(self, root: Path, bucket: str = "eas", *, queue_dir: Path | None = None,
                 notify: Notify | None = None):
        self.root = Path(root)
        self.bucket = bucket
        self.data_dir = self.root / bucket
        self.meta_dir = self.root / ".meta" / bucket
        self.queue_dir = Path(queue_dir) if queue_dir else self.root / ".events"
        self.notify = notify
        for d in (self.data_dir, self.meta_dir, self.queue_dir):
            d.mkdir(parents=True, exist_ok=True)

    # ------------------------------------------------------------------ paths
    def _data(self, key: str) -> Path:
        return self.data_dir / check_key(key)

    def _meta(self, key: str) -> Path:
        return self.meta_dir / (check_key(key) + ".json")

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
            record = {"etag": etag, "size": size, "content_type": content_type,
                      "metadata": {str(k): str(v) for k, v in (metadata or {}).items()},
                      "version_id": uuid.uuid4().hex,
                      "last_modified": dt.datetime.now(dt.timezone.utc).isoformat()}
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

    def get_file(self, key: str, dest: Path) -> ObjectInfo:
        record = self._record(key)
        if record is None:
            raise ObjectNotFound(f"no object {key!r} in bucket {self.bucket!r}")
        dest = Path(dest)
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(self._data(key), dest)
        return self._info(key, record)

    def list(self, prefix: str = "") -> Iterator[ObjectInfo]:
        for path in sorted(self.data_dir.rglob("*")):
            if not path.is_file() or path.name.startswith(".put-"):
                continue
            key = path.relative_to(self.data_dir).as_posix()
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

    def _deliver(self, queued: Path, event: CloudEvent) -> bool:
        if self.notify is None:
            return False
        try:
            self.notify(event)
        except Exception as exc:  # noqa: BLE001 - any failure leaves the event queued
            log.warning("product.created for %s queued, delivery failed: %s", event["subject"], exc)
            return False
        queued.unlink(missing_ok=True)
        return True

    def flush_events(self) -> int:
        """Send every queued event again, oldest first; return how many were delivered."""
        sent = 0
        for queued in sorted(self.queue_dir.glob("*.json")):
            try:
                event = from_json(queued.read_bytes())
            except Exception as exc:  # noqa: BLE001 - a corrupt queue file must not block others
                log.error("dropping unreadable queued event %s: %s", queued, exc)
                queued.rename(queued.with_suffix(".bad"))
                continue
            if not self._deliver(queued, event):
                break
            sent += 1
        return sent

    def pending_events(self) -> int:
        return sum(1 for _ in self.queue_dir.glob("*.json"))


def _atomic_write_text(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".put-", dir=path.parent)
    with os.fdopen(fd, "w") as fh:
        fh.write(text)
    os.replace(tmp, path)
