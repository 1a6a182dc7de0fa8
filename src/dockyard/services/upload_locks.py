"""Upload sessions locked in the metadata database, which every replica shares.

A storage driver whose `lock` keeps out only the requests of its own process
(the S3 driver's) cannot stop two worker processes, or two replicas, from
writing one session at once. For such drivers the upload service locks the
session here instead: a lease row in `job_leases` named `upload:<id>`, whose
holder is a token unique to each acquisition. A request polls for the lease
with backoff and gives up with `LockTimeout` (a 503 for the client); while it
holds the lease, a heartbeat renews it every third of its term; when it is
done, it deletes the row. A holder that crashes stops renewing, so its lease
runs out after one term and the session can go on.

Why a lease and not a PostgreSQL advisory lock: a session-level advisory lock
lives as long as the connection that took it, so it would pin one pooled
connection for the whole request (minutes, for a large chunk on a slow link)
and the pool size would cap the uploads in flight; SQLite has none at all. A
lease costs one short transaction to take, one per renewal and one to release,
on both databases, and needs no connection in between.

The price of a lease is that exclusion rests on time: replicas' clocks must
agree to well within a term, and a holder that cannot renew for a whole term
(its database unreachable, its process stalled) loses the lease to the next
request. Its heartbeat cancels its work as soon as a renewal fails, and its
request ends with `LockTimeout`; but a process stalled outright may still
finish a write when it wakes, before its heartbeat runs. With a 15-second term
that takes a stall of 15 seconds in the middle of a PATCH.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from functools import partial

import anyio

from dockyard.metadata import upload_locks
from dockyard.metadata.executor import Executor
from dockyard.services import leases
from dockyard.storage.base import LockTimeout

logger = logging.getLogger(__name__)

# How long a lease lasts unless renewed: also how long a crashed holder keeps a
# session locked.
LEASE_SECONDS = 15.0
# How long a request waits for another one writing to the same upload, as the
# drivers' own locks do.
WAIT_TIMEOUT = 60.0
FIRST_POLL = 0.02
MAX_POLL = 0.5


class UploadLocks:
    def __init__(
        self,
        db: Executor,
        *,
        lease: float = LEASE_SECONDS,
        timeout: float = WAIT_TIMEOUT,
    ) -> None:
        self.db = db
        self.lease = lease
        self.timeout = timeout

    @asynccontextmanager
    async def hold(self, upload_id: str) -> AsyncIterator[None]:
        """Exclusive access to an upload session, across every replica."""
        name = upload_locks.lease_name(upload_id)
        token = uuid.uuid4().hex
        await self._acquire(name, token)
        try:
            async with leases.kept(self.db, name, token, self.lease):
                yield
        except leases.LeaseLost as lost:
            raise LockTimeout(f"lost the lock on upload {upload_id}") from lost
        finally:
            await self._release(name, token)

    async def _acquire(self, name: str, token: str) -> None:
        deadline = time.monotonic() + self.timeout
        delay = FIRST_POLL
        while not await leases.take(self.db, name, token, self.lease):
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise LockTimeout(f"{name} is busy")
            await anyio.sleep(min(delay, remaining))
            delay = min(delay * 2, MAX_POLL)

    async def _release(self, name: str, token: str) -> None:
        # Shielded: a request cancelled while holding the lock still releases
        # it. A failure here only leaves the lease to run out by itself.
        with anyio.CancelScope(shield=True):
            try:
                await self.db.write(
                    partial(upload_locks.release_upload_lease, name=name, holder=token)
                )
            except Exception:
                logger.warning(
                    "failed to release an upload lock",
                    exc_info=True,
                    extra={"lock": name},
                )
