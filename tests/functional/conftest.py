"""Fixtures for the functional suite: a push helper and a fresh repository name."""

from __future__ import annotations

import httpx
import pytest

from tests.support.registry_client import RegistryClient, unique_repository
from tests.support.server import RegistryServer


@pytest.fixture
def oci(client: httpx.Client) -> RegistryClient:
    return RegistryClient(client)


@pytest.fixture
def repo() -> str:
    """A repository that no other test touches on the shared registry."""
    return unique_repository()


@pytest.fixture
def registry_url(registry: RegistryServer) -> str:
    return registry.url
