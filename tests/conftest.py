"""Shared fixtures: a running registry for the whole session, and fresh ones."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.support.server import RegistryServer


@pytest.fixture(scope="session")
def registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RegistryServer]:
    """A registry shared by tests that use their own repository names."""
    server = RegistryServer(tmp_path_factory.mktemp("registry") / "data")
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
