"""Shared fixtures: a running registry for the whole session, and fresh ones.

The session registry runs once per metadata backend: SQLite (the embedded
default) and PostgreSQL (a throwaway cluster the tests start), so every test
that uses it checks both.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.support.postgres import PostgresCluster
from tests.support.server import RegistryServer

BACKENDS = ["sqlite", "postgresql"]


@pytest.fixture(scope="session")
def postgres() -> Iterator[PostgresCluster]:
    with PostgresCluster() as cluster:
        yield cluster


@pytest.fixture(scope="session", params=BACKENDS)
def registry(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[RegistryServer]:
    """A registry shared by tests that use their own repository names."""
    env: dict[str, str] = {}
    if request.param == "postgresql":
        cluster: PostgresCluster = request.getfixturevalue("postgres")
        env["DOCKYARD_DATABASE_URL"] = cluster.create_database("registry")
    server = RegistryServer(
        tmp_path_factory.mktemp(f"registry-{request.param}") / "data", env=env
    )
    with server:
        yield server


@pytest.fixture
def fresh_registry(tmp_path: Path) -> Iterator[RegistryServer]:
    """A registry on empty storage, for tests that need to start from nothing."""
    with RegistryServer(tmp_path / "data") as server:
        yield server


@pytest.fixture
def client(registry: RegistryServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=registry.url, timeout=30.0) as http:
        yield http
