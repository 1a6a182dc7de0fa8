"""The async face of the account queries, for the API and the auth layer."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from functools import partial
from typing import Any, TypeVar

import sqlalchemy as sa

from dockyard.metadata import accounts
from dockyard.metadata.accounts import (
    AuditRecord,
    BindingRecord,
    NamespaceRecord,
    RobotRecord,
    UserRecord,
)
from dockyard.metadata.executor import Executor

T = TypeVar("T")


class AccountStore:
    def __init__(self, executor: Executor) -> None:
        self._db = executor

    async def read(self, query: Callable[..., T], **arguments: Any) -> T:
        """Run any read-only function of `accounts` with these arguments."""
        bound: Callable[[sa.Connection], T] = partial(query, **arguments)
        return await self._db.read(bound)

    async def write(self, change: Callable[..., T], **arguments: Any) -> T:
        """Run any changing function of `accounts` in one transaction."""
        bound: Callable[[sa.Connection], T] = partial(change, **arguments)
        return await self._db.write(bound)

    async def get_user(self, username: str) -> UserRecord | None:
        return await self.read(accounts.get_user, username=username)

    async def get_robot(self, name: str) -> RobotRecord | None:
        return await self.read(accounts.get_robot, name=name)

    async def bindings_for(
        self, namespace: str, username: str, groups: Iterable[str]
    ) -> tuple[NamespaceRecord | None, list[BindingRecord]]:
        return await self.read(
            accounts.bindings_for,
            namespace=namespace,
            username=username,
            groups=tuple(groups),
        )

    async def record_event(self, **event: Any) -> None:
        await self.write(accounts.record_event, **event)

    async def list_events(self, **filters: Any) -> list[AuditRecord]:
        return await self.read(accounts.list_events, **filters)
