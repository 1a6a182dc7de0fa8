"""Account queries that decide what a user sees, on SQLite."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from dockyard.metadata import accounts, migrate
from dockyard.metadata.engine import create_sync_engine


@pytest.fixture
def conn(tmp_path: Path) -> Iterator[sa.Connection]:
    url = f"sqlite:///{tmp_path / 'metadata.db'}"
    migrate.upgrade(url)
    engine = create_sync_engine(url)
    with engine.begin() as connection:
        yield connection
    engine.dispose()


def visible(conn: sa.Connection, username: str, *groups: str) -> list[str]:
    found = accounts.namespaces_visible_to(conn, username, groups)
    return [namespace.name for namespace in found]


def test_user_sees_public_own_and_bound_namespaces(conn: sa.Connection) -> None:
    accounts.create_namespace(conn, "shared", public=True)
    accounts.create_namespace(conn, "alice")
    accounts.create_namespace(conn, "team")
    accounts.create_namespace(conn, "secret")
    accounts.bind_role(conn, "team", "user", "alice", "reader", "frontend/*")

    assert visible(conn, "alice") == ["alice", "shared", "team"]
    assert visible(conn, "bob") == ["shared"]


def test_group_binding_makes_namespace_visible(conn: sa.Connection) -> None:
    accounts.create_namespace(conn, "platform")
    accounts.create_namespace(conn, "other")
    accounts.bind_role(conn, "platform", "group", "ops", "writer")
    # A user binding for another user, and a group the caller is not in.
    accounts.bind_role(conn, "other", "user", "carol", "owner")
    accounts.bind_role(conn, "other", "group", "dev", "reader")

    assert visible(conn, "bob", "ops") == ["platform"]
    assert visible(conn, "bob", "qa") == []
    assert visible(conn, "ops") == []  # a user named like a group is not in it
