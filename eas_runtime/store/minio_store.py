"""The object store on MinIO (or any S3 store with event notifications), with the ``minio`` client.

S3 puts are atomic: an object appears whole or not at all, and an overwrite replaces it in one
step. This store emits no events itself: the server notifies the storage adapter
(:mod:`eas_runtime.adapter`) through its webhook target, configured by :meth:`enable_notifications`.

Every failure to reach the server becomes :class:`StoreUnavailable` (the caller answers 503 and
the event is retried); a missing key becomes :class:`ObjectNotFound` (``stat`` returns None).
The HTTP client does not retry connections and gives up connecting after ``connect_timeout_s``,
so a server that is down is reported in about a second instead of after minutes of retries.

S3 user metadata travels in HTTP headers: keys come back lower-cased and values must be
US-ASCII (the client raises ValueError otherwise).
"""
from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import os
from pathlib import Path
from typing import Iterator, Mapping

import urllib3
from minio import Minio
from minio.error import InvalidResponseError, S3Error, ServerError
from minio.commonconfig import ENABLED
from minio.notificationconfig import (NotificationConfig, PrefixFilterRule, QueueConfig,
                                      SuffixFilterRule)
from minio.versioningconfig import VersioningConfig

from eas_runtime.store.base import (ObjectInfo, ObjectNotFound, ObjectStore, StoreError,
                                    StoreUnavailable, check_key)

META_PREFIX = "x-amz-meta-"
DEFAULT_QUEUE_ARN = "arn:minio:sqs::EAS:webhook"
_NOT_FOUND = ("NoSuchKey", "NoSuchBucket", "NoSuchVersion", "ResourceNotFound")
#: S3 error codes meaning "the server is there but cannot serve right now".
_UNAVAILABLE_CODES = ("XMinioServerNotInitialized", "SlowDown", "ServiceUnavailable",
                      "XMinioStorageFull", "InternalError", "RequestTimeout")


def user_metadata(headers: Mapping[str, str]) -> dict[str, str]:
    """The S3 user metadata in a header map: ``x-amz-meta-`` stripped, keys lower-cased."""
    return {k[len(META_PREFIX):].lower(): v for k, v in headers.items()
            if k.lower().startswith(META_PREFIX)}


