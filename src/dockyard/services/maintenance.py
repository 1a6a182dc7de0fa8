"""Background upkeep: abandoned upload sessions expire and their bytes go.

Every replica runs the loop; a database lease makes sure only one of them works
at a time, so that two replicas never race over the same files.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import time
from dataclasses import dataclass
from functools import partial

from dockyard.metadata import jobs
from dockyard.metadata.executor import Executor
from dockyard.services import leases
from dockyard.services.gc import GarbageCollector, GcOptions
from dockyard.services.retention import RetentionService
from dockyard.storage import StorageDriver
from dockyard.storage.paths import UPLOADS, upload_path

logger = logging.getLogger(__name__)

LEASE = "maintenance"
BATCH = 500
LOCK_SUFFIX = ".lock"


@dataclass(frozen=True, slots=True)
class ExpiryReport:
    sessions: int
    orphans: int


@dataclass(frozen=True, slots=True)
class GcSchedule:
    interval: float  # seconds between collections; 0 switches them off
    options: GcOptions


class Maintenance:
    def __init__(
        self,
        db: Executor,
        storage: StorageDriver,
        upload_max_age: float,
        gc: GcSchedule | None = None,
        retention: RetentionService | None = None,
    ) -> None:
        self.db = db
        self.storage = storage
        self.upload_max_age = upload_max_age
        self.gc = gc
        self.retention = retention
        self.holder = f"{socket.gethostname()}:{os.getpid()}"
        # Wall-clock time of the last collection this replica ran.
        self._collected_at = time.time()

    async def expire_uploads(self) -> ExpiryReport:
        cutoff = time.time() - self.upload_max_age
        sessions = 0
        while True:
            stale = await self.db.read(
                partial(jobs.stale_uploads, older_than=cutoff, limit=BATCH)
            )
            for upload_id in stale:
                if await self.db.write(
                    partial(
                        jobs.drop_stale_upload, upload_id=upload_id, older_than=cutoff
                    )
                ):
                    await self._remove_files(upload_id)
                    sessions += 1
            if len(stale) < BATCH:
                break
        orphans = await self._remove_orphans(cutoff)
        return ExpiryReport(sessions, orphans)

    async def _remove_files(self, upload_id: str) -> None:
        path = upload_path(upload_id)
        await self.storage.delete(path)
        await self.storage.delete(path + LOCK_SUFFIX)

    async def _remove_orphans(self, cutoff: float) -> int:
        """Remove uploads that belong to no session (left by crashes mid-request).

        Only those untouched since `cutoff`: an upload and its lock file go
        together once the newer of them is older than that.
        """
        candidates: dict[str, list[str]] = {}
        newest: dict[str, float] = {}
        async for entry in self.storage.scan(UPLOADS):
            name = entry.path.rsplit("/", 1)[-1].removesuffix(LOCK_SUFFIX)
            candidates.setdefault(name, []).append(entry.path)
            newest[name] = max(newest.get(name, entry.modified), entry.modified)
        known = await self.db.read(partial(jobs.known_uploads, ids=list(candidates)))
        removed = 0
        for name, paths in candidates.items():
            if name in known or newest[name] >= cutoff:
                continue
            for path in paths:
                await self.storage.delete(path)
            removed += 1
        return removed

    async def run_once(self, lease_seconds: float) -> ExpiryReport | None:
        """Do the upkeep if this replica holds the lease; None if another does.

        The lease is renewed while the work runs (a collection of a large
        registry takes minutes), and the work stops if it is ever lost.
        """
        if not await leases.take(self.db, LEASE, self.holder, lease_seconds):
            return None
        try:
            async with leases.kept(self.db, LEASE, self.holder, lease_seconds):
                return await self._upkeep()
        except leases.LeaseLost:
            logger.warning("maintenance stopped: another replica took over")
            return None

    async def _upkeep(self) -> ExpiryReport:
        report = await self.expire_uploads()
        if report.sessions or report.orphans:
            logger.info(
                "expired uploads",
                extra={"sessions": report.sessions, "orphans": report.orphans},
            )
        if self.retention is not None:
            # Before the collection, which then frees what retention let go.
            await self.retention.run_if_due()
        await self._collect_if_due()
        return report

    async def _collect_if_due(self) -> None:
        if self.gc is None or not self.gc.interval:
            return
        if time.time() - self._collected_at < self.gc.interval:
            return
        self._collected_at = time.time()
        logger.info("garbage collection started")
        collected = await GarbageCollector(self.db, self.storage, self.gc.options).run()
        logger.info(
            "garbage collection finished",
            extra={
                "manifests": collected.manifests,
                "links": collected.links,
                "blobs": collected.blobs,
                "freed_bytes": collected.blob_bytes,
                "errors": collected.errors,
            },
        )

    async def loop(self, interval: float) -> None:
        """Run the upkeep every `interval` seconds until cancelled."""
        while True:
            await asyncio.sleep(interval)
            try:
                await self.run_once(lease_seconds=interval * 2)
            except Exception:
                logger.exception("failed to run maintenance")
