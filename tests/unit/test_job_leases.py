"""One replica at a time holds a background job's lease."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
import sqlalchemy as sa

from dockyard.metadata import jobs, migrate
from dockyard.metadata.engine import create_sync_engine, default_url


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
