"""Abandoned upload sessions expire, and their bytes leave the disk."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.support.server import RegistryServer

MAX_AGE = 1
INTERVAL = 1


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RegistryServer]:
    env = {
        "DOCKYARD_REGISTRY_UPLOAD_MAX_AGE": str(MAX_AGE),
        "DOCKYARD_REGISTRY_MAINTENANCE_INTERVAL": str(INTERVAL),
    }
    data = tmp_path_factory.mktemp("expiry") / "data"
    with RegistryServer(data, env=env) as running:
        yield running


def wait_until_gone(client: httpx.Client, location: str) -> httpx.Response:
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        status = client.get(location)
        if status.status_code == 404:
            return status
        time.sleep(0.25)
    return status


def test_abandoned_session_expires_with_its_bytes(server: RegistryServer) -> None:
    with httpx.Client(base_url=server.url) as client:
        started = client.post("/v2/expiry/app/blobs/uploads/")
        location = started.headers["location"]
        upload_id = started.headers["docker-upload-uuid"]
        patched = client.patch(location, content=b"x" * 4096)
        assert patched.status_code == 202
        data_file = Path(server.data_dir, "uploads", upload_id)
        assert data_file.exists()

        status = wait_until_gone(client, location)

    assert status.status_code == 404
    assert status.json()["errors"][0]["code"] == "BLOB_UPLOAD_UNKNOWN"
    assert not data_file.exists()


def test_orphaned_upload_files_are_removed(server: RegistryServer) -> None:
    # A crash in the middle of a monolithic push leaves a file with no session.
    orphan = Path(server.data_dir, "uploads", "direct-orphan")
    orphan.parent.mkdir(parents=True, exist_ok=True)
    orphan.write_bytes(b"partial")

    deadline = time.monotonic() + 15
    while orphan.exists() and time.monotonic() < deadline:
        time.sleep(0.25)

    assert not orphan.exists()


def test_active_session_survives_while_it_is_written(server: RegistryServer) -> None:
    with httpx.Client(base_url=server.url) as client:
        started = client.post("/v2/expiry/busy/blobs/uploads/")
        location = started.headers["location"]
        for _ in range(8):
            response = client.patch(location, content=b"y" * 100)
            assert response.status_code == 202, response.text
            location = response.headers["location"]
            time.sleep(MAX_AGE / 4)
        assert client.get(location).status_code == 204
