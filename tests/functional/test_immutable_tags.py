"""Immutable tags: pushed once, then never moved or deleted while the rule holds."""

from __future__ import annotations

import contextlib
import io
import uuid
from collections.abc import Iterator

import httpx
import pytest

from dockyard.cli.main import main
from tests.support.registry_client import Manifest, RegistryClient
from tests.support.server import RegistryServer


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RegistryServer]:
    with RegistryServer(tmp_path_factory.mktemp("immutable") / "data") as running:
        yield running


@pytest.fixture
def namespace(server: RegistryServer) -> str:
    """A namespace of this test's own, whose `v*` tags are immutable."""
    name = f"acme{uuid.uuid4().hex[:10]}"
    dockyard(server, "namespace", "create", name)
    dockyard(server, "immutable", "add", name, "v*")
    return name


def dockyard(server: RegistryServer, *args: str) -> str:
    """Run a `dockyard` command in-process on the server's database."""
    output = io.StringIO()
    with contextlib.redirect_stdout(output):
        assert main([*args, "--data-dir", str(server.data_dir)]) == 0
    return output.getvalue()


@pytest.fixture
def oci(server: RegistryServer) -> Iterator[RegistryClient]:
    with httpx.Client(base_url=server.url, timeout=30.0) as http:
        yield RegistryClient(http)


@pytest.fixture
def repo(namespace: str) -> str:
    return f"{namespace}/app"


def push(
    oci: RegistryClient, repo: str, reference: str, image: Manifest
) -> httpx.Response:
    return oci.put_manifest(repo, reference, image)


def assert_denied(response: httpx.Response) -> None:
    assert response.status_code == 403, response.text
    error = response.json()["errors"][0]
    assert error["code"] == "DENIED"
    assert "immutable" in error["message"]


def test_protected_tag_is_created_and_pushed_again_unchanged(
    oci: RegistryClient, repo: str
) -> None:
    image = oci.push_image(repo)
    assert push(oci, repo, "v1", image).status_code == 201
    assert push(oci, repo, "v1", image).status_code == 201


def test_protected_tag_cannot_be_moved(oci: RegistryClient, repo: str) -> None:
    one, two = oci.push_image(repo), oci.push_image(repo)
    assert push(oci, repo, "v1", one).status_code == 201
    assert_denied(push(oci, repo, "v1", two))
    assert_denied(oci.put_manifest(repo, two.digest, two, {"tag": ["v1"]}))
    # Other tags still move freely.
    assert push(oci, repo, "latest", one).status_code == 201
    assert push(oci, repo, "latest", two).status_code == 201


def test_protected_tag_and_its_manifest_cannot_be_deleted(
    oci: RegistryClient, repo: str
) -> None:
    image = oci.push_image(repo)
    digest = push(oci, repo, "v1", image).headers["docker-content-digest"]

    assert_denied(oci.http.delete(f"/v2/{repo}/manifests/v1"))
    assert_denied(oci.http.delete(f"/v2/{repo}/manifests/{digest}"))
    assert oci.http.head(f"/v2/{repo}/manifests/v1").status_code == 200


def test_removing_the_rule_lifts_the_protection(
    oci: RegistryClient, server: RegistryServer, namespace: str, repo: str
) -> None:
    assert push(oci, repo, "v1", oci.push_image(repo)).status_code == 201
    dockyard(server, "immutable", "remove", namespace, "v*")

    assert push(oci, repo, "v1", oci.push_image(repo)).status_code == 201
    assert oci.http.delete(f"/v2/{repo}/manifests/v1").status_code == 202


def test_rules_are_listed(server: RegistryServer, namespace: str) -> None:
    dockyard(server, "immutable", "add", namespace, "release-*", "--repository", "web")
    assert dockyard(server, "immutable", "list", namespace).splitlines() == [
        "web\trelease-*",
        "*\tv*",
    ]
