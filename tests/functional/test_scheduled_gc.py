"""The server collects garbage by itself when `registry.gc_interval` is set."""

from __future__ import annotations

import hashlib
import os
import time
from collections.abc import Iterator

import httpx
import pytest

from tests.support.server import RegistryServer


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RegistryServer]:
    env = {
        "DOCKYARD_REGISTRY_MAINTENANCE_INTERVAL": "1",
        "DOCKYARD_REGISTRY_GC_INTERVAL": "1",
        "DOCKYARD_REGISTRY_GC_GRACE": "0",
        "DOCKYARD_REGISTRY_GC_KEEP_UNTAGGED": "0",
    }
    data = tmp_path_factory.mktemp("scheduled-gc") / "data"
    with RegistryServer(data, env=env) as running:
        yield running


def test_unreferenced_blob_is_collected_without_an_operator(
    server: RegistryServer,
) -> None:
    data = os.urandom(5000)
    digest = "sha256:" + hashlib.sha256(data).hexdigest()
    pushed = httpx.post(
        f"{server.url}/v2/gc/app/blobs/uploads/",
        params={"digest": digest},
        content=data,
    )
    assert pushed.status_code == 201
    stored = server.data_dir / "blobs" / "sha256" / digest[7:9] / digest[7:]

    deadline = time.monotonic() + 20
    while stored.exists() and time.monotonic() < deadline:
        time.sleep(0.25)

    assert not stored.exists()
    gone = httpx.head(f"{server.url}/v2/gc/app/blobs/{digest}")
    assert gone.status_code == 404
    assert "garbage collection finished" in server.logs()
