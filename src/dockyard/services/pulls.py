"""When manifests were last pulled, recorded off the request path.

A manifest GET only notes the time in this process's memory (a dict keyed by
repository and digest, so a busy image costs one entry however often it is
pulled). A background task writes what accumulated in one transaction every
`interval` seconds, and once more when the process stops. Pull times are
therefore up to `interval` seconds late in the database, and a process that is
killed loses at most that much; retention rules count in days.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from functools import partial

from dockyard.metadata import retention
from dockyard.metadata.executor import Executor
from dockyard.metadata.retention import Pull
from dockyard.oci.digest import is_digest

logger = logging.getLogger(__name__)

DEFAULT_INTERVAL = 5.0

# (repository, manifest digest) -> (last pull, last pull by digest)
_Times = tuple[float, float | None]
_Key = tuple[str, str]


class PullRecorder:
    def __init__(self, executor: Executor, interval: float = DEFAULT_INTERVAL) -> None:
        self.db = executor
        self.interval = interval
        self._pending: dict[_Key, _Times] = {}
        self._task: asyncio.Task[None] | None = None
        self._stopping = asyncio.Event()

    def record(self, repository: str, digest: str, reference: str) -> None:
        """Note a pull of `digest` by `reference` (a tag or the digest itself)."""
        now = time.time()
        key = (repository, digest)
        if is_digest(reference):
            self._pending[key] = (now, now)
        else:
            previous = self._pending.get(key)
            self._pending[key] = (now, previous[1] if previous else None)

    async def flush(self) -> int:
        """Write what accumulated; on failure keep it for the next attempt."""
        batch, self._pending = self._pending, {}
        if not batch:
            return 0
        pulls = [
            Pull(repository, digest, pulled_at, pinned_at)
            for (repository, digest), (pulled_at, pinned_at) in batch.items()
        ]
        try:
            return await self.db.write(
                partial(retention.record_pulls, pulls=pulls), durable=False
            )
        except Exception:
            self._merge(batch)
            logger.warning(
                "failed to record pulls", exc_info=True, extra={"pending": len(batch)}
            )
            return 0

    def _merge(self, batch: dict[_Key, _Times]) -> None:
        for key, (pulled_at, pinned_at) in batch.items():
            newer = self._pending.get(key)
            if newer is None:
                self._pending[key] = (pulled_at, pinned_at)
            elif newer[1] is None:
                self._pending[key] = (newer[0], pinned_at)

    def start(self) -> None:
        self._stopping.clear()
        self._task = asyncio.create_task(self._loop())

    async def stop(self) -> None:
        """Stop the periodic writes, then write what is left."""
        if self._task is not None:
            # Not a cancellation: a write cut short could lose its batch.
            self._stopping.set()
            await self._task
            self._task = None
        await self.flush()

    async def _loop(self) -> None:
        while not self._stopping.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), self.interval)
            await self.flush()
