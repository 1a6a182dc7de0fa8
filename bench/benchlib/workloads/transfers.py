"""Blob transfers: monolithic and chunked pushes, pulls by one and many clients.

Each push is checked (201 with the blob's digest), then read back and hashed
untimed; each pull hashes every byte it receives.
"""

from __future__ import annotations

from collections.abc import Callable

from benchlib.blobs import MIB, BlobFile
from benchlib.measure import FAILURES, Measurement, guarded
from benchlib.registry import Pulled, RegistryClient
from benchlib.rows import PULL_MANY, PULL_ONE, PUSH_CHUNKED, PUSH_MONO
from benchlib.servers import RunningServer
from benchlib.workloads.base import RunFiles, Workload, run_clients

BLOB_REPO = "bench/blobs"
# The blob both pushed monolithically and pulled, so a pull follows a push.
PULLED_BLOB = "transfer"

# Blob GETs on plain sockets, hashed on a second thread (benchlib/download.py).
PULL_CLIENT = "socket GET + hashing thread"


class Pushes(Workload):
    """One blob pushed in one PUT, another in chunks, each by one client."""

    name = "push"
    rows = (PUSH_MONO, PUSH_CHUNKED)

    def measure(self, server: RunningServer, files: RunFiles) -> list[Measurement]:
        mono = files.blob(PULLED_BLOB)
        chunked = files.blob("chunked")
        chunk = self.settings.sizes.chunk_mib * MIB

        def monolithic(client: RegistryClient, blob: BlobFile) -> None:
            client.push_blob_file(BLOB_REPO, blob)

        def in_chunks(client: RegistryClient, blob: BlobFile) -> None:
            client.push_blob_chunked(BLOB_REPO, blob, chunk)

        return [
            self._push(server, PUSH_MONO, files.run, mono, monolithic),
            self._push(server, PUSH_CHUNKED, files.run, chunked, in_chunks),
        ]

    def _push(
        self,
        server: RunningServer,
        row: str,
        run: int,
        blob: BlobFile,
        push: Callable[[RegistryClient, BlobFile], None],
    ) -> Measurement:
        def action(sample: Measurement) -> Measurement:
            done = run_clients(sample, server, push, [blob], 1, self.settings.quiet)
            with server.client() as client:
                client.pull_blob(BLOB_REPO, blob.digest).check(blob)
            sample.value = blob.size / MIB / done.seconds
            return sample

        return guarded(Measurement(server.name, row, run), action)


class Pulls(Workload):
    """The pushed blob downloaded by one client, then by several at once.

    Each client downloads it `pull_rounds` times in a row: at loopback speed
    one 256 MiB download lasts a quarter of a second, too short a sample on a
    shared machine.
    """

    name = "pull"
    rows = (PULL_ONE, PULL_MANY)

    def measure(self, server: RunningServer, files: RunFiles) -> list[Measurement]:
        blob = files.blob(PULLED_BLOB)
        many = self.settings.sizes.pull_clients
        samples = [
            Measurement(server.name, PULL_ONE, files.run),
            Measurement(server.name, PULL_MANY, files.run),
        ]
        try:
            _ensure_pushed(server, blob)
        except FAILURES as error:
            for sample in samples:
                sample.error = f"pushing the blob to pull failed: {error}"
            return samples
        return [
            guarded(samples[0], lambda sample: self._pull(server, sample, blob, 1)),
            guarded(samples[1], lambda sample: self._pull(server, sample, blob, many)),
        ]

    def _pull(
        self, server: RunningServer, sample: Measurement, blob: BlobFile, clients: int
    ) -> Measurement:
        def pull(client: RegistryClient, digest: str) -> Pulled:
            return client.pull_blob(BLOB_REPO, digest)

        items = [blob.digest] * (clients * self.settings.sizes.pull_rounds)
        done = run_clients(
            sample, server, pull, items, clients, self.settings.quiet, PULL_CLIENT
        )
        for pulled in done.results:
            pulled.check(blob)
        sample.value = len(items) * blob.size / MIB / done.seconds
        return sample


def _ensure_pushed(server: RunningServer, blob: BlobFile) -> None:
    """Push ``blob`` untimed unless the push workload already did."""
    with server.client() as client:
        if client.head_blob(BLOB_REPO, blob.digest) != 200:
            client.push_blob_file(BLOB_REPO, blob)
