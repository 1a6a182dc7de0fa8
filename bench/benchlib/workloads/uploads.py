"""Many small blob pushes by concurrent clients, as when pushing config blobs
and tiny layers of many images at once.

Each push is a POST and a PUT with the body; the PUT must answer 201 with the
blob's digest. Afterwards, untimed, every blob is downloaded and hashed.
"""

from __future__ import annotations

import os

from benchlib import BenchError
from benchlib.blobs import blob_digest
from benchlib.measure import Measurement, guarded
from benchlib.parallel import Clients, run_parallel
from benchlib.registry import Pulled, RegistryClient
from benchlib.rows import SMALL_PUSHES
from benchlib.servers import RunningServer
from benchlib.workloads.base import RunFiles, Workload, run_clients

SMALL_REPO = "bench/small"
SMALL_BLOB_BYTES = 4096


def _push(client: RegistryClient, data: bytes) -> str:
    return client.push_blob_bytes(SMALL_REPO, data)


def _pull(client: RegistryClient, digest: str) -> Pulled:
    return client.pull_blob(SMALL_REPO, digest)


class SmallPushes(Workload):
    """``--small-blobs`` pushes of 4 KiB blobs by ``--small-clients`` clients."""

    name = "small"
    rows = (SMALL_PUSHES,)

    def measure(self, server: RunningServer, files: RunFiles) -> list[Measurement]:
        sizes = self.settings.sizes
        blobs = [os.urandom(SMALL_BLOB_BYTES) for _ in range(sizes.small_blobs)]

        def action(sample: Measurement) -> Measurement:
            done = run_clients(
                sample, server, _push, blobs, sizes.small_clients, self.settings.quiet
            )
            expected = sorted(blob_digest(blob) for blob in blobs)
            if sorted(done.results) != expected:
                raise BenchError("the pushes answered other digests than were sent")
            _check_stored(server, expected, sizes.small_clients)
            sample.value = len(blobs) / done.seconds
            return sample

        return [guarded(Measurement(server.name, SMALL_PUSHES, files.run), action)]


def _check_stored(server: RunningServer, digests: list[str], clients: int) -> None:
    where = Clients(server.port, clients, server.authorization)
    pulled = run_parallel(_pull, digests, where)
    pulled.check("downloads of the small blobs")
    got = sorted(p.digest for p in pulled.results if p.size == SMALL_BLOB_BYTES)
    if got != digests:
        raise BenchError("the small blobs read back differ from those pushed")
