"""Namespace quotas: distinct blobs count once, a push past the limit is refused."""

from __future__ import annotations

import contextlib
import hashlib
import io
import os
import uuid
from collections.abc import Iterator
from unittest import mock

import httpx
import pytest

from dockyard.cli.main import main
from tests.support.postgres import PostgresCluster
from tests.support.server import RegistryServer

QUOTA = 10_000


# PostgreSQL too: there the quota check locks the namespace's row.
@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[RegistryServer]:
    env = {}
    if request.param == "postgresql":
        cluster: PostgresCluster = request.getfixturevalue("postgres")
        env["DOCKYARD_DATABASE_URL"] = cluster.create_database("quotas")
    data = tmp_path_factory.mktemp(f"quotas-{request.param}") / "data"
    with RegistryServer(data, env=env) as running:
        yield running


def dockyard(server: RegistryServer, *args: str) -> str:
    output = io.StringIO()
    with (
        contextlib.redirect_stdout(output),
        mock.patch.dict(os.environ, server.env),
    ):
        assert main([*args, "--data-dir", str(server.data_dir)]) == 0
    return output.getvalue()


@pytest.fixture
def namespace(server: RegistryServer) -> str:
    name = f"team{uuid.uuid4().hex[:8]}"
    dockyard(server, "namespace", "create", name)
    dockyard(server, "namespace", "quota", name, str(QUOTA))
    return name


def push(server: RegistryServer, repository: str, data: bytes) -> httpx.Response:
    digest = "sha256:" + hashlib.sha256(data).hexdigest()
    return httpx.post(
        f"{server.url}/v2/{repository}/blobs/uploads/",
        params={"digest": digest},
        content=data,
    )


def test_push_within_the_quota_succeeds_and_is_counted(
    server: RegistryServer, namespace: str
) -> None:
    assert push(server, f"{namespace}/app", os.urandom(4000)).status_code == 201
    usage = dockyard(server, "namespace", "usage", namespace)
    assert usage.strip() == f"{namespace}\tused=4000\tquota={QUOTA}"


def test_shared_blob_counts_once_per_namespace(
    server: RegistryServer, namespace: str
) -> None:
    data = os.urandom(6000)
    assert push(server, f"{namespace}/one", data).status_code == 201
    # The same bytes in another repository of the namespace cost nothing more.
    assert push(server, f"{namespace}/two", data).status_code == 201
    assert "used=6000" in dockyard(server, "namespace", "usage", namespace)


def test_push_past_the_quota_is_denied_with_a_clear_message(
    server: RegistryServer, namespace: str
) -> None:
    assert push(server, f"{namespace}/app", os.urandom(6000)).status_code == 201

    refused = push(server, f"{namespace}/app", os.urandom(6000))

    assert refused.status_code == 403
    error = refused.json()["errors"][0]
    assert error["code"] == "DENIED"
    assert "over its quota" in error["message"]
    assert "used=6000" in dockyard(server, "namespace", "usage", namespace)


def test_clearing_the_quota_lifts_the_limit(
    server: RegistryServer, namespace: str
) -> None:
    dockyard(server, "namespace", "quota", namespace, "none")
    assert push(server, f"{namespace}/app", os.urandom(QUOTA + 1)).status_code == 201
