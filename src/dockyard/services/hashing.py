"""Streaming digests: hash while bytes arrive, without holding them."""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import AsyncIterable, AsyncIterator
from typing import Protocol

from anyio import to_thread

from dockyard.storage.base import StorageDriver, UploadWriter

# Bytes gathered before one write and hash step: large enough that the thread
# hop for hashing costs nothing, small enough to keep memory flat.
FLUSH_BYTES = 1024 * 1024
# Below this, hashing on the event loop (microseconds) is cheaper than the
# thread hop; small blobs and the tails of large ones stay inline.
INLINE_HASH_BYTES = 64 * 1024


class Hasher(Protocol):
    def update(self, data: bytes, /) -> None: ...
    def hexdigest(self) -> str: ...


def new_hasher(algorithm: str) -> Hasher:
    return hashlib.new(algorithm)


async def copy_and_hash(
    chunks: AsyncIterable[bytes], writer: UploadWriter, hasher: Hasher | None
) -> int:
    """Write every chunk, feeding the hasher on the way; return the byte count.

    A large buffer is hashed in a worker thread (hashlib releases the GIL)
    while the event loop writes it and receives the next one. A buffer's
    hashing starts only after the previous one's has finished, so the digest
    sees the bytes in order.
    """
    total = 0
    hashing: asyncio.Task[None] | None = None
    try:
        async for data in _coalesce(chunks):
            if hashing is not None:
                await hashing
                hashing = None
            if hasher is None:
                pass
            elif len(data) < INLINE_HASH_BYTES:
                hasher.update(data)
            else:
                update = to_thread.run_sync(hasher.update, data)
                hashing = asyncio.ensure_future(update)
            await writer.write(data)
            total += len(data)
    finally:
        if hashing is not None:
            await hashing
    return total


async def _coalesce(chunks: AsyncIterable[bytes]) -> AsyncIterator[bytes]:
    pending: list[bytes] = []
    size = 0
    async for chunk in chunks:
        if not chunk:
            continue
        pending.append(chunk)
        size += len(chunk)
        if size >= FLUSH_BYTES:
            yield b"".join(pending)
            pending, size = [], 0
    if pending:
        yield b"".join(pending)


async def hash_stored(storage: StorageDriver, path: str, algorithm: str) -> str:
    """Hash an object already in storage (used when no running hash exists)."""
    hasher = new_hasher(algorithm)
    async for chunk in storage.read(path):
        await to_thread.run_sync(hasher.update, chunk)
    return hasher.hexdigest()
