"""Two `dockyard serve` replicas on one PostgreSQL database behave as one registry.

Both replicas share the metadata database and the blob storage and nothing
else: no sticky sessions, no messages between them. Every test runs twice: on
a shared folder with one worker process per replica, and on one S3 bucket
(moto's server) with two worker processes per replica, where upload sessions
are locked through the database.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import threading
import time
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import httpx
import pytest

from tests.clients.tools import Skopeo, require_tool, write_registries_conf
from tests.scaleout.storage import SharedStorage, shared_storage
from tests.support.oci_layout import OciLayout, write_image
from tests.support.postgres import PostgresCluster
from tests.support.server import RegistryServer

MANIFEST = "application/vnd.oci.image.manifest.v1+json"
# Short enough for the upkeep to be seen at work within one test, long enough
# not to expire the sessions the other tests keep open for a moment.
UPLOAD_MAX_AGE = 4
UPKEEP = {
    "DOCKYARD_REGISTRY_MAINTENANCE_INTERVAL": "1",
    "DOCKYARD_REGISTRY_UPLOAD_MAX_AGE": str(UPLOAD_MAX_AGE),
    "DOCKYARD_REGISTRY_GC_INTERVAL": "1",
}
COLLECTION_LOG = re.compile(
    r"^(\S+Z) INFO \S+ garbage collection (started|finished)", re.MULTILINE
)


@pytest.fixture(scope="module", params=["filesystem", "s3"])
def storage(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> SharedStorage:
    return shared_storage(request, tmp_path_factory.mktemp("shared") / "blobs")


@pytest.fixture(scope="module")
def replicas(
    storage: SharedStorage,
    postgres: PostgresCluster,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[RegistryServer, RegistryServer]]:
    root = tmp_path_factory.mktemp(f"replicas-{storage.name}")
    env = {
        "DOCKYARD_DATABASE_URL": postgres.create_database(f"replicas_{storage.name}"),
        **storage.env,
        **UPKEEP,
    }
    # Several worker processes per replica where the database locks uploads.
    workers = 2 if storage.name == "s3" else 1
    servers = [
        RegistryServer(root / f"replica-{n}", env=env, workers=workers) for n in (1, 2)
    ]
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
    replicas: tuple[RegistryServer, RegistryServer], storage: SharedStorage
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
    stored = [path for path in storage.paths() if digest_of(data)[7:] in path]
    assert stored == [f"blobs/sha256/{digest_of(data)[7:9]}/{digest_of(data)[7:]}"]
    for n, server in enumerate(replicas):
        pulled = httpx.get(f"{server.url}/v2/scale/same-{n}/blobs/{digest_of(data)}")
        assert pulled.content == data


def slowly(data: bytes, pieces: int = 10, pause: float = 0.12) -> Iterator[bytes]:
    """A request body that takes over a second to arrive."""
    step = -(-len(data) // pieces)
    for start in range(0, len(data), step):
        yield data[start : start + step]
        time.sleep(pause)


@pytest.mark.parametrize("with_range", [True, False], ids=["ranged", "unranged"])
def test_concurrent_patches_to_one_session_never_interleave(
    replicas: tuple[RegistryServer, RegistryServer], with_range: bool
) -> None:
    first, second = replicas
    slow, fast = os.urandom(1_000_000), os.urandom(1_000_000)
    started = httpx.post(f"{first.url}/v2/scale/contended/blobs/uploads/")
    location = started.headers["location"]
    headers = {"Content-Range": f"0-{len(slow) - 1}"} if with_range else {}
    answers: dict[str, httpx.Response] = {}

    def patch(name: str, server: RegistryServer, body: bytes | Iterator[bytes]) -> None:
        answers[name] = httpx.patch(
            f"{server.url}{location}", content=body, headers=headers, timeout=30
        )

    # The slow PATCH takes the session's lock first and holds it for a second;
    # the fast one, on the other replica, must wait for it.
    slow_patch = threading.Thread(target=patch, args=("slow", first, slowly(slow)))
    slow_patch.start()
    time.sleep(0.5)
    patch("fast", second, fast)
    slow_patch.join(timeout=30)

    assert answers["slow"].status_code == 202, answers["slow"].text
    if with_range:
        # The session moved on while the fast PATCH waited: a clean 416.
        assert answers["fast"].status_code == 416
        assert answers["fast"].headers["range"] == f"0-{len(slow) - 1}"
        expected = slow
    else:
        assert answers["fast"].status_code == 202, answers["fast"].text
        expected = slow + fast
    finished = httpx.put(
        f"{second.url}{answers['slow'].headers['location']}",
        params={"digest": digest_of(expected)},
    )
    assert finished.status_code == 201, finished.text
    blob = httpx.get(f"{first.url}/v2/scale/contended/blobs/{digest_of(expected)}")
    assert blob.content == expected


def collections(server: RegistryServer) -> list[tuple[datetime, datetime]]:
    """When each garbage collection in a replica's log started and finished."""
    runs, unfinished = [], []
    for stamp, event in COLLECTION_LOG.findall(server.logs()):
        moment = datetime.strptime(stamp, "%Y-%m-%dT%H:%M:%S.%fZ")
        if event == "started":
            unfinished.append(moment)
        elif unfinished:
            # Runs of two processes at once would pair up as overlapping.
            runs.append((unfinished.pop(0), moment))
    return runs


def test_background_upkeep_runs_on_one_replica_at_a_time(
    replicas: tuple[RegistryServer, RegistryServer], storage: SharedStorage
) -> None:
    abandoned = []
    for server in replicas:
        started = httpx.post(f"{server.url}/v2/scale/abandoned/blobs/uploads/")
        location = started.headers["location"]
        patched = httpx.patch(f"{server.url}{location}", content=b"x" * 1000)
        assert patched.status_code == 202
        abandoned.append(patched.headers["location"])
    storage.plant_orphan("direct-orphan")

    def done() -> bool:
        return not storage.holds_upload("direct-orphan") and all(
            httpx.get(f"{server.url}{location}").status_code == 404
            for server in replicas
            for location in abandoned
        )

    deadline = time.monotonic() + UPLOAD_MAX_AGE + 10
    while not done() and time.monotonic() < deadline:
        time.sleep(0.25)

    # The upkeep of either replica did the work of both ...
    assert done()
    # ... and, with every worker process of both replicas trying each second,
    # only the lease holder collected: runs never overlap, and a good part of
    # an interval passes between them (every process collecting would make
    # several runs a second).
    runs = sorted(collections(replicas[0]) + collections(replicas[1]))
    assert len(runs) >= 2
    for (_, end), (start, _) in zip(runs, runs[1:], strict=False):
        assert start >= end
        assert (start - end).total_seconds() > 0.3


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
