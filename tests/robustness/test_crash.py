"""The registry killed (SIGKILL) or stopped in the middle of pushes, then restarted.

Whatever was cut short must leave no visible trace, whatever was acknowledged
must still be there, and every blob that is served must hash to its digest.
"""

from __future__ import annotations

import hashlib
import os
import random
import threading
import time
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest

from tests.robustness.registry_calls import (
    MIB,
    assert_outcome,
    blob_files,
    connect,
    describe,
    fetch_blob,
    fetch_manifest,
    finish_upload,
    image_manifest,
    patch_chunk,
    push_chunked,
    push_monolithic,
    put_manifest,
    sha256_digest,
    start_upload,
    upload_files,
    wait_until,
)
from tests.support.server import RegistryServer

pytestmark = pytest.mark.timeout(120)

PIECE = 256 * 1024
STALL_LIMIT = 20.0
CHUNK = 512 * 1024


class StalledBody:
    """A request body that sends its first bytes, then stalls until released.

    The stall keeps the request open for as long as the test needs to kill the
    server under it; once released, the body ends without sending the rest.
    """

    def __init__(self, data: bytes, send_first: int) -> None:
        self.data = data
        self.send_first = send_first
        self.sent = threading.Event()
        self.release = threading.Event()

    def __iter__(self) -> Iterator[bytes]:
        for offset in range(0, self.send_first, PIECE):
            yield self.data[offset : min(offset + PIECE, self.send_first)]
            time.sleep(0.005)
        self.sent.set()
        self.release.wait(timeout=STALL_LIMIT)


def send_in_background(
    pool: ThreadPoolExecutor, url: str, request: httpx.Request
) -> Future[httpx.Response]:
    def send() -> httpx.Response:
        with connect(url) as client:
            return client.send(request)

    return pool.submit(send)


def largest_upload_file(data_dir: Path) -> int:
    return max((path.stat().st_size for path in upload_files(data_dir)), default=0)


def kill_under(
    server: RegistryServer, body: StalledBody, pending: Future[httpx.Response]
) -> None:
    """Kill the server while `pending` is stalled, and check the client saw it."""
    server.kill()
    body.release.set()
    try:
        response = pending.result(timeout=STALL_LIMIT)
    except httpx.TransportError:
        return
    pytest.fail(f"request survived the kill: {describe(response)}")


def assert_blob_absent(server: RegistryServer, repository: str, digest: str) -> None:
    with connect(server.url) as client:
        head = client.head(f"/v2/{repository}/blobs/{digest}")
    assert head.status_code == 404, describe(head)
    assert blob_files(server.data_dir, digest) == []


def assert_blob_served(
    server: RegistryServer, repository: str, data: bytes, files: int = 1
) -> None:
    digest = sha256_digest(data)
    with connect(server.url) as client:
        assert fetch_blob(client, repository, digest) == data
    assert len(blob_files(server.data_dir, digest)) == files


@pytest.mark.parametrize("mode", ["monolithic", "chunked"])
def test_kill_during_blob_upload_leaves_no_blob_and_a_retry_succeeds(
    crash_server: RegistryServer, mode: str
) -> None:
    server = crash_server
    repository = f"crash/blob-{mode}"
    data = os.urandom(12 * MIB)
    digest = sha256_digest(data)
    body = StalledBody(data[MIB:] if mode == "chunked" else data, 4 * MIB)
    with connect(server.url) as client:
        if mode == "monolithic":
            request = client.build_request(
                "POST",
                f"/v2/{repository}/blobs/uploads/",
                params={"digest": digest},
                content=body,
            )
        else:
            location = start_upload(client, repository).headers["location"]
            first = patch_chunk(client, location, data[:MIB], 0)
            assert first.status_code == 202, describe(first)
            request = client.build_request(
                "PATCH",
                first.headers["location"],
                content=body,
                headers={"Content-Range": f"{MIB}-{len(data) - 1}"},
            )
    already = largest_upload_file(server.data_dir)

    with ThreadPoolExecutor(max_workers=1) as pool:
        pending = send_in_background(pool, server.url, request)
        wait_until(
            lambda: largest_upload_file(server.data_dir) >= already + 2 * MIB,
            10,
            "the server to write part of the body",
        )
        kill_under(server, body, pending)
    server.start()

    assert_blob_absent(server, repository, digest)
    with connect(server.url) as client:
        if mode == "monolithic":
            retried = push_monolithic(client, repository, data)
        else:
            retried = push_chunked(client, repository, data, 2 * MIB)
    assert retried.status_code == 201, describe(retried)
    assert retried.headers["docker-content-digest"] == digest
    assert_blob_served(server, repository, data)


