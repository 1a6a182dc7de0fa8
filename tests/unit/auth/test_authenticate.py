"""Robot accounts and cached logins, against a real (temporary) database."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from dockyard.auth.authenticate import Authenticator, LockedOut
from dockyard.auth.lockout import Lockout
from dockyard.auth.passwords import hash_password
from dockyard.metadata import accounts, migrate
from dockyard.metadata.account_store import AccountStore
from dockyard.metadata.engine import default_url
from dockyard.metadata.executor import SqliteExecutor

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[AccountStore]:
    url = default_url(tmp_path)
    migrate.upgrade(url)
    executor = SqliteExecutor(url)
    yield AccountStore(executor)
    await executor.close()


def authenticator(store: AccountStore, attempts: int = 5) -> Authenticator:
    return Authenticator(store, Lockout(attempts, 60))


async def add_robot(store: AccountStore, name: str, expires_at: float | None) -> None:
    await store.write(
        accounts.create_robot,
        name=name,
        secret_hash=hash_password("robot-secret", rounds=4),
        grants=[{"repository": "acme/*", "actions": ["pull"]}],
        expires_at=expires_at,
        created_by="test",
    )


async def test_robot_logs_in_with_its_grants_and_use_is_recorded(
    store: AccountStore,
) -> None:
    await add_robot(store, "robot$ci", None)

    identity = await authenticator(store).login("robot$ci", "robot-secret", "10.0.0.1")

    assert identity is not None and identity.kind == "robot"
    assert identity.grants is not None
    assert [g.pattern for g in identity.grants] == ["acme/*"]
    robot = await store.get_robot("robot$ci")
    assert robot is not None and robot.last_used_at is not None


async def test_expired_robot_is_refused(store: AccountStore) -> None:
    await add_robot(store, "robot$old", time.time() - 1)
    assert await authenticator(store).login("robot$old", "robot-secret", "x") is None


async def test_revoked_robot_is_refused_even_after_a_cached_login(
    store: AccountStore,
) -> None:
    await add_robot(store, "robot$ci", None)
    auth = authenticator(store)
    assert await auth.login("robot$ci", "robot-secret", "x") is not None

    await store.write(accounts.revoke_robot, name="robot$ci")

    assert await auth.login("robot$ci", "robot-secret", "x") is None


async def test_repeated_failures_lock_the_source_out(store: AccountStore) -> None:
    await store.write(
        accounts.create_user,
        username="hana",
        password_hash=hash_password("hana-pass", rounds=4),
    )
    auth = authenticator(store, attempts=3)
    assert await auth.login("hana", "wrong", "10.0.0.9") is None
    assert await auth.login("hana", "wrong", "10.0.0.9") is None
    with pytest.raises(LockedOut) as caught:
        await auth.login("hana", "wrong", "10.0.0.9")
    assert caught.value.started
    with pytest.raises(LockedOut):
        await auth.login("hana", "hana-pass", "10.0.0.9")
    # Other sources are not affected.
    assert await auth.login("hana", "hana-pass", "10.0.0.10") is not None
