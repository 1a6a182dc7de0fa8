"""Shared fixtures: a running registry for the whole session, and fresh ones.

The session registry runs once per backend: SQLite with the filesystem (the
embedded default), PostgreSQL (a throwaway cluster the tests start), and S3 blob
storage (moto's S3 server on loopback), so every test that uses it checks all.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.support.postgres import PostgresCluster
from tests.support.s3 import ACCESS_KEY, SECRET_KEY, MotoServer
from tests.support.server import RegistryServer

BACKENDS = ["sqlite", "postgresql", "s3"]


@pytest.fixture(scope="session")
def postgres() -> Iterator[PostgresCluster]:
    with PostgresCluster() as cluster:
        yield cluster


@pytest.fixture(scope="session")
def moto() -> Iterator[MotoServer]:
    with MotoServer() as server:
        yield server


@pytest.fixture(scope="session", params=BACKENDS)
def registry(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[RegistryServer]:
    """A registry shared by tests that use their own repository names."""
    env: dict[str, str] = {}
    if request.param == "postgresql":
        cluster: PostgresCluster = request.getfixturevalue("postgres")
        env["DOCKYARD_DATABASE_URL"] = cluster.create_database("registry")
    if request.param == "s3":
        store: MotoServer = request.getfixturevalue("moto")
        env.update(
            DOCKYARD_STORAGE_DRIVER="s3",
            DOCKYARD_STORAGE_S3_BUCKET=store.create_bucket(),
            DOCKYARD_STORAGE_S3_ENDPOINT_URL=store.url,
            DOCKYARD_STORAGE_S3_ACCESS_KEY=ACCESS_KEY,
            DOCKYARD_STORAGE_S3_SECRET_KEY=SECRET_KEY,
        )
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
