"""Abandoned upload sessions expire, and their bytes leave the storage.

Runs on the filesystem and on S3 (moto), where an upload's age is the time of
its newest object.
"""

from __future__ import annotations

import time
from collections.abc import Iterator

import httpx
import pytest

from tests.scaleout.storage import SharedStorage, shared_storage
from tests.support.server import RegistryServer

# Two seconds: S3 keeps modification times in whole seconds, so an object can
# look up to a second older than it is.
MAX_AGE = 2
INTERVAL = 1
EXPIRY = {
    "DOCKYARD_REGISTRY_UPLOAD_MAX_AGE": str(MAX_AGE),
    "DOCKYARD_REGISTRY_MAINTENANCE_INTERVAL": str(INTERVAL),
}


@pytest.fixture(scope="module", params=["filesystem", "s3"])
def storage(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> SharedStorage:
    return shared_storage(request, tmp_path_factory.mktemp("expiry") / "blobs")


@pytest.fixture(scope="module")
def server(
    storage: SharedStorage, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[RegistryServer]:
    data = tmp_path_factory.mktemp(f"expiry-{storage.name}") / "data"
    with RegistryServer(data, env={**EXPIRY, **storage.env}) as running:
        yield running


def wait_until_gone(client: httpx.Client, location: str) -> httpx.Response:
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        status = client.get(location)
        if status.status_code == 404:
            return status
        time.sleep(0.25)
    return status


def test_abandoned_session_expires_with_its_bytes(
    server: RegistryServer, storage: SharedStorage
) -> None:
    with httpx.Client(base_url=server.url) as client:
        started = client.post("/v2/expiry/app/blobs/uploads/")
        location = started.headers["location"]
        upload_id = started.headers["docker-upload-uuid"]
        patched = client.patch(location, content=b"x" * 4096)
        assert patched.status_code == 202
        assert storage.holds_upload(upload_id)

        status = wait_until_gone(client, location)

    assert status.status_code == 404
    assert status.json()["errors"][0]["code"] == "BLOB_UPLOAD_UNKNOWN"
    assert not storage.holds_upload(upload_id)


# A monolithic push's upload, and the second name of a finished one (both are
# left behind only by a crash).
@pytest.mark.parametrize("name", ["direct-orphan", "direct-done.staged-0a1b"])
def test_orphaned_upload_files_are_removed(
    server: RegistryServer, storage: SharedStorage, name: str
) -> None:
    storage.plant_orphan(name)
    assert storage.holds_upload(name)

    deadline = time.monotonic() + 15
    while storage.holds_upload(name) and time.monotonic() < deadline:
        time.sleep(0.25)

    assert not storage.holds_upload(name)


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