def test_session_cut_by_a_kill_resumes_from_its_committed_range(
    crash_server: RegistryServer,
) -> None:
    server = crash_server
    repository = "crash/resume"
    data = os.urandom(8 * MIB)
    with connect(server.url) as client:
        started = start_upload(client, repository)
        first = patch_chunk(client, started.headers["location"], data[:MIB], 0)
        assert first.status_code == 202, describe(first)
    location = first.headers["location"]
    session_file = server.data_dir / "uploads" / started.headers["docker-upload-uuid"]
    # Different bytes from the ones that will finally be sent for this range:
    # if they survived the crash, the digest would show it.
    body = StalledBody(os.urandom(len(data) - MIB), 4 * MIB)
    with connect(server.url) as client:
        request = client.build_request(
            "PATCH",
            location,
            content=body,
            headers={"Content-Range": f"{MIB}-{len(data) - 1}"},
        )

    with ThreadPoolExecutor(max_workers=1) as pool:
        pending = send_in_background(pool, server.url, request)
        wait_until(
            lambda: session_file.stat().st_size >= 3 * MIB,
            10,
            "the server to write part of the second chunk",
        )
        kill_under(server, body, pending)
    server.start()

    with connect(server.url) as client:
        status = client.get(location)
        assert status.status_code == 204, describe(status)
        assert status.headers["range"] == f"0-{MIB - 1}"
        resumed = patch_chunk(client, location, data[MIB : 4 * MIB], MIB)
        assert resumed.status_code == 202, describe(resumed)
        finished = finish_upload(
            client,
            resumed.headers["location"],
            sha256_digest(data),
            data[4 * MIB :],
            4 * MIB,
        )
        assert finished.status_code == 201, describe(finished)
    assert_blob_served(server, repository, data)


def test_chunked_session_spans_a_graceful_restart(
    crash_server: RegistryServer,
) -> None:
    server = crash_server
    repository = "crash/graceful"
    data = os.urandom(6 * CHUNK + 777)
    digest = sha256_digest(data)
    with connect(server.url) as client:
        location = start_upload(client, repository).headers["location"]
        for offset in range(0, 3 * CHUNK, CHUNK):
            response = patch_chunk(
                client, location, data[offset : offset + CHUNK], offset
            )
            assert response.status_code == 202, describe(response)
            location = response.headers["location"]

    server.stop()
    server.start()

    with connect(server.url) as client:
        status = client.get(location)
        assert status.status_code == 204, describe(status)
        assert status.headers["range"] == f"0-{3 * CHUNK - 1}"
        for offset in range(3 * CHUNK, 6 * CHUNK, CHUNK):
            response = patch_chunk(
                client, location, data[offset : offset + CHUNK], offset
            )
            assert response.status_code == 202, describe(response)
            location = response.headers["location"]
        finished = finish_upload(client, location, digest, data[6 * CHUNK :], 6 * CHUNK)
        assert finished.status_code == 201, describe(finished)
        assert finished.headers["docker-content-digest"] == digest
        head = client.head(f"/v2/{repository}/blobs/{digest}")
        assert head.status_code == 200, describe(head)
        assert head.headers["content-length"] == str(len(data))
    assert_blob_served(server, repository, data)


