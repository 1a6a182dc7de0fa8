"""The registry rides out a PostgreSQL restart: 503 while it is gone, then normal.

The server keeps no ping before each query (it would double the round trips
of every read), so the first requests after a restart may meet dead pooled
connections. They must fail as 503 UNAVAILABLE in the spec's envelope, never
as 500, and the pool must heal without a server restart.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.support.postgres import PostgresCluster
from tests.support.server import RegistryServer

MANIFEST = "application/vnd.oci.image.manifest.v1+json"
CONFIG = b"{}"


@pytest.fixture
def cluster() -> Iterator[PostgresCluster]:
    # Its own cluster: restarting the session's would disturb other tests.
    with PostgresCluster() as own:
        yield own


@pytest.fixture
def server(cluster: PostgresCluster, tmp_path: Path) -> Iterator[RegistryServer]:
    env = {
        "DOCKYARD_DATABASE_URL": cluster.create_database("restart"),
        "DOCKYARD_HTTP_WORKERS": "2",
    }
    with RegistryServer(tmp_path / "data", env=env) as running:
        yield running


def _push_image(client: httpx.Client) -> str:
    digest = "sha256:" + hashlib.sha256(CONFIG).hexdigest()
    response = client.post(
        "/v2/db/restart/blobs/uploads/", params={"digest": digest}, content=CONFIG
    )
    assert response.status_code == 201, response.text
    manifest = json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": MANIFEST,
            "config": {
                "mediaType": "application/vnd.oci.image.config.v1+json",
                "digest": digest,
                "size": len(CONFIG),
            },
            "layers": [],
        }
    ).encode()
    response = client.put(
        "/v2/db/restart/manifests/latest",
        content=manifest,
        headers={"Content-Type": MANIFEST},
    )
    assert response.status_code == 201, response.text
    return response.headers["Docker-Content-Digest"]


def test_requests_fail_cleanly_then_recover_after_restart(
    cluster: PostgresCluster, server: RegistryServer
) -> None:
    with httpx.Client(base_url=server.url, timeout=10) as client:
        digest = _push_image(client)
        # Fill both workers' pools with connections the restart will kill.
        for _ in range(40):
            assert client.head("/v2/db/restart/manifests/latest").status_code == 200

        cluster.restart()

        statuses = []
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            response = client.get("/v2/db/restart/manifests/latest")
            statuses.append(response.status_code)
            if response.status_code == 503:
                assert response.json()["errors"][0]["code"] == "UNAVAILABLE"
            if statuses[-20:] == [200] * 20:
                break
        assert set(statuses) <= {200, 503}, statuses
        assert statuses[-20:] == [200] * 20, statuses
        assert (
            client.get("/v2/db/restart/manifests/latest").headers[
                "Docker-Content-Digest"
            ]
            == digest
        )
        # Writes work again too.
        _push_image(client)
