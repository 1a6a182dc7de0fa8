"""Blob upload sessions: start, append chunks, finish with a digest, cancel.

A session's committed size lives in the metadata store, so any worker process
(or the same one after a restart) can continue it. The running hash lives only
in the process that received the previous chunk; when another process finishes
the upload, it hashes the stored bytes instead.

Requests that write a session hold its lock: the storage driver's when that
keeps out other processes (an flock), else a lease in the metadata database,
which every replica shares (`upload_locks`).
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import AsyncIterable
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass

from dockyard.metadata import BlobRecord, MetadataStore, UploadRecord
from dockyard.oci import errcodes
from dockyard.oci.digest import Digest
from dockyard.oci.errcodes import RegistryError
from dockyard.services.hashing import Hasher, copy_and_hash, hash_stored, new_hasher
from dockyard.services.upload_locks import UploadLocks
from dockyard.storage import StorageDriver
from dockyard.storage.paths import blob_path, upload_path

logger = logging.getLogger(__name__)

# Running hashes kept per process; the oldest go first (they are rehashed from
# storage if their session ever finishes).
MAX_RUNNING_HASHES = 10_000
# What the filesystem driver's lock leaves beside an upload.
LOCK_SUFFIX = ".lock"


@dataclass(slots=True)
class _RunningHash:
    size: int
    algorithm: str
    hasher: Hasher

    def digest(self) -> str:
        return f"{self.algorithm}:{self.hasher.hexdigest()}"


def _known_hex(
    upload: UploadRecord, size: int, running: _RunningHash | None, algorithm: str
) -> str | None:
    """The digest of an upload's `size` stored bytes, if a hash saw them all."""
    if running is not None and running.algorithm == algorithm:
        return running.hasher.hexdigest()
    recorded = upload.digest_so_far or ""
    if size == upload.size and recorded.startswith(f"{algorithm}:"):
        # No bytes came with this request, and a PATCH hashed all the others
        # (perhaps in another process, holding the running hash).
        return recorded.partition(":")[2]
    return None


class RangeMismatch(RegistryError):
    """A chunk that does not continue where the upload stands."""

    def __init__(self, upload: UploadRecord, message: str) -> None:
        super().__init__(errcodes.RANGE_INVALID, message)
        self.upload = upload


