"""Clients racing each other over real HTTP: the registry must stay consistent.

Each race starts its threads at a barrier so that the requests overlap, and
repeats a bounded number of times; every answer must be a success or a clean
error envelope, and what a client reads afterwards must match what was pushed.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor, wait
from functools import partial
from typing import TypeVar

import httpx
import pytest

from tests.robustness.registry_calls import (
    MIB,
    assert_outcome,
    blob_files,
    connect,
    describe,
    error_codes,
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

T = TypeVar("T")
BARRIER_TIMEOUT = 10.0
CHUNK = 256 * 1024
FAST_PATCH_GRACE = 2.0


def race(url: str, calls: list[Callable[[httpx.Client], T]]) -> list[T]:
    """Run each call on its own thread and connection, released together."""
    barrier = threading.Barrier(len(calls), timeout=BARRIER_TIMEOUT)

    def run(call: Callable[[httpx.Client], T]) -> T:
        with connect(url) as client:
            barrier.wait()
            return call(client)

    with ThreadPoolExecutor(max_workers=len(calls)) as pool:
        futures = [pool.submit(run, call) for call in calls]
        return [future.result(timeout=60) for future in futures]


def pusher(
    mode: str, repository: str, data: bytes
) -> Callable[[httpx.Client], httpx.Response]:
    def push(client: httpx.Client) -> httpx.Response:
        if mode == "monolithic":
            return push_monolithic(client, repository, data)
        return push_chunked(client, repository, data, CHUNK)

    return push


def delete(client: httpx.Client, path: str) -> httpx.Response:
    return client.delete(path)


def new_image() -> tuple[bytes, bytes]:
    """A fresh config and layer; tests push them where they need them."""
    return os.urandom(512), os.urandom(64 * 1024)


def push_blobs(client: httpx.Client, repository: str, *blobs: bytes) -> None:
    for blob in blobs:
        response = push_monolithic(client, repository, blob)
        assert response.status_code == 201, describe(response)


@pytest.mark.parametrize(
    "modes",
    [
        ("monolithic", "monolithic"),
        ("chunked", "chunked"),
        ("monolithic", "chunked"),
    ],
    ids=["monolithic", "chunked", "mixed"],
)
def test_same_blob_pushed_at_once_is_stored_once(
    server: RegistryServer, modes: tuple[str, str]
) -> None:
    repository = f"race/same-blob-{'-'.join(modes)}"
    leftovers_before = len(upload_files(server.data_dir))

    for _round in range(4):
        data = os.urandom(MIB + 12345)
        digest = sha256_digest(data)
        responses = race(server.url, [pusher(mode, repository, data) for mode in modes])

        for response in responses:
            assert response.status_code == 201, describe(response)
            assert response.headers["docker-content-digest"] == digest
        assert len(blob_files(server.data_dir, digest)) == 1
        with connect(server.url) as client:
            assert fetch_blob(client, repository, digest) == data

    assert len(upload_files(server.data_dir)) == leftovers_before


def test_same_blob_pushed_to_many_repositories_at_once_is_stored_once(
    server: RegistryServer,
) -> None:
    data = os.urandom(3 * MIB)
    digest = sha256_digest(data)
    repositories = [f"race/fan-out-{index}" for index in range(6)]
    modes = ["monolithic", "chunked"] * 3

    responses = race(
        server.url,
        [
            pusher(mode, name, data)
            for mode, name in zip(modes, repositories, strict=True)
        ],
    )

    for response in responses:
        assert response.status_code == 201, describe(response)
    assert len(blob_files(server.data_dir, digest)) == 1
    with connect(server.url) as client:
        for name in repositories:
            assert fetch_blob(client, name, digest) == data


def test_manifests_pushed_at_once_to_distinct_tags_all_land(
    server: RegistryServer,
) -> None:
    repository = "race/many-tags"
    config, layer = new_image()
    with connect(server.url) as client:
        push_blobs(client, repository, config, layer)
    bodies = {
        f"v{index:02d}": image_manifest(config, [layer], {"index": str(index)})
        for index in range(16)
    }

    def push(tag: str) -> Callable[[httpx.Client], httpx.Response]:
        return lambda client: put_manifest(client, repository, tag, bodies[tag])

    responses = race(server.url, [push(tag) for tag in bodies])

    for response in responses:
        assert response.status_code == 201, describe(response)
    with connect(server.url) as client:
        listed = client.get(f"/v2/{repository}/tags/list")
        assert listed.status_code == 200, describe(listed)
        assert listed.json()["tags"] == sorted(bodies)
        for tag, body in bodies.items():
            assert fetch_manifest(client, repository, tag) == body
            assert fetch_manifest(client, repository, sha256_digest(body)) == body


def test_manifests_pushed_at_once_to_one_tag_leave_it_on_one_of_them(
    server: RegistryServer,
) -> None:
    repository = "race/one-tag"
    config, layer = new_image()
    with connect(server.url) as client:
        push_blobs(client, repository, config, layer)
    bodies = [image_manifest(config, [layer], {"n": str(n)}) for n in range(8)]

    def push(body: bytes) -> Callable[[httpx.Client], httpx.Response]:
        return lambda client: put_manifest(client, repository, "latest", body)

    responses = race(server.url, [push(body) for body in bodies])

    for response in responses:
        assert response.status_code == 201, describe(response)
    with connect(server.url) as client:
        assert fetch_manifest(client, repository, "latest") in bodies
        for body in bodies:
            assert fetch_manifest(client, repository, sha256_digest(body)) == body


def test_manifest_push_racing_its_delete_ends_consistent(
    server: RegistryServer,
) -> None:
    repository = "race/manifest-delete"
    config, layer = new_image()
    with connect(server.url) as client:
        push_blobs(client, repository, config, layer)

    for round_number in range(20):
        tag = f"round-{round_number}"
        body = image_manifest(config, [layer], {"round": tag})
        digest = sha256_digest(body)
        pushed_before = round_number % 2 == 0
        if pushed_before:
            with connect(server.url) as client:
                response = put_manifest(client, repository, tag, body)
                assert response.status_code == 201, describe(response)

        pushed, deleted = race(
            server.url,
            [
                partial(put_manifest, repository=repository, reference=tag, body=body),
                partial(delete, path=f"/v2/{repository}/manifests/{digest}"),
            ],
        )

        assert pushed.status_code == 201, describe(pushed)
        assert_outcome(deleted, [202], {404: "MANIFEST_UNKNOWN"})
        with connect(server.url) as client:
            by_tag = fetch_manifest(client, repository, tag)
            by_digest = fetch_manifest(client, repository, digest)
            assert by_tag == by_digest, f"round {tag}: tag and digest disagree"
            if deleted.status_code == 404:
                # Nothing to delete means the push had not landed yet; it then did.
                assert by_digest == body, f"round {tag}: push lost"
            elif not pushed_before:
                # The delete found the manifest, so it ran after the only push.
                assert by_digest is None, f"round {tag}: delete lost"
            if by_digest is not None:
                assert by_digest == body
                assert fetch_blob(client, repository, sha256_digest(layer)) == layer
                assert fetch_blob(client, repository, sha256_digest(config)) == config


def test_manifest_push_racing_a_blob_delete_never_half_succeeds(
    server: RegistryServer,
) -> None:
    repository = "race/blob-delete"
    config, _layer = new_image()
    with connect(server.url) as client:
        push_blobs(client, repository, config)
    outcomes: list[int] = []

    for round_number in range(20):
        tag = f"round-{round_number}"
        layer = os.urandom(32 * 1024)
        layer_digest = sha256_digest(layer)
        body = image_manifest(config, [layer])
        with connect(server.url) as client:
            push_blobs(client, repository, layer)

        pushed, deleted = race(
            server.url,
            [
                partial(put_manifest, repository=repository, reference=tag, body=body),
                partial(delete, path=f"/v2/{repository}/blobs/{layer_digest}"),
            ],
        )

        assert_outcome(pushed, [201], {400: "MANIFEST_BLOB_UNKNOWN"})
        assert deleted.status_code == 202, describe(deleted)
        outcomes.append(pushed.status_code)
        with connect(server.url) as client:
            assert fetch_blob(client, repository, layer_digest) is None
            stored = fetch_manifest(client, repository, tag)
            if pushed.status_code == 201:
                assert stored == body, f"round {tag}: accepted manifest missing"
            else:
                assert stored is None, f"round {tag}: rejected manifest was tagged"
                assert fetch_manifest(client, repository, sha256_digest(body)) is None
            assert fetch_blob(client, repository, sha256_digest(config)) == config

    # Both orders are legal; the assertion is on each round, not on the mix.
    assert set(outcomes) <= {201, 400}


@pytest.mark.parametrize("server_fixture", ["server", "two_worker_server"])
def test_overlapping_patches_on_one_session_store_only_accepted_bytes(
    request: pytest.FixtureRequest, server_fixture: str
) -> None:
    """A retried PATCH while the first is still in flight (a client timing out).

    A slow PATCH opens the session and stalls; a fast PATCH for the same range
    follows. Exactly one may be accepted, and finishing the session must store
    exactly the accepted bytes: the other request's bytes must never leak in.
    """
    server: RegistryServer = request.getfixturevalue(server_fixture)
    repository = "race/overlapping-patches"
    accepted_candidate, late = os.urandom(2 * MIB), os.urandom(2 * MIB)
    with connect(server.url) as client:
        started = start_upload(client, repository)
    location = started.headers["location"]
    session_file = server.data_dir / "uploads" / started.headers["docker-upload-uuid"]
    release = threading.Event()

    def slow_body() -> Iterator[bytes]:
        yield late[:CHUNK]
        release.wait(timeout=10)
        for offset in range(CHUNK, len(late), CHUNK):
            yield late[offset : offset + CHUNK]

    def slow_patch() -> httpx.Response:
        with connect(server.url) as client:
            return client.patch(
                location,
                content=slow_body(),
                headers={"Content-Range": f"0-{len(late) - 1}"},
            )

    def fast_patch() -> httpx.Response:
        with connect(server.url) as client:
            return patch_chunk(client, location, accepted_candidate, 0)

    with ThreadPoolExecutor(max_workers=2) as pool:
        slow_future = pool.submit(slow_patch)
        wait_until(session_file.exists, 10, "the slow PATCH to open the session")
        fast_future = pool.submit(fast_patch)
        # A registry that serialises writers holds the fast PATCH back until
        # the slow one ends, so the slow one is released after a short wait.
        wait([fast_future], timeout=FAST_PATCH_GRACE)
        release.set()
        fast = fast_future.result(timeout=30)
        slow = slow_future.result(timeout=30)

    assert_outcome(fast, [202], {416: "RANGE_INVALID"})
    assert_outcome(slow, [202], {416: "RANGE_INVALID"})
    accepted = [
        data
        for data, response in ((accepted_candidate, fast), (late, slow))
        if response.status_code == 202
    ]
    assert len(accepted) == 1, f"{describe(fast)} / {describe(slow)}"
    digest = sha256_digest(accepted[0])
    with connect(server.url) as client:
        finished = finish_upload(client, location, digest)
        stored = fetch_blob(client, repository, digest)
    if stored is not None:
        assert sha256_digest(stored) == digest, (
            f"blob {digest} is served with content hashing to "
            f"{sha256_digest(stored)}; the late PATCH's bytes: "
            f"{sha256_digest(stored) == sha256_digest(late)}"
        )
    assert finished.status_code == 201, (
        f"acknowledged chunk was not kept: {describe(finished)}"
    )


def test_chunks_on_fresh_connections_across_two_workers_assemble(
    two_worker_server: RegistryServer,
) -> None:
    repository = "race/two-workers"
    chunk_size = 128 * 1024

    for attempt in range(2):
        data = os.urandom(20 * chunk_size + attempt * 1000)
        digest = sha256_digest(data)
        with connect(two_worker_server.url) as client:
            location = start_upload(client, repository).headers["location"]
        offsets = list(range(0, len(data), chunk_size))

        for offset in offsets[:-1]:
            # A new client per request means a new TCP connection, which the
            # kernel hands to whichever worker accepts it.
            with connect(two_worker_server.url) as client:
                response = patch_chunk(
                    client, location, data[offset : offset + chunk_size], offset
                )
                assert response.status_code == 202, describe(response)
                end = offset + chunk_size - 1
                assert response.headers["range"] == f"0-{end}"
                location = response.headers["location"]
            if offset % (4 * chunk_size):
                continue
            with connect(two_worker_server.url) as client:
                status = client.get(location)
                assert status.status_code == 204, describe(status)
                assert status.headers["range"] == f"0-{end}"

        with connect(two_worker_server.url) as client:
            last = offsets[-1]
            response = finish_upload(client, location, digest, data[last:], last)
            assert response.status_code == 201, describe(response)
        for _probe in range(4):
            with connect(two_worker_server.url) as client:
                assert fetch_blob(client, repository, digest) == data


def test_wrong_digest_is_refused_after_chunks_on_two_workers(
    two_worker_server: RegistryServer,
) -> None:
    repository = "race/two-workers-wrong-digest"
    data = os.urandom(10 * CHUNK)
    claimed = sha256_digest(data[:-1] + bytes([data[-1] ^ 1]))
    with connect(two_worker_server.url) as client:
        location = start_upload(client, repository).headers["location"]
    for offset in range(0, len(data), CHUNK):
        with connect(two_worker_server.url) as client:
            response = patch_chunk(
                client, location, data[offset : offset + CHUNK], offset
            )
            assert response.status_code == 202, describe(response)
            location = response.headers["location"]

    with connect(two_worker_server.url) as client:
        response = finish_upload(client, location, claimed)
        assert response.status_code == 400, describe(response)
        assert "DIGEST_INVALID" in error_codes(response)
        assert fetch_blob(client, repository, claimed) is None
        assert fetch_blob(client, repository, sha256_digest(data)) is None
    assert blob_files(two_worker_server.data_dir, claimed) == []
