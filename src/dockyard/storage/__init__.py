"""Blob storage: one narrow driver interface, with drivers registered by name."""

from dockyard.storage.base import StorageDriver, StorageError, UploadWriter
from dockyard.storage.registry import create_driver

__all__ = ["StorageDriver", "StorageError", "UploadWriter", "create_driver"]
