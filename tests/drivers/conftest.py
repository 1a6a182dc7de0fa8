"""Every storage driver, built fresh for each test, for the contract suite.

The S3 driver runs against moto's standalone server (one per session, a new
bucket per test) with a small part size, so multipart paths show up with a
few megabytes of data instead of dozens.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from dockyard.storage.base import StorageDriver
from dockyard.storage.drivers.filesystem import FilesystemDriver
from tests.support.s3 import MotoServer

DRIVERS = ["filesystem", "s3"]


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(scope="session")
def moto() -> Iterator[MotoServer]:
    with MotoServer() as server:
        yield server


@pytest.fixture(params=DRIVERS)
def open_driver(
    request: pytest.FixtureRequest, tmp_path: Path
) -> Callable[[], StorageDriver]:
    """Makes drivers on one fresh store: a second one stands for another process."""
    if request.param == "filesystem":
        root = tmp_path / "storage"
        return lambda: FilesystemDriver(root)
    server: MotoServer = request.getfixturevalue("moto")
    bucket = server.create_bucket()
    return lambda: server.driver(bucket, redirect=True)


@pytest.fixture
def driver(open_driver: Callable[[], StorageDriver]) -> StorageDriver:
    return open_driver()
