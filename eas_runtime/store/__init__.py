"""Object stores: one interface, a local-directory and a MinIO implementation."""
from eas_runtime.store.base import (InvalidKey, ObjectInfo, ObjectNotFound, ObjectStore, StoreError,
                                    StoreUnavailable, check_key, product_created_event)

__all__ = ["InvalidKey", "ObjectInfo", "ObjectNotFound", "ObjectStore", "StoreError", "StoreUnavailable",
           "check_key", "product_created_event", "open_store"]


def open_store(settings, notify=None, on_refused=None) -> ObjectStore:
    """The store the settings choose. ``notify`` receives product.created events and
    ``on_refused(event, reason)`` those the broker refused for good (local store only: MinIO
    sends its own notifications through the storage adapter)."""
    if settings.store == "minio":
        from eas_runtime.store.minio_store import MinioStore
        return MinioStore.from_settings(settings)
    from eas_runtime.store.local import LocalStore
    return LocalStore(settings.store_path, settings.bucket,
                      queue_dir=settings.home_path / "store-events", notify=notify,
                      on_refused=on_refused)
