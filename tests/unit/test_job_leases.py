"""One replica at a time holds a background job's lease, for as long as it works."""

from __future__ import annotations

import time
from pathlib import Path

import anyio
import pytest
import sqlalchemy as sa

from dockyard.metadata import jobs, migrate
from dockyard.metadata.engine import create_sync_engine, default_url
from dockyard.metadata.executor import create_executor
from dockyard.metadata.tables import job_leases
from dockyard.services.maintenance import ExpiryReport, Maintenance
from dockyard.storage.drivers.filesystem import FilesystemDriver


@pytest.fixture
def engine(tmp_path: Path) -> sa.Engine:
    url = default_url(tmp_path)
    migrate.upgrade(url)
    return create_sync_engine(url)


def acquire(engine: sa.Engine, holder: str, seconds: float) -> bool:
    with engine.begin() as conn:
        return jobs.acquire_lease(conn, "gc", holder, seconds)


def test_second_replica_waits_while_the_first_holds_the_lease(
    engine: sa.Engine,
) -> None:
    assert acquire(engine, "replica-a", 60)
    assert not acquire(engine, "replica-b", 60)
    # The holder renews its own lease.
    assert acquire(engine, "replica-a", 60)


def test_an_expired_lease_passes_to_another_replica(engine: sa.Engine) -> None:
    assert acquire(engine, "replica-a", 0.05)
    time.sleep(0.1)
    assert acquire(engine, "replica-b", 60)
    assert not acquire(engine, "replica-a", 60)


def test_a_released_lease_is_free_at_once(engine: sa.Engine) -> None:
    assert acquire(engine, "replica-a", 60)
    with engine.begin() as conn:
        jobs.release_lease(conn, "gc", "replica-a")
    assert acquire(engine, "replica-b", 60)


async def _slow_upkeep(seconds: float) -> ExpiryReport:
    await anyio.sleep(seconds)
    return ExpiryReport(0, 0)


def test_upkeep_longer_than_its_lease_keeps_it(tmp_path: Path) -> None:
    url = default_url(tmp_path)
    migrate.upgrade(url)
    storage = FilesystemDriver(tmp_path / "blobs")

    async def scenario() -> None:
        executor = create_executor(url)
        first = Maintenance(executor, storage, upload_max_age=3600)
        second = Maintenance(executor, storage, upload_max_age=3600)
        second.holder = "another-replica"
        first._upkeep = lambda: _slow_upkeep(1.2)  # type: ignore[method-assign]
        second._upkeep = lambda: _slow_upkeep(0)  # type: ignore[method-assign]
        try:
            async with anyio.create_task_group() as group:
                group.start_soon(first.run_once, 0.3)
                await anyio.sleep(0.05)
                # Four terms go by; the heartbeat keeps the lease with `first`.
                for _ in range(10):
                    assert await second.run_once(0.3) is None
                    await anyio.sleep(0.1)
            assert await second.run_once(0.3) is None  # `first` ran last, still held
        finally:
            await executor.close()

    anyio.run(scenario)


def test_upkeep_stops_when_its_lease_is_taken(
    tmp_path: Path, engine: sa.Engine
) -> None:
    url = default_url(tmp_path)
    storage = FilesystemDriver(tmp_path / "blobs")

    async def scenario() -> ExpiryReport | None:
        executor = create_executor(url)
        first = Maintenance(executor, storage, upload_max_age=3600)

        async def stolen_midway() -> ExpiryReport:
            # Another replica grabs the lease (as if this one had stalled).
            with engine.begin() as conn:
                conn.execute(sa.update(job_leases).values(holder="thief"))
            return await _slow_upkeep(2)

        first._upkeep = stolen_midway  # type: ignore[method-assign]
        try:
            return await first.run_once(0.3)
        finally:
            await executor.close()

    started = time.monotonic()
    assert anyio.run(scenario) is None
    assert time.monotonic() - started < 1.5  # cancelled, not run to the end
