"""Blobs and uploads as files under one root directory.

Writes go to the upload file, are fsynced, and reach their final name by
`os.rename`, which is atomic on POSIX file systems; the directory is fsynced
afterwards so the new name survives a crash too.
"""

from __future__ import annotations

import errno
import fcntl
import os
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, suppress
from pathlib import Path

import anyio
from anyio import to_thread

from dockyard.storage.base import (
    LockTimeout,
    PathNotFound,
    StorageDriver,
    StorageError,
    StoredEntry,
    UploadWriter,
)
from dockyard.storage.registry import register

READ_CHUNK = 1024 * 1024
# How long a request waits for another one writing to the same upload.
LOCK_TIMEOUT = 60.0
LOCK_POLL = 0.01


class _FileWriter(UploadWriter):
    def __init__(self, fd: int) -> None:
        self._fd = fd

    async def write(self, data: bytes) -> None:
        view = memoryview(data)
        try:
            while view:
                written = os.write(self._fd, view)
                view = view[written:]
        except OSError as exc:
            raise StorageError(f"failed to write upload: {exc.strerror}") from exc

    async def close(self) -> None:
        # No fsync here: `commit` makes the finished blob durable, and the
        # digest check at the end catches a chunk that a power loss cut short.
        fd, self._fd = self._fd, -1
        if fd >= 0:
            os.close(fd)


class FilesystemDriver(StorageDriver):
    name = "filesystem"
    # An flock holds against every process of this host; replicas on other
    # hosts never share the root (flock over NFS is not to be trusted).
    lock_spans_processes = True

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root).resolve()
        self.root.mkdir(parents=True, exist_ok=True)
        self._root = str(self.root)
        self._inside = self._root + os.sep

    def _full(self, path: str) -> str:
        # A lexical check, not `resolve()`: the paths are the registry's own
        # (digests, session ids), nothing else makes links under the root, and
        # resolving cost a system call per path component on every operation.
        # Plain strings, not `Path`s: parsing one cost more than the system
        # call it named, several times per push.
        full = os.path.normpath(os.path.join(self._root, path))
        if not (full.startswith(self._inside) or full == self._root):
            raise StorageError(f"path {path!r} escapes the storage root")
        return full

    async def stat(self, path: str) -> int | None:
        try:
            return os.stat(self._full(path)).st_size
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise StorageError(f"failed to stat {path}") from exc

    async def read(
        self, path: str, offset: int = 0, length: int | None = None
    ) -> AsyncIterator[bytes]:
        try:
            handle = open(self._full(path), "rb")  # noqa: SIM115 - closed below
        except FileNotFoundError as exc:
            raise PathNotFound(path) from exc
        try:
            handle.seek(offset)
            remaining = length
            while remaining is None or remaining > 0:
                size = READ_CHUNK if remaining is None else min(READ_CHUNK, remaining)
                chunk = await to_thread.run_sync(handle.read, size)
                if not chunk:
                    break
                if remaining is not None:
                    remaining -= len(chunk)
                yield chunk
        finally:
            handle.close()

    def local_file(self, path: str) -> Path | None:
        return Path(self._full(path))

    @asynccontextmanager
    async def lock(self, path: str) -> AsyncIterator[None]:
        """An flock on `<path>.lock`: the kernel drops it if the process dies."""
        fd = _open_creating_parents(self._full(path + ".lock"), os.O_RDWR)
        try:
            deadline = time.monotonic() + LOCK_TIMEOUT
            while not _try_lock(fd):
                if time.monotonic() > deadline:
                    raise LockTimeout(f"upload {path} is busy")
                await anyio.sleep(LOCK_POLL)
            yield
        finally:
            os.close(fd)

    async def open_writer(self, path: str, offset: int) -> UploadWriter:
        try:
            fd = _open_creating_parents(self._full(path), os.O_WRONLY)
            os.ftruncate(fd, offset)
            os.lseek(fd, offset, os.SEEK_SET)
        except OSError as exc:
            raise StorageError(f"failed to open {path} for writing") from exc
        return _FileWriter(fd)

    async def commit(
        self, upload: str, target: str, *, keep_source: bool = False
    ) -> None:
        try:
            await to_thread.run_sync(
                self._commit, self._full(upload), self._full(target), keep_source
            )
        except OSError as exc:
            raise StorageError(f"failed to commit {upload}: {exc.strerror}") from exc

    @staticmethod
    def _commit(source: str, target: str, keep_source: bool) -> None:
        # Content-addressed: a complete copy already in place is the same bytes.
        # One of another size can only be damage, and the new copy replaces it.
        size = _size_or_none(target)
        if size is not None and size == os.stat(source).st_size:
            if not keep_source:
                with suppress(FileNotFoundError):
                    os.unlink(source)
            return
        directory = os.path.dirname(target)
        os.makedirs(directory, exist_ok=True)
        fd = os.open(source, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
        if keep_source:
            # A second name for the same bytes, then an atomic rename into place.
            # The second name lives beside the upload, not among the blobs: a
            # crash in between leaves it where stale uploads are swept.
            staged = f"{source}.staged-{uuid.uuid4().hex}"
            os.link(source, staged)
            os.rename(staged, target)
        else:
            os.rename(source, target)
        _fsync_directory(directory)

    async def delete(self, path: str) -> None:
        try:
            os.unlink(self._full(path))
        except FileNotFoundError:
            pass
        except IsADirectoryError:
            await to_thread.run_sync(_remove_tree, Path(self._full(path)))
        except OSError as exc:
            raise StorageError(f"failed to delete {path}") from exc

    async def list(self, prefix: str) -> AsyncIterator[str]:
        """`scan` without a stat per file (fsck lists every blob)."""
        for full in self._walk(prefix):
            yield str(full.relative_to(self.root))

    async def scan(self, prefix: str) -> AsyncIterator[StoredEntry]:
        for full in self._walk(prefix):
            try:
                modified = full.stat().st_mtime
            except FileNotFoundError:
                continue  # deleted since it was listed
            yield StoredEntry(str(full.relative_to(self.root)), modified)

    def _walk(self, prefix: str) -> Iterator[Path]:
        base = self._full(prefix)
        if not os.path.exists(base):
            return
        for directory, _dirs, files in os.walk(base):
            for name in sorted(files):
                yield Path(directory) / name


def _open_creating_parents(path: str, flags: int) -> int:
    """`os.open` with `O_CREAT`, making the directory only when it is missing
    (seldom: trying first saves a mkdir on every upload request)."""
    try:
        return os.open(path, flags | os.O_CREAT, 0o644)
    except FileNotFoundError:
        os.makedirs(os.path.dirname(path), exist_ok=True)
        return os.open(path, flags | os.O_CREAT, 0o644)


def _size_or_none(path: str) -> int | None:
    try:
        return os.stat(path).st_size
    except FileNotFoundError:
        return None


def _try_lock(fd: int) -> bool:
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    return True


def _fsync_directory(directory: str) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    except OSError as exc:
        # Some file systems cannot fsync a directory; the rename itself stands.
        if exc.errno not in (errno.EINVAL, errno.EBADF):
            raise
    finally:
        os.close(fd)


def _remove_tree(path: Path) -> None:
    for child in sorted(path.rglob("*"), reverse=True):
        if child.is_dir():
            child.rmdir()
        else:
            child.unlink()
    path.rmdir()


register("filesystem")(FilesystemDriver)
