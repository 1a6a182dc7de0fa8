"""Servers for the robustness tests; a failing test's report carries their logs."""

from __future__ import annotations

from collections.abc import Generator, Iterator
from pathlib import Path

import pytest

from tests.support.server import RegistryServer

LOG_TAIL_CHARS = 8000

_SERVERS = pytest.StashKey[list[RegistryServer]]()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    report = yield
    if report.failed:
        for server in item.stash.get(_SERVERS, []):
            if server.log_path.exists():
                tail = server.logs()[-LOG_TAIL_CHARS:]
                report.sections.append((f"server log {server.log_path.name}", tail))
    return report


def _attach(request: pytest.FixtureRequest, server: RegistryServer) -> RegistryServer:
    request.node.stash.setdefault(_SERVERS, []).append(server)
    return server


@pytest.fixture(scope="module")
def shared_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RegistryServer]:
    server = RegistryServer(tmp_path_factory.mktemp("robust") / "data")
    with server:
        yield server


@pytest.fixture
def server(
    request: pytest.FixtureRequest, shared_server: RegistryServer
) -> RegistryServer:
    """A single-worker registry shared by a module; tests use their own names."""
    return _attach(request, shared_server)


@pytest.fixture(scope="module")
def shared_two_worker_server(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[RegistryServer]:
    server = RegistryServer(tmp_path_factory.mktemp("two-workers") / "data", workers=2)
    with server:
        yield server


@pytest.fixture
def two_worker_server(
    request: pytest.FixtureRequest, shared_two_worker_server: RegistryServer
) -> RegistryServer:
    return _attach(request, shared_two_worker_server)


@pytest.fixture
def crash_server(
    request: pytest.FixtureRequest, tmp_path: Path
) -> Iterator[RegistryServer]:
    """A registry of its own that a test may kill and restart at will."""
    server = _attach(request, RegistryServer(tmp_path / "data"))
    server.start()
    try:
        yield server
    finally:
        server.kill()


@pytest.fixture
def crash_two_worker_server(
    request: pytest.FixtureRequest, tmp_path: Path
) -> Iterator[RegistryServer]:
    server = _attach(request, RegistryServer(tmp_path / "data", workers=2))
    server.start()
    try:
        yield server
    finally:
        server.kill()
