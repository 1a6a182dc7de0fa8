"""Two `dockyard serve` replicas on one PostgreSQL database behave as one registry.

Both replicas share the metadata database and the blob storage (a shared folder
here; an object store in production) and nothing else: no sticky sessions, no
messages between them.
"""

from __future__ import annotations

import hashlib
import json
import os
import threading
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.clients.tools import Skopeo, require_tool, write_registries_conf
from tests.support.oci_layout import OciLayout, write_image
from tests.support.postgres import PostgresCluster
from tests.support.server import RegistryServer

MANIFEST = "application/vnd.oci.image.manifest.v1+json"


@pytest.fixture(scope="module")
def replicas(
    postgres: PostgresCluster, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[RegistryServer, RegistryServer]]:
    root = tmp_path_factory.mktemp("replicas")
    env = {
        "DOCKYARD_DATABASE_URL": postgres.create_database("replicas"),
        "DOCKYARD_STORAGE_ROOT": str(root / "blobs"),
    }
    servers = [RegistryServer(root / f"replica-{n}", env=env) for n in (1, 2)]
    # Started together: their migrations must take turns, not collide.
    starters = [threading.Thread(target=server.start) for server in servers]
    for starter in starters:
        starter.start()
    for starter in starters:
        starter.join(timeout=60)
    try:
        yield servers[0], servers[1]
    finally:
        for server in servers:
            server.stop()


def digest_of(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def push_blob(server: RegistryServer, repository: str, data: bytes) -> str:
    digest = digest_of(data)
    response = httpx.post(
        f"{server.url}/v2/{repository}/blobs/uploads/",
        params={"digest": digest},
        content=data,
    )
    assert response.status_code == 201, response.text
    return digest


def push_image(server: RegistryServer, repository: str, tag: str) -> str:
    config = b'{"architecture":"amd64","os":"linux"}'
    layer = os.urandom(4096)
    manifest = {
        "schemaVersion": 2,
        "mediaType": MANIFEST,
        "config": {
            "mediaType": "application/vnd.oci.image.config.v1+json",
            "digest": push_blob(server, repository, config),
            "size": len(config),
        },
        "layers": [
            {
                "mediaType": "application/vnd.oci.image.layer.v1.tar",
                "digest": push_blob(server, repository, layer),
                "size": len(layer),
            }
        ],
    }
    body = json.dumps(manifest).encode()
    response = httpx.put(
        f"{server.url}/v2/{repository}/manifests/{tag}",
        content=body,
        headers={"Content-Type": MANIFEST},
    )
    assert response.status_code == 201, response.text
    return digest_of(body)


def test_upload_started_on_one_replica_finishes_on_the_other(
    replicas: tuple[RegistryServer, RegistryServer],
) -> None:
    first, second = replicas
    chunks = [os.urandom(300_000) for _ in range(4)]
    data = b"".join(chunks)

    started = httpx.post(f"{first.url}/v2/scale/chunked/blobs/uploads/")
    assert started.status_code == 202
    location, offset = started.headers["location"], 0
    for number, chunk in enumerate(chunks):
        target = (first, second)[number % 2]
        response = httpx.patch(
            f"{target.url}{location}",
            content=chunk,
            headers={"Content-Range": f"{offset}-{offset + len(chunk) - 1}"},
        )
        assert response.status_code == 202, response.text
        location, offset = response.headers["location"], offset + len(chunk)

    finished = httpx.put(f"{second.url}{location}", params={"digest": digest_of(data)})
    assert finished.status_code == 201, finished.text
    pulled = httpx.get(f"{first.url}/v2/scale/chunked/blobs/{digest_of(data)}")
    assert pulled.content == data


def test_tag_pushed_through_one_is_served_by_the_other_at_once(
    replicas: tuple[RegistryServer, RegistryServer],
) -> None:
    first, second = replicas
    digest = push_image(first, "scale/tags", "v1")

    seen = httpx.head(f"{second.url}/v2/scale/tags/manifests/v1")
    assert seen.status_code == 200
    assert seen.headers["docker-content-digest"] == digest

    deleted = httpx.delete(f"{second.url}/v2/scale/tags/manifests/{digest}")
    assert deleted.status_code == 202
    assert httpx.head(f"{first.url}/v2/scale/tags/manifests/v1").status_code == 404


def test_two_replicas_finishing_the_same_blob_store_it_once(
    replicas: tuple[RegistryServer, RegistryServer], tmp_path: Path
) -> None:
    data = os.urandom(2_000_000)
    outcomes: list[int] = []

    def push(server: RegistryServer, repository: str) -> None:
        response = httpx.post(
            f"{server.url}/v2/{repository}/blobs/uploads/",
            params={"digest": digest_of(data)},
            content=data,
        )
        outcomes.append(response.status_code)

    threads = [
        threading.Thread(target=push, args=(server, f"scale/same-{n}"))
        for n, server in enumerate(replicas)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)

    assert outcomes == [201, 201]
    root = replicas[0].env["DOCKYARD_STORAGE_ROOT"]
    stored = list(Path(root, "blobs").rglob(digest_of(data).split(":")[1]))
    assert len(stored) == 1
    for n, server in enumerate(replicas):
        pulled = httpx.get(f"{server.url}/v2/scale/same-{n}/blobs/{digest_of(data)}")
        assert pulled.content == data


@pytest.mark.clients
def test_skopeo_pushes_through_one_and_pulls_through_the_other(
    replicas: tuple[RegistryServer, RegistryServer], tmp_path: Path
) -> None:
    first, second = replicas
    conf = tmp_path / "registries.conf"
    write_registries_conf(conf, first.host)
    conf.write_text(
        conf.read_text()
        + f'\n[[registry]]\nlocation = "{second.host}"\ninsecure = true\n'
    )
    auth = tmp_path / "auth.json"
    auth.write_text('{"auths": {}}')
    skopeo = Skopeo(
        require_tool("skopeo"),
        conf,
        {"CONTAINERS_REGISTRIES_CONF": str(conf), "REGISTRY_AUTH_FILE": str(auth)},
    )
    image = write_image(tmp_path / "source", "v1", seed=404)

    skopeo.copy(f"oci:{tmp_path / 'source'}:v1", f"docker://{first.host}/scale/app:v1")
    skopeo.copy(f"docker://{second.host}/scale/app:v1", f"oci:{tmp_path / 'copy'}:v1")

    copy = OciLayout(tmp_path / "copy")
    assert copy.resolve("v1")["digest"] == image.digest
    for digest in [image.config.digest, *image.layer_digests]:
        assert copy.read_blob(digest) == OciLayout(tmp_path / "source").read_blob(
            digest
        )