class MinioStore(ObjectStore):
    def __init__(self, endpoint: str, access_key: str, secret_key: str, bucket: str = "eas", *,
                 secure: bool = False, region: str = "us-east-1", connect_timeout_s: float = 1.0,
                 read_timeout_s: float = 60.0):
        self.endpoint = endpoint
        self.bucket = bucket
        self.connect_timeout_s = connect_timeout_s
        self._http = urllib3.PoolManager(
            timeout=urllib3.Timeout(connect=connect_timeout_s, read=read_timeout_s),
            # No retries: a refused or timed-out connection is reported at once. Stale pooled
            # connections are detected by urllib3 before reuse.
            retries=urllib3.Retry(total=0, connect=0, read=0, redirect=0, status=0, other=0,
                                  raise_on_status=False, raise_on_redirect=False),
            maxsize=16, cert_reqs="CERT_REQUIRED" if secure else "CERT_NONE")
        # The region is fixed so that presigning a URL needs no request to the server.
        self.client = Minio(endpoint, access_key=access_key, secret_key=secret_key, secure=secure,
                            region=region, http_client=self._http)

    @classmethod
    def from_settings(cls, settings) -> "MinioStore":
        return cls(settings.minio_endpoint, settings.minio_access_key, settings.minio_secret_key,
                   settings.bucket, secure=settings.minio_secure)

    def __repr__(self) -> str:
        return f"MinioStore({self.endpoint!r}, bucket={self.bucket!r})"

    # ------------------------------------------------------------------ error mapping
    @contextlib.contextmanager
    def _errors(self, what: str, key: str | None = None):
        try:
            yield
        except S3Error as exc:
            if exc.code in _NOT_FOUND:
                raise ObjectNotFound(f"no object {key!r} in bucket {self.bucket!r} "
                                     f"({exc.code})") from None
            if exc.code in _UNAVAILABLE_CODES:
                raise StoreUnavailable(f"MinIO at {self.endpoint}: {what}: {exc.code}: "
                                       f"{exc.message}") from exc
            raise StoreError(f"MinIO at {self.endpoint}: {what}: {exc.code}: "
                             f"{exc.message}") from exc
        except ServerError as exc:
            raise StoreUnavailable(f"MinIO at {self.endpoint}: {what}: {exc}") from exc
        except InvalidResponseError as exc:
            # Not an S3 answer (e.g. a proxy's error page while the server is down).
            raise StoreUnavailable(f"MinIO at {self.endpoint}: {what}: {exc}") from exc
        except (urllib3.exceptions.HTTPError, ConnectionError, TimeoutError) as exc:
            raise StoreUnavailable(f"MinIO at {self.endpoint} unreachable ({what}): {exc}") from exc

    # ------------------------------------------------------------------ set-up
    def ensure_bucket(self) -> None:
        """Create the bucket unless it exists, and turn on its versioning: every upload is then
        an immutable version that the task of its job reads (``version_id``), even when the
        key is overwritten before the task runs."""
        with self._errors("create bucket"):
            if not self.client.bucket_exists(self.bucket):
                try:
                    self.client.make_bucket(self.bucket)
                except S3Error as exc:
                    if exc.code not in ("BucketAlreadyOwnedByYou", "BucketAlreadyExists"):
                        raise
        with self._errors("enable bucket versioning"):
            if self.client.get_bucket_versioning(self.bucket).status != ENABLED:
                self.client.set_bucket_versioning(self.bucket, VersioningConfig(ENABLED))

    def enable_notifications(self, queue_arn: str = DEFAULT_QUEUE_ARN,
                             events=("s3:ObjectCreated:*",), prefix: str = "",
                             suffix: str = "") -> None:
        """Send ``events`` on objects under ``prefix`` ending in ``suffix`` to the server's
        notification target ``queue_arn`` (the webhook to the storage adapter). Replaces the
        bucket's notification configuration."""
        config = NotificationConfig(queue_config_list=[QueueConfig(
            queue=queue_arn, events=list(events), config_id="eas",
            prefix_filter_rule=PrefixFilterRule(prefix) if prefix else None,
            suffix_filter_rule=SuffixFilterRule(suffix) if suffix else None)])
        try:
            with self._errors("set bucket notification"):
                self.client.set_bucket_notification(self.bucket, config)
        except StoreError as exc:
            if "ARN" in str(exc) or "arn" in str(exc):
                raise StoreError(f"{exc} -- is the server started with the notification target "
                                 f"{queue_arn} (MINIO_NOTIFY_WEBHOOK_* variables)?") from exc
            raise

    # ------------------------------------------------------------------ writes
    def put_file(self, key: str, path: Path, metadata: Mapping[str, str] | None = None,
                 content_type: str = "application/octet-stream") -> ObjectInfo:
        check_key(key)
        headers: dict[str, str | list[str] | tuple[str]] = {
            META_PREFIX + str(k).lower(): str(v) for k, v in (metadata or {}).items()}
        with self._errors("put", key):
            result = self.client.fput_object(self.bucket, key, str(path), content_type=content_type,
                                             metadata=headers)
        return ObjectInfo(bucket=self.bucket, key=key, size=os.stat(path).st_size,
                          etag=(result.etag or "").strip('"'),
                          last_modified=result.last_modified or dt.datetime.now(dt.timezone.utc),
                          version_id=result.version_id, content_type=content_type,
                          metadata={str(k).lower(): str(v) for k, v in (metadata or {}).items()})

    def delete(self, key: str) -> None:
        check_key(key)
        with self._errors("delete", key):
            try:
                self.client.remove_object(self.bucket, key)
            except S3Error as exc:
                if exc.code not in _NOT_FOUND:
                    raise

    # ------------------------------------------------------------------ reads
    def _info(self, obj, metadata: Mapping[str, str]) -> ObjectInfo:
        modified = obj.last_modified or dt.datetime.now(dt.timezone.utc)
        if modified.tzinfo is None:
            modified = modified.replace(tzinfo=dt.timezone.utc)
        version = obj.version_id if obj.version_id not in ("", "null") else None
        return ObjectInfo(bucket=self.bucket, key=obj.object_name, size=int(obj.size or 0),
                          etag=(obj.etag or "").strip('"'), last_modified=modified,
                          version_id=version,
                          content_type=obj.content_type or "application/octet-stream",
                          metadata=metadata)

    def stat(self, key: str) -> ObjectInfo | None:
        check_key(key)
        try:
            with self._errors("stat", key):
                obj = self.client.stat_object(self.bucket, key)
        except ObjectNotFound:
            return None
        return self._info(obj, user_metadata(obj.metadata or {}))

    def get_file(self, key: str, dest: Path, version_id: str | None = None) -> ObjectInfo:
        check_key(key)
        dest = Path(dest)
        dest.parent.mkdir(parents=True, exist_ok=True)
        part = dest.with_name(f".{dest.name}.part")
        try:
            with self._errors("get", key):
                obj = self.client.fget_object(self.bucket, key, str(dest), tmp_file_path=str(part),
                                              version_id=version_id or None)
        finally:
            part.unlink(missing_ok=True)
        return self._info(obj, user_metadata(obj.metadata or {}))

    def list(self, prefix: str = "") -> Iterator[ObjectInfo]:
        try:
            yield from self._list(prefix)
        except ObjectNotFound:  # no bucket: nothing in it
            return

    def _list(self, prefix: str) -> Iterator[ObjectInfo]:
        # Errors raised while the generator runs are mapped too (the listing is paged lazily).
        with self._errors("list"):
            # include_user_meta is MinIO's ListObjectsV2 extension: metadata without a HEAD each.
            for obj in self.client.list_objects(self.bucket, prefix=prefix or None,
                                                recursive=True, include_user_meta=True):
                if obj.is_dir:
                    continue
                listed = obj.metadata if isinstance(obj.metadata, Mapping) else {}
                content_type = next((v for k, v in listed.items() if k.lower() == "content-type"),
                                    None)
                if content_type is None:  # not MinIO: ask for each object
                    info = self.stat(obj.object_name)
                    if info is not None:
                        yield info
                    continue
                info = self._info(obj, user_metadata(listed))
                yield dataclasses.replace(info, content_type=content_type)

    def ping(self) -> None:
        try:
            with self._errors("ping"):
                exists = self.client.bucket_exists(self.bucket)
        except StoreUnavailable:
            raise
        except StoreError as exc:
            raise StoreUnavailable(str(exc)) from exc
        if not exists:
            raise StoreUnavailable(f"MinIO at {self.endpoint} has no bucket {self.bucket!r}")

    def has_version(self, key: str, version_id: str) -> bool:
        check_key(key)
        try:
            with self._errors("stat version", key):
                self.client.stat_object(self.bucket, key, version_id=version_id)
        except ObjectNotFound:
            return False
        except StoreError as exc:       # e.g. a malformed version id: not a version held here
            if isinstance(exc, StoreUnavailable):
                raise
            return False
        return True

    def url(self, key: str, expires_s: int = 3600, version_id: str | None = None) -> str | None:
        check_key(key)
        with self._errors("presign", key):
            return self.client.presigned_get_object(self.bucket, key, expires=dt.timedelta(seconds=expires_s),
                                                    version_id=version_id or None)