def test_kill_during_manifest_push_stores_nothing_and_a_retry_succeeds(
    crash_server: RegistryServer,
) -> None:
    server = crash_server
    repository = "crash/manifest"
    config, layer = os.urandom(256), os.urandom(64 * 1024)
    manifest = image_manifest(config, [layer], {"padding": "x" * 4096})
    digest = sha256_digest(manifest)
    with connect(server.url) as client:
        for blob in (config, layer):
            pushed = push_monolithic(client, repository, blob)
            assert pushed.status_code == 201, describe(pushed)
        body = StalledBody(manifest, len(manifest) // 2)
        request = client.build_request(
            "PUT",
            f"/v2/{repository}/manifests/v1",
            content=body,
            headers={"Content-Type": "application/vnd.oci.image.manifest.v1+json"},
        )

    with ThreadPoolExecutor(max_workers=1) as pool:
        pending = send_in_background(pool, server.url, request)
        assert body.sent.wait(timeout=10), "the first half was never sent"
        # Give the server time to take the request and read what was sent.
        time.sleep(0.5)
        kill_under(server, body, pending)
    server.start()

    with connect(server.url) as client:
        assert fetch_manifest(client, repository, "v1") is None
        assert fetch_manifest(client, repository, digest) is None
        listed = client.get(f"/v2/{repository}/tags/list")
        assert_outcome(listed, [200], {404: "NAME_UNKNOWN"})
        if listed.status_code == 200:
            assert "v1" not in (listed.json().get("tags") or [])

        retried = put_manifest(client, repository, "v1", manifest)
        assert retried.status_code == 201, describe(retried)
        assert retried.headers["docker-content-digest"] == digest
        assert fetch_manifest(client, repository, "v1") == manifest
        assert fetch_manifest(client, repository, digest) == manifest


@dataclass
class PushLedger:
    """What the pushers tried and what the registry acknowledged."""

    lock: threading.Lock = field(default_factory=threading.Lock)
    blobs: dict[str, tuple[str, int]] = field(default_factory=dict)
    acked_blobs: set[str] = field(default_factory=set)
    manifests: dict[str, tuple[str, bytes, str]] = field(default_factory=dict)
    acked_manifests: set[str] = field(default_factory=set)

    def blob_tried(self, repository: str, digest: str, size: int) -> None:
        with self.lock:
            self.blobs[digest] = (repository, size)

    def blob_acked(self, digest: str) -> None:
        with self.lock:
            self.acked_blobs.add(digest)

    def manifest_tried(
        self, repository: str, tag: str, body: bytes, layer: str
    ) -> None:
        with self.lock:
            self.manifests[tag] = (repository, body, layer)

    def manifest_acked(self, tag: str) -> None:
        with self.lock:
            self.acked_manifests.add(tag)


MAX_PUSHES_PER_ROUND = 30
PUSHERS = 6
ROUND_SECONDS = (0.8, 0.5, 1.1)


def keep_pushing(
    url: str,
    repository: str,
    config: bytes,
    name: str,
    stop: threading.Event,
    ledger: PushLedger,
) -> None:
    """Push blobs and manifests until stopped or the server dies under us."""
    rng = random.Random(name)
    with connect(url) as client:
        for number in range(MAX_PUSHES_PER_ROUND):
            if stop.is_set():
                return
            layer = rng.randbytes(rng.randint(8 * 1024, 512 * 1024))
            digest = sha256_digest(layer)
            tag = f"{name}-{number}"
            manifest = image_manifest(config, [layer], {"tag": tag})
            ledger.blob_tried(repository, digest, len(layer))
            try:
                if number % 2:
                    response = push_chunked(client, repository, layer, 128 * 1024)
                else:
                    response = push_monolithic(client, repository, layer)
                assert response.status_code == 201, describe(response)
                ledger.blob_acked(digest)
                ledger.manifest_tried(repository, tag, manifest, digest)
                response = put_manifest(client, repository, tag, manifest)
                assert response.status_code == 201, describe(response)
                ledger.manifest_acked(tag)
            except httpx.TransportError:
                return


def test_repeated_kills_during_concurrent_pushes_keep_every_blob_true(
    crash_two_worker_server: RegistryServer,
) -> None:
    server = crash_two_worker_server
    repositories = ["crash/storm-a", "crash/storm-b"]
    config = os.urandom(300)
    with connect(server.url) as client:
        for repository in repositories:
            pushed = push_monolithic(client, repository, config)
            assert pushed.status_code == 201, describe(pushed)
    ledger = PushLedger()

    for round_number, seconds in enumerate(ROUND_SECONDS):
        stop = threading.Event()
        with ThreadPoolExecutor(max_workers=PUSHERS) as pool:
            futures = [
                pool.submit(
                    keep_pushing,
                    server.url,
                    repositories[index % 2],
                    config,
                    f"r{round_number}-p{index}",
                    stop,
                    ledger,
                )
                for index in range(PUSHERS)
            ]
            time.sleep(seconds)
            server.kill()
            stop.set()
            for future in futures:
                future.result(timeout=60)
        server.start()

    assert ledger.acked_blobs, "no push completed before the kills"
    with connect(server.url) as client:
        check_blobs(client, ledger)
        check_manifests(client, ledger)
    check_blob_files(server.data_dir)


def check_blobs(client: httpx.Client, ledger: PushLedger) -> None:
    for digest, (repository, size) in ledger.blobs.items():
        head = client.head(f"/v2/{repository}/blobs/{digest}")
        assert head.status_code in (200, 404), describe(head)
        if digest in ledger.acked_blobs:
            assert head.status_code == 200, f"acknowledged blob lost: {describe(head)}"
        if head.status_code == 200:
            assert head.headers["content-length"] == str(size), describe(head)
            content = fetch_blob(client, repository, digest)
            assert content is not None and sha256_digest(content) == digest, (
                f"{digest} served with other content"
            )


def check_manifests(client: httpx.Client, ledger: PushLedger) -> None:
    for tag, (repository, body, layer) in ledger.manifests.items():
        stored = fetch_manifest(client, repository, tag)
        if tag in ledger.acked_manifests:
            assert stored == body, f"acknowledged manifest {tag} lost or changed"
        if stored is not None:
            assert stored == body, f"manifest {tag} has other bytes"
            content = fetch_blob(client, repository, layer)
            assert content is not None and sha256_digest(content) == layer


def check_blob_files(data_dir: Path) -> None:
    """Every file under blobs/ holds exactly the bytes its name promises."""
    files = [path for path in (data_dir / "blobs").rglob("*") if path.is_file()]
    assert files
    for path in files:
        algorithm = path.parent.parent.name
        actual = hashlib.new(algorithm, path.read_bytes()).hexdigest()
        assert actual == path.name, f"{path} holds {algorithm}:{actual}"
