"""Upload locks in the metadata database, as two replicas would take them.

Each `UploadLocks` stands for one replica; both share one database (SQLite, and
a PostgreSQL cluster), which is all replicas share.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import AsyncIterator
from functools import partial

import anyio
import pytest
import sqlalchemy as sa

from dockyard.metadata import jobs, migrate
from dockyard.metadata.engine import default_url
from dockyard.metadata.executor import Executor, create_executor
from dockyard.metadata.tables import job_leases
from dockyard.services.upload_locks import UploadLocks
from dockyard.storage.base import LockTimeout
from tests.support.postgres import PostgresCluster

pytestmark = pytest.mark.anyio

UPLOAD = "0123456789abcdef"
LEASE = "upload:" + UPLOAD


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(params=["sqlite", "postgresql"])
async def db(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Executor]:
    if request.param == "sqlite":
        url = default_url(tmp_path_factory.mktemp("locks"))
    else:
        cluster: PostgresCluster = request.getfixturevalue("postgres")
        url = cluster.create_database(f"locks_{uuid.uuid4().hex[:12]}")
    migrate.upgrade(url)
    executor = create_executor(url)
    yield executor
    await executor.close()


async def lease_rows(db: Executor) -> list[tuple[str, str]]:
    def query(conn: sa.Connection) -> list[tuple[str, str]]:
        rows = conn.execute(sa.select(job_leases.c.name, job_leases.c.holder))
        return [(name, holder) for name, holder in rows]

    return await db.read(query)


async def test_a_second_replica_waits_for_the_first(db: Executor) -> None:
    first, second = UploadLocks(db), UploadLocks(db)
    events: list[str] = []
    held = anyio.Event()

    async def write(locks: UploadLocks, who: str, after: anyio.Event | None) -> None:
        if after is not None:
            await after.wait()
        async with locks.hold(UPLOAD):
            events.append(f"{who} acquired")
            held.set()
            await anyio.sleep(0.3)
            events.append(f"{who} released")

    with anyio.fail_after(10):
        async with anyio.create_task_group() as group:
            group.start_soon(write, first, "first", None)
            group.start_soon(write, second, "second", held)

    assert events[:2] == ["first acquired", "first released"]
    assert events[2:] == ["second acquired", "second released"]
    assert await lease_rows(db) == []


@pytest.mark.parametrize("same_replica", [True, False], ids=["same", "other"])
async def test_a_waiter_times_out_while_the_holder_renews(
    db: Executor, same_replica: bool
) -> None:
    holder = UploadLocks(db, lease=1.0, timeout=2.0)
    # Each request takes the lock with its own token, even in one replica.
    waiter = holder if same_replica else UploadLocks(db, timeout=2.0)

    async with holder.hold(UPLOAD):
        # Two terms of the lease go by: only renewals keep the waiter out.
        with pytest.raises(LockTimeout):
            async with waiter.hold(UPLOAD):
                pass


async def test_a_crashed_holders_lease_runs_out(db: Executor) -> None:
    # A holder that took the lease and died: nobody renews or releases it.
    await db.write(
        partial(jobs.acquire_lease, name=LEASE, holder="crashed", seconds=0.5)
    )
    started = time.monotonic()

    async with UploadLocks(db, timeout=5.0).hold(UPLOAD):
        waited = time.monotonic() - started

    assert 0.3 < waited < 3.0


async def test_a_lost_lease_cancels_the_work(db: Executor) -> None:
    def steal(conn: sa.Connection) -> None:
        conn.execute(
            sa.update(job_leases)
            .where(job_leases.c.name == LEASE)
            .values(holder="thief", expires_at=time.time() + 60)
        )

    started = time.monotonic()
    with anyio.fail_after(5), pytest.raises(LockTimeout):
        async with UploadLocks(db, lease=0.3).hold(UPLOAD):
            await db.write(steal)
            await anyio.sleep(10)

    assert time.monotonic() - started < 2.0
    assert await lease_rows(db) == [(LEASE, "thief")]


async def test_a_cancelled_request_releases_its_lease(db: Executor) -> None:
    # A client that hangs up in the middle of a PATCH.
    with anyio.move_on_after(0.2):
        async with UploadLocks(db).hold(UPLOAD):
            await anyio.sleep(10)

    assert await lease_rows(db) == []


async def test_releasing_forgets_leases_nobody_will_release(db: Executor) -> None:
    await db.write(
        partial(jobs.acquire_lease, name="upload:old", holder="gone", seconds=-7200)
    )
    await db.write(
        partial(jobs.acquire_lease, name="maintenance", holder="job", seconds=-7200)
    )

    async with UploadLocks(db).hold(UPLOAD):
        pass

    assert await lease_rows(db) == [("maintenance", "job")]
