"""Fixtures for driving real OCI clients against a registry.

By default the clients talk to a `dockyard serve` process started for the
session. To run the same tests against another registry (say, the reference
CNCF Distribution, to check a test rather than the server), point them at it:

    DOCKYARD_TEST_REGISTRY_URL=http://127.0.0.1:5000 pytest tests/clients

The registry must serve plain HTTP on that address and allow deletes.
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.clients.tools import (
    ExternalRegistry,
    Podman,
    Registry,
    Skopeo,
    client_environment,
    require_module,
    require_tool,
)
from tests.support.server import RegistryServer

REGISTRY_URL_VARIABLE = "DOCKYARD_TEST_REGISTRY_URL"


@pytest.fixture(scope="session")
def registry(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Registry]:
    """The session's registry: Dockyard, unless DOCKYARD_TEST_REGISTRY_URL is set."""
    external_url = os.environ.get(REGISTRY_URL_VARIABLE)
    if external_url:
        yield ExternalRegistry(external_url.rstrip("/"))
        return
    server = RegistryServer(tmp_path_factory.mktemp("registry") / "data")
    with server:
        yield server


@pytest.fixture
def repository(request: pytest.FixtureRequest) -> str:
    """A repository name no other test (or earlier run) uses."""
    slug = re.sub(r"[^a-z0-9]+", "-", request.node.name.lower()).strip("-")
    return f"clients/{slug}-{uuid.uuid4().hex[:8]}"


@pytest.fixture(scope="session")
def client_env(
    tmp_path_factory: pytest.TempPathFactory,
    registry: Registry,
) -> dict[str, str]:
    """Environment for container tools: our registries.conf, no host auth file."""
    return client_environment(
        tmp_path_factory.mktemp("containers-config"), registry.host
    )


@pytest.fixture
def skopeo(client_env: dict[str, str]) -> Skopeo:
    conf = Path(client_env["CONTAINERS_REGISTRIES_CONF"])
    return Skopeo(require_tool("skopeo"), conf, client_env)


@pytest.fixture
def podman(client_env: dict[str, str], tmp_path: Path) -> Iterator[Podman]:
    binary = require_tool("podman")
    runroot = Path(tempfile.mkdtemp(prefix="dockyard-podman-"))
    try:
        yield Podman(binary, tmp_path / "podman", runroot, client_env)
    finally:
        shutil.rmtree(runroot, ignore_errors=True)


@pytest.fixture
def oras_client(registry: Registry) -> Any:
    """The ORAS Python SDK's client (untyped), talking plain HTTP."""
    oras_client_module = require_module("oras.client")
    return oras_client_module.OrasClient(hostname=registry.host, insecure=True)
