"""The storage driver the settings ask for."""

from __future__ import annotations

from dockyard.settings import Settings
from dockyard.storage.base import StorageDriver
from dockyard.storage.registry import create_driver


def driver_from_settings(settings: Settings) -> StorageDriver:
    storage = settings.storage
    if storage.driver == "s3":
        assert storage.s3_bucket is not None  # checked by the settings
        return create_driver(
            "s3",
            bucket=storage.s3_bucket,
            endpoint_url=storage.s3_endpoint_url,
            region=storage.s3_region,
            access_key=storage.s3_access_key,
            secret_key=storage.s3_secret_key,
            prefix=storage.s3_prefix,
            redirect=storage.s3_redirect,
            sse=storage.s3_sse,
            sse_kms_key_id=storage.s3_sse_kms_key_id,
        )
    return create_driver(storage.driver, root=settings.storage_root)
