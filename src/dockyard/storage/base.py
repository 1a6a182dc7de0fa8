"""The storage driver interface every backend implements.

Paths are relative, slash-separated keys built by `dockyard.storage.paths`.
Drivers raise only `StorageError` (with the backend's exception as the cause).
"""

from __future__ import annotations

import abc
from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager
from pathlib import Path
from typing import NamedTuple


class StorageError(Exception):
    """A backend failed to read or write; the cause says why."""


class PathNotFound(StorageError):
    """The path does not exist in the backend."""


class LockTimeout(StorageError):
    """Another request held an upload's lock for too long."""


class StoredEntry(NamedTuple):
    """A listed path and when it was last written (seconds since the epoch)."""

    path: str
    modified: float


class UploadWriter(abc.ABC):
    """Appends bytes to an upload at a known offset.

    `close` releases the writer; the bytes become durable when the finished
    upload is committed.
    """

    @abc.abstractmethod
    async def write(self, data: bytes) -> None: ...

    @abc.abstractmethod
    async def close(self) -> None: ...


class StorageDriver(abc.ABC):
    """A dozen path-keyed operations: enough for blobs and uploads."""

    name: str = "abstract"
    # Smallest chunk the backend accepts in a chunked upload (0: no minimum).
    chunk_min_length: int = 0
    # Whether `lock` also keeps out other processes sharing the storage. When
    # it does not, the upload service locks sessions in the metadata database.
    lock_spans_processes: bool = False

    @abc.abstractmethod
    async def stat(self, path: str) -> int | None:
        """Size in bytes, or None when the path does not exist."""

    @abc.abstractmethod
    def read(
        self, path: str, offset: int = 0, length: int | None = None
    ) -> AsyncIterator[bytes]:
        """Stream a byte range of a stored object."""

    def local_file(self, path: str) -> Path | None:
        """A local file the ASGI server can send itself, when the backend has one."""
        return None

    async def redirect_url(self, path: str) -> str | None:
        """A URL clients may fetch directly, when the backend offers one."""
        return None

    @abc.abstractmethod
    def lock(self, path: str) -> AbstractAsyncContextManager[None]:
        """Exclusive access to an upload across requests.

        Across processes too when the driver sets `lock_spans_processes`.
        """

    @abc.abstractmethod
    async def open_writer(self, path: str, offset: int) -> UploadWriter:
        """Open an upload for appending at `offset`, dropping anything after it."""

    @abc.abstractmethod
    async def commit(
        self, upload: str, target: str, *, keep_source: bool = False
    ) -> None:
        """Atomically put a finished upload at its final path.

        When the target already exists (the same content was stored before) it
        is kept: content-addressed objects never change. The upload is removed,
        unless `keep_source` asks to keep it (for a second commit later).
        """

    @abc.abstractmethod
    async def delete(self, path: str) -> None:
        """Remove a path; a missing path is not an error."""

    @abc.abstractmethod
    def scan(self, prefix: str) -> AsyncIterator[StoredEntry]:
        """Every object path under a prefix, with the time it was last written."""

    async def list(self, prefix: str) -> AsyncIterator[str]:
        """Every object path under a prefix."""
        async for entry in self.scan(prefix):
            yield entry.path
