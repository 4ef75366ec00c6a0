"""``eas storage init``: what the storage needs before the services start (the Job of
``storage/init-job.yaml`` runs it; every step is idempotent).

1. wait for the task database, then bring it to the newest schema (Alembic);
2. wait for MinIO, create the bucket, and bind its ``s3:ObjectCreated:*`` events to MinIO's
   webhook target (``arn:minio:sqs::EAS:webhook``, the storage adapter).
"""
from __future__ import annotations

import time
from typing import Callable

from eas_runtime.settings import Settings


class StorageInitError(RuntimeError):
    """A step did not succeed in time; the message names the step and the last error."""


def _retry(what: str, action: Callable[[], None], retryable: tuple[type[BaseException], ...],
           deadline: float, say: Callable[[str], None], pause_s: float) -> None:
    attempt = 0
    while True:
        attempt += 1
        try:
            action()
            return
        except retryable as exc:
            if time.monotonic() + pause_s > deadline:
                raise StorageInitError(f"{what}: gave up after {attempt} attempts: {exc}") from exc
            if attempt == 1 or attempt % 10 == 0:
                say(f"{what}: not yet ({exc}); retrying")
            time.sleep(pause_s)


def init_storage(settings: Settings, *, wait_s: float = 300.0, database: bool = True,
                 store: bool = True, say: Callable[[str], None] = print,
                 pause_s: float = 2.0) -> None:
    """Run the steps; each waits up to ``wait_s`` for its server."""
    from eas_runtime.db.session import Database, DatabaseUnavailable
    from eas_runtime.store import StoreUnavailable

    deadline = time.monotonic() + wait_s
    if database:
        db = Database(settings.db_url)
        try:
            _retry("task database", db.ping, (DatabaseUnavailable,), deadline, say, pause_s)
            db.create_schema()
        finally:
            db.dispose()
        say(f"task database {settings.db_url.rsplit('@', 1)[-1]}: newest schema")
    if store:
        if settings.store != "minio":
            raise StorageInitError(f"EAS_STORE={settings.store!r}: the object store to prepare "
                                   "must be MinIO (EAS_STORE=minio and EAS_MINIO_*)")
        from eas_runtime.store.minio_store import DEFAULT_QUEUE_ARN, MinioStore
        minio = MinioStore.from_settings(settings)
        _retry("MinIO", minio.ensure_bucket, (StoreUnavailable,), deadline, say, pause_s)
        minio.enable_notifications()
        say(f"bucket {settings.bucket} on {settings.minio_endpoint}: new objects are announced "
            f"to {DEFAULT_QUEUE_ARN}")