class UploadService:
    def __init__(
        self, store: MetadataStore, storage: StorageDriver, locks: UploadLocks
    ) -> None:
        self.store = store
        self.storage = storage
        self.locks = locks
        self._running: dict[str, _RunningHash] = {}

    async def start(self, repository: str, algorithm: str) -> UploadRecord:
        upload_id = uuid.uuid4().hex
        await self.store.create_upload(repository, upload_id, algorithm)
        return UploadRecord(upload_id, repository, algorithm, 0, 0.0)

    async def status(self, repository: str, upload_id: str) -> UploadRecord:
        upload = await self.store.get_upload(repository, upload_id)
        if upload is None:
            raise RegistryError(
                errcodes.BLOB_UPLOAD_UNKNOWN, detail={"upload": upload_id}
            )
        return upload

    async def append(
        self,
        repository: str,
        upload_id: str,
        chunks: AsyncIterable[bytes],
        start: int | None = None,
        length: int | None = None,
    ) -> UploadRecord:
        """Append a chunk; `start` (from Content-Range) must be the current size."""
        async with self._exclusive(upload_id):
            return await self._append(repository, upload_id, chunks, start, length)

    def _exclusive(self, upload_id: str) -> AbstractAsyncContextManager[None]:
        # Two requests writing one session (a client retrying a PATCH it thinks
        # timed out) would interleave their bytes; the second waits, then finds
        # the session moved on and gets a 416 with the new Range.
        if self.storage.lock_spans_processes:
            return self.storage.lock(upload_path(upload_id))
        return self.locks.hold(upload_id)

    async def _drop_lock_file(self, upload_id: str) -> None:
        # Only a driver's own cross-process lock leaves a file to clean up; on
        # an object store the delete would cost requests for nothing.
        if self.storage.lock_spans_processes:
            await self.storage.delete(upload_path(upload_id) + LOCK_SUFFIX)

    async def _append(
        self,
        repository: str,
        upload_id: str,
        chunks: AsyncIterable[bytes],
        start: int | None = None,
        length: int | None = None,
    ) -> UploadRecord:
        upload = await self.status(repository, upload_id)
        new_size, running = await self._write_chunk(upload, chunks, start, length)
        # Recorded so that a process without this running hash can still
        # finish the upload with an empty PUT without reading it back.
        so_far = running.digest() if running is not None else None
        if not await self.store.advance_upload(
            upload_id, upload.size, new_size, so_far
        ):
            current = await self.status(repository, upload_id)
            raise RangeMismatch(current, "upload was changed by another request")
        if running is not None:
            self._remember(upload_id, running)
        return UploadRecord(
            upload_id, repository, upload.algorithm, new_size, upload.created_at, so_far
        )

    async def _write_chunk(
        self,
        upload: UploadRecord,
        chunks: AsyncIterable[bytes],
        start: int | None,
        length: int | None,
    ) -> tuple[int, _RunningHash | None]:
        """Store a chunk after the session's bytes; the new size and running hash.

        The caller records the new size: a PATCH on its own, a finishing PUT
        together with the blob (one transaction instead of two).
        """
        if start is not None and start != upload.size:
            raise RangeMismatch(
                upload, f"chunk starts at {start}, upload has {upload.size} bytes"
            )
        running = self._running.pop(upload.id, None)
        if running is None and upload.size == 0:
            running = _RunningHash(0, upload.algorithm, new_hasher(upload.algorithm))
        if running is not None and running.size != upload.size:
            running = None

        writer = await self.storage.open_writer(upload_path(upload.id), upload.size)
        try:
            received = await copy_and_hash(
                chunks, writer, running.hasher if running else None
            )
        finally:
            await writer.close()
        if length is not None and received != length:
            raise RegistryError(
                errcodes.SIZE_INVALID,
                f"received {received} bytes, Content-Range announced {length}",
            )
        new_size = upload.size + received
        if running is not None:
            running.size = new_size
        return new_size, running

    def _remember(self, upload_id: str, running: _RunningHash) -> None:
        # Abandoned sessions would otherwise keep their hash state forever.
        if len(self._running) >= MAX_RUNNING_HASHES:
            del self._running[next(iter(self._running))]
        self._running[upload_id] = running

    async def finish(
        self,
        repository: str,
        upload_id: str,
        digest: Digest,
        chunks: AsyncIterable[bytes],
        start: int | None = None,
    ) -> BlobRecord:
        """Take the last chunk, verify the digest and move the blob into place."""
        async with self._exclusive(upload_id):
            return await self._finish(repository, upload_id, digest, chunks, start)

    async def _finish(
        self,
        repository: str,
        upload_id: str,
        digest: Digest,
        chunks: AsyncIterable[bytes],
        start: int | None,
    ) -> BlobRecord:
        upload = await self.status(repository, upload_id)
        size, running = await self._write_chunk(upload, chunks, start, None)
        path = upload_path(upload_id)
        actual = _known_hex(upload, size, running, digest.algorithm)
        if actual is None:
            actual = await hash_stored(self.storage, path, digest.algorithm)
        if actual != digest.hex:
            await self._discard(upload_id)
            raise RegistryError(
                errcodes.DIGEST_INVALID,
                f"content digest is {digest.algorithm}:{actual}, not {digest}",
                detail={"digest": str(digest)},
            )
        await self._store(repository, path, digest, size, finished=upload_id)
        await self._drop_lock_file(upload_id)
        logger.debug("blob stored", extra={"digest": str(digest), "size": size})
        return BlobRecord(str(digest), size)

    async def put_monolithic(
        self, repository: str, digest: Digest, chunks: AsyncIterable[bytes]
    ) -> BlobRecord:
        """A whole blob in one request: no session is recorded for it."""
        temporary = upload_path(f"direct-{uuid.uuid4().hex}")
        hasher = new_hasher(digest.algorithm)
        writer = await self.storage.open_writer(temporary, 0)
        try:
            size = await copy_and_hash(chunks, writer, hasher)
        finally:
            await writer.close()
        if hasher.hexdigest() != digest.hex:
            await self.storage.delete(temporary)
            raise RegistryError(
                errcodes.DIGEST_INVALID,
                f"content digest is {digest.algorithm}:{hasher.hexdigest()}, "
                f"not {digest}",
                detail={"digest": str(digest)},
            )
        await self._store(repository, temporary, digest, size)
        return BlobRecord(str(digest), size)

    async def _store(
        self,
        repository: str,
        source: str,
        digest: Digest,
        size: int,
        finished: str | None = None,
    ) -> None:
        """Put verified bytes in place, then record them; safe against the GC.

        `finished` names the upload session these bytes completed: it ends in
        the transaction that records the blob.

        The upload's own copy is kept until the database row exists. A
        collector may remove an older copy of the same content in between (it
        only takes blobs that no repository links, and re-checks the row after
        moving the file away); if the stored copy is gone once our row is
        written, ours takes its place.
        """
        target = blob_path(digest)
        await self.storage.commit(source, target, keep_source=True)
        try:
            await self.store.link_blob(repository, str(digest), size, finished)
        except BaseException:
            await self.storage.delete(source)
            raise
        if await self.storage.stat(target) is None:
            await self.storage.commit(source, target)
        else:
            await self.storage.delete(source)

    async def cancel(self, repository: str, upload_id: str) -> None:
        await self.status(repository, upload_id)
        await self._discard(upload_id)

    async def _discard(self, upload_id: str) -> None:
        self._running.pop(upload_id, None)
        await self.store.delete_upload(upload_id)
        await self.storage.delete(upload_path(upload_id))
        await self._drop_lock_file(upload_id)
