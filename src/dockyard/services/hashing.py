"""Streaming digests: hash while bytes arrive, without holding them."""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import AsyncIterable, AsyncIterator
from typing import Protocol

from anyio import to_thread

from dockyard.storage.base import StorageDriver, UploadWriter

# Bytes gathered before one write and hash step: large enough that the thread
# hops cost nothing, small enough to keep memory flat.
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

    A pipeline of two stages: while the event loop receives the next buffer, the
    previous one is hashed in a worker thread (hashlib releases the GIL) and
    written at the same time. A buffer's stage starts only after the previous
    buffer's has finished, so the digest and the file see the bytes in order.
    """
    total = 0
    stored: asyncio.Task[None] | None = None
    try:
        async for data in _coalesce(chunks):
            if stored is not None:
                await stored
                stored = None
            if len(data) < INLINE_HASH_BYTES:
                if hasher is not None:
                    hasher.update(data)
                await writer.write(data)
            else:
                stored = asyncio.ensure_future(_hash_and_write(data, writer, hasher))
            total += len(data)
    finally:
        # Never leave a write running: the caller closes the writer next.
        if stored is not None:
            await stored
    return total


async def _hash_and_write(
    data: bytes, writer: UploadWriter, hasher: Hasher | None
) -> None:
    if hasher is None:
        await writer.write(data)
    else:
        hashing = to_thread.run_sync(hasher.update, data)
        await asyncio.gather(hashing, writer.write(data))


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
