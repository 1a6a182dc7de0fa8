"""Keeping a database lease for as long as the work it guards takes.

A lease (a `job_leases` row: name, holder, expiry) lets one replica at a time
do something: write an upload session, run the upkeep. It is taken with a
term; work that may outlast the term keeps it alive with a heartbeat that
renews it every third of the term. Should a renewal be refused (the term ran
out and another holder took over) or keep failing until the term is over, the
work is cancelled and `LeaseLost` raised: going on would mean two holders.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from functools import partial

import anyio

from dockyard.metadata import jobs
from dockyard.metadata.executor import Executor

logger = logging.getLogger(__name__)

RENEWALS_PER_TERM = 3


class LeaseLost(Exception):
    """The lease passed to another holder while the work was running."""


async def take(db: Executor, name: str, holder: str, seconds: float) -> bool:
    """Take or renew a lease; False while someone else holds it."""
    # Shielded: a lease taken by a write that a cancellation then cut short
    # would stay taken, with nobody to release it.
    with anyio.CancelScope(shield=True):
        taken = await db.write(
            partial(jobs.acquire_lease, name=name, holder=holder, seconds=seconds)
        )
    return taken


@asynccontextmanager
async def kept(
    db: Executor, name: str, holder: str, seconds: float
) -> AsyncIterator[None]:
    """Renew a lease this holder has just taken while the body runs."""
    with anyio.CancelScope() as work:
        heartbeat = anyio.CancelScope()
        keeper = asyncio.create_task(_keep(db, name, holder, seconds, work, heartbeat))
        try:
            yield
        finally:
            # Stopped through its scope, which lets a renewal in flight finish
            # first: it would otherwise bring a released lease back.
            heartbeat.cancel()
            with anyio.CancelScope(shield=True):
                await asyncio.wait([keeper])
    if work.cancelled_caught:
        raise LeaseLost(name)


async def _keep(
    db: Executor,
    name: str,
    holder: str,
    seconds: float,
    work: anyio.CancelScope,
    heartbeat: anyio.CancelScope,
) -> None:
    held_until = time.monotonic() + seconds
    with heartbeat:
        while True:
            await anyio.sleep(seconds / RENEWALS_PER_TERM)
            started = time.monotonic()
            try:
                renewed = await take(db, name, holder, seconds)
            except Exception:
                logger.warning(
                    "failed to renew a lease", exc_info=True, extra={"lease": name}
                )
                if time.monotonic() < held_until:
                    continue  # perhaps a passing fault: still ours a while
                renewed = False
            if not renewed:
                logger.warning("lost a lease", extra={"lease": name})
                work.cancel()
                return
            held_until = started + seconds
