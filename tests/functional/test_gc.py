"""`dockyard gc` against a running registry: what goes, what stays, and races.

Each test runs its own registry (SQLite and PostgreSQL), because a collection
with no grace period would take other tests' content from a shared one.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import subprocess
import sys
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from tests.support.postgres import PostgresCluster
from tests.support.registry_client import (
    OCI_INDEX,
    OCI_MANIFEST,
    Blob,
    Manifest,
    RegistryClient,
    config_blob,
    image_index,
    image_manifest,
    random_blob,
)
from tests.support.server import RegistryServer

STRESS_SECONDS = 20.0
ACCEPT = ", ".join(
    [
        OCI_MANIFEST,
        OCI_INDEX,
        "application/vnd.docker.distribution.manifest.v2+json",
        "application/vnd.docker.distribution.manifest.list.v2+json",
    ]
)


GC_COMMAND = [sys.executable, "-m", "dockyard", "gc"]


@pytest.fixture(params=["sqlite", "postgresql"])
def server(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[RegistryServer]:
    env: dict[str, str] = {}
    if request.param == "postgresql":
        cluster: PostgresCluster = request.getfixturevalue("postgres")
        env["DOCKYARD_DATABASE_URL"] = cluster.create_database(
            f"gc_{uuid.uuid4().hex[:8]}"
        )
    with RegistryServer(tmp_path / "data", env=env) as running:
        yield running


@pytest.fixture
def http(server: RegistryServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.url, timeout=30.0) as client:
        yield client


def run_gc(server: RegistryServer, *args: str) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        [*GC_COMMAND, "--data-dir", str(server.data_dir), *args],
        env={**os.environ, **server.env},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return result


def blob_file(server: RegistryServer, digest: str) -> Path:
    algorithm, hex_digest = digest.split(":")
    return server.data_dir / "blobs" / algorithm / hex_digest[:2] / hex_digest


def pull(http: httpx.Client, repository: str, reference: str) -> list[str]:
    """Fetch a manifest and everything under it, checking every digest.

    Returns the problems found (empty when the image pulls completely).
    """
    answer = http.get(
        f"/v2/{repository}/manifests/{reference}", headers={"Accept": ACCEPT}
    )
    if answer.status_code != 200:
        return [f"manifest {reference}: {answer.status_code}"]
    digest = "sha256:" + hashlib.sha256(answer.content).hexdigest()
    if answer.headers.get("Docker-Content-Digest") != digest:
        return [f"manifest {reference}: digest mismatch"]
    document = json.loads(answer.content)

    problems: list[str] = []
    for child in document.get("manifests", []):
        problems += pull(http, repository, child["digest"])
    blobs = [document["config"]] if "config" in document else []
    for descriptor in [*blobs, *document.get("layers", [])]:
        got = http.get(f"/v2/{repository}/blobs/{descriptor['digest']}")
        actual = "sha256:" + hashlib.sha256(got.content).hexdigest()
        if got.status_code != 200 or actual != descriptor["digest"]:
            problems.append(f"blob {descriptor['digest']}: {got.status_code}")
    return problems


def test_gc_collects_unreferenced_and_keeps_every_tagged_image(
    server: RegistryServer, http: httpx.Client
) -> None:
    oci = RegistryClient(http)
    repository = "gc/app"
    kept = oci.push_image(repository, "keep")
    signature = oci.push_image(repository, subject=kept, artifact_type="x/sig")
    children = [oci.push_image(repository) for _ in range(2)]
    top = image_index(children)
    oci.push_manifest(repository, "multi", top)

    shared, shared_config = random_blob(), config_blob()
    config, own = config_blob(), random_blob()
    for blob in (shared, shared_config, config, own):
        oci.push_blob(repository, blob)
    oci.push_manifest(repository, "shared", image_manifest(shared_config, [shared]))
    dropped = image_manifest(config, [shared, own])
    oci.push_manifest(repository, "drop", dropped)
    assert http.delete(f"/v2/{repository}/manifests/drop").status_code == 202
    by_digest = oci.push_image(repository)
    deleted = http.delete(f"/v2/{repository}/manifests/{by_digest.digest}")
    assert deleted.status_code == 202
    assert blob_file(server, own.digest).exists()

    dry = run_gc(server, "--dry-run", "--grace", "0", "--keep-untagged", "0")
    assert f"would delete manifest {repository}@{dropped.digest}" in dry.stdout
    assert f"would delete blob {own.digest}" in dry.stdout
    assert blob_file(server, own.digest).exists()

    result = run_gc(server, "--grace", "0", "--keep-untagged", "0")
    assert f"deleted manifest {repository}@{dropped.digest}" in result.stdout
    assert "freed" in result.stdout
    assert "gc: blobs:" in result.stderr
    for gone in (own, config):
        assert not blob_file(server, gone.digest).exists()
        assert http.head(f"/v2/{repository}/blobs/{gone.digest}").status_code == 404
    assert http.head(f"/v2/{repository}/manifests/{dropped.digest}").status_code == 404
    assert blob_file(server, shared.digest).exists()

    for reference in ("keep", "multi", "shared", signature.digest):
        assert pull(http, repository, reference) == [], reference
    referrers = http.get(f"/v2/{repository}/referrers/{kept.digest}").json()
    assert [m["digest"] for m in referrers["manifests"]] == [signature.digest]
    assert not list((server.data_dir / "trash").glob("sha256:*"))

    again = run_gc(server, "--grace", "0", "--keep-untagged", "0")
    assert "deleted 0 manifests, 0 blob links and 0 blobs" in again.stdout


def test_fresh_blob_survives_the_default_grace_period(
    server: RegistryServer, http: httpx.Client
) -> None:
    oci = RegistryClient(http)
    repository = "gc/fresh"
    layer = random_blob()
    oci.push_blob(repository, layer)
    untagged = oci.push_image(repository)

    result = run_gc(server)
    assert "deleted 0 manifests, 0 blob links and 0 blobs" in result.stdout
    assert blob_file(server, layer.digest).exists()
    assert http.head(f"/v2/{repository}/blobs/{layer.digest}").status_code == 200
    assert http.head(f"/v2/{repository}/manifests/{untagged.digest}").status_code == 200

    # The manifest can still be pushed after the collection.
    oci.push_manifest(repository, "late", image_manifest(layer, [layer]))
    assert pull(http, repository, "late") == []


def test_gc_in_batches_smaller_than_the_garbage(
    server: RegistryServer, http: httpx.Client
) -> None:
    oci = RegistryClient(http)
    repository = "gc/batches"
    kept = oci.push_image(repository, "keep")
    untagged = [oci.push_image(repository) for _ in range(12)]

    result = run_gc(server, "--grace", "0", "--keep-untagged", "0", "--batch-size", "5")
    assert "deleted 12 manifests, 24 blob links and 24 blobs" in result.stdout
    assert "gc: blobs: 24/24" in result.stderr
    for manifest in untagged:
        assert (
            http.head(f"/v2/{repository}/manifests/{manifest.digest}").status_code
            == 404
        )
        document = json.loads(manifest.content)
        for blob in [document["config"], *document["layers"]]:
            assert not blob_file(server, blob["digest"]).exists()
    assert pull(http, repository, "keep") == []
    assert pull(http, repository, kept.digest) == []


class _Stress:
    """Pushes, tags, deletes and pulls in threads, recording every outcome."""

    REPOSITORIES = ("stress/a", "stress/b")
    TAGS = tuple(f"t{n}" for n in range(6))

    def __init__(self, server: RegistryServer) -> None:
        self.server = server
        self.stop = threading.Event()
        self.lock = threading.Lock()
        self.outcomes: Counter[str] = Counter()
        self.failures: list[str] = []

    def record(self, what: str, answer: httpx.Response | None = None) -> None:
        with self.lock:
            self.outcomes[what] += 1
            if answer is not None and answer.status_code >= 500:
                self.failures.append(
                    f"{answer.request.method} {answer.request.url}: "
                    f"{answer.status_code} {answer.text[:300]}"
                )

    def client(self) -> httpx.Client:
        return httpx.Client(base_url=self.server.url, timeout=60.0)

    def pusher(self, seed: int) -> None:
        rng = random.Random(seed)
        with self.client() as http:
            while not self.stop.is_set():
                repository = rng.choice(self.REPOSITORIES)
                if rng.random() < 0.2:
                    self._push_index(http, repository, rng.choice(self.TAGS))
                else:
                    self._push_image(http, repository, rng.choice(self.TAGS))

    def _push_blobs(self, http: httpx.Client, repository: str, *blobs: Blob) -> bool:
        for blob in blobs:
            answer = http.post(
                f"/v2/{repository}/blobs/uploads/",
                params={"digest": blob.digest},
                content=blob.data,
            )
            self.record(f"blob {answer.status_code}", answer)
            if answer.status_code != 201:
                return False
        return True

    def _put(
        self, http: httpx.Client, repository: str, reference: str, manifest: Manifest
    ) -> bool:
        answer = http.put(
            f"/v2/{repository}/manifests/{reference}",
            content=manifest.content,
            headers={"Content-Type": manifest.media_type},
        )
        if answer.status_code == 201:
            self.record("manifest pushed")
            return True
        codes = [e.get("code") for e in answer.json().get("errors", [])]
        # Blobs or children collected between their push and this one (grace 0).
        clean = {"MANIFEST_BLOB_UNKNOWN", "MANIFEST_UNKNOWN"}
        if answer.status_code in (400, 404) and codes and codes[0] in clean:
            self.record(f"manifest refused {codes[0]}")
        else:
            self.record(f"manifest {answer.status_code} {codes}")
            with self.lock:
                self.failures.append(f"manifest push: {answer.status_code} {codes}")
        return False

    def _push_image(
        self, http: httpx.Client, repository: str, reference: str
    ) -> Manifest | None:
        config, layer = config_blob(), random_blob(2048)
        if not self._push_blobs(http, repository, config, layer):
            return None
        # A slow client: widens the window in which the collector takes them.
        if random.random() < 0.2:
            time.sleep(random.uniform(0.0, 1.0))
        manifest = image_manifest(config, [layer])
        return manifest if self._put(http, repository, reference, manifest) else None

    def _push_index(self, http: httpx.Client, repository: str, tag: str) -> None:
        children = []
        for _ in range(2):
            child = self._push_image(http, repository, "placeholder")
            if child is None:
                return
            children.append(child)
        http.delete(f"/v2/{repository}/manifests/placeholder")
        self._put(http, repository, tag, image_index(children))

    def deleter(self, seed: int) -> None:
        rng = random.Random(seed)
        with self.client() as http:
            while not self.stop.wait(0.2):
                repository = rng.choice(self.REPOSITORIES)
                answer = http.delete(
                    f"/v2/{repository}/manifests/{rng.choice(self.TAGS)}"
                )
                self.record(f"delete {answer.status_code}", answer)

    def puller(self, seed: int) -> None:
        rng = random.Random(seed)
        with self.client() as http:
            while not self.stop.is_set():
                repository = rng.choice(self.REPOSITORIES)
                tags = http.get(f"/v2/{repository}/tags/list")
                self.record(f"tags {tags.status_code}", tags)
                if tags.status_code != 200 or not tags.json().get("tags"):
                    time.sleep(0.05)
                    continue
                problems = pull(http, repository, rng.choice(tags.json()["tags"]))
                # Moved or deleted tags may 404 mid-pull; only 5xx is a failure.
                self.record("pull ok" if not problems else "pull raced")
                with self.lock:
                    self.failures.extend(p for p in problems if ": 5" in p)

    def collector(self) -> None:
        while not self.stop.is_set():
            result = run_gc(self.server, "--grace", "0", "--keep-untagged", "0")
            self.record("gc run")
            for line in result.stdout.splitlines():
                if line.startswith("deleted blob "):
                    self.record("blob collected")
                elif line.startswith("deleted manifest "):
                    self.record("manifest collected")


def test_gc_during_pushes_pulls_and_deletes(server: RegistryServer) -> None:
    stress = _Stress(server)
    errors: list[BaseException] = []

    def guarded(target: Callable[..., None], *args: int) -> threading.Thread:
        def run() -> None:
            try:
                target(*args)
            except BaseException as exc:  # reported after the threads stop
                errors.append(exc)
                stress.stop.set()

        return threading.Thread(target=run)

    threads = [guarded(stress.pusher, n) for n in range(3)]
    threads += [guarded(stress.puller, n) for n in range(2)]
    threads += [guarded(stress.deleter, 7), guarded(stress.collector)]
    for thread in threads:
        thread.start()
    time.sleep(STRESS_SECONDS)
    stress.stop.set()
    for thread in threads:
        thread.join(timeout=120)

    assert not errors, errors
    assert not stress.failures, stress.failures[:10]
    assert stress.outcomes["gc run"] >= 2, stress.outcomes
    assert stress.outcomes["manifest pushed"] > 10, stress.outcomes
    assert stress.outcomes["blob collected"] > 0, stress.outcomes
    print("outcomes:", dict(stress.outcomes))

    run_gc(server, "--grace", "0", "--keep-untagged", "0")
    with httpx.Client(base_url=server.url, timeout=30.0) as http:
        pulled = 0
        for repository in _Stress.REPOSITORIES:
            tags = http.get(f"/v2/{repository}/tags/list").json().get("tags") or []
            for tag in tags:
                assert pull(http, repository, tag) == [], (repository, tag)
                pulled += 1
    assert pulled > 0
    assert "Traceback" not in server.logs()
