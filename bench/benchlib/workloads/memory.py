"""A 1 GiB blob pushed and pulled once, so the memory peaks include a big
transfer. The peaks themselves come from watching each server's processes for
the whole benchmark (see compare.py); this records the transfer's speed.
"""

from __future__ import annotations

from benchlib.blobs import MIB
from benchlib.measure import Measurement, guarded
from benchlib.registry import Pulled, RegistryClient
from benchlib.rows import BIG_TRANSFER
from benchlib.servers import RunningServer
from benchlib.workloads.base import RunFiles, Workload, run_clients

BIG_BLOB_MIB = 1024
BIG_REPO = "bench/big"


class BigTransfer(Workload):
    """Push, then pull, one 1 GiB blob, in the first run only."""

    name = "memory"
    rows = (BIG_TRANSFER,)
    first_run_only = True

    def measure(self, server: RunningServer, files: RunFiles) -> list[Measurement]:
        blob = files.blob("big", BIG_BLOB_MIB)
        quiet = self.settings.quiet

        def push(client: RegistryClient, _: int) -> None:
            client.push_blob_file(BIG_REPO, blob)

        def pull(client: RegistryClient, _: int) -> Pulled:
            return client.pull_blob(BIG_REPO, blob.digest)

        def action(sample: Measurement) -> Measurement:
            pushed = run_clients(sample, server, push, [0], 1, quiet)
            pull_sample = Measurement(server.name, BIG_TRANSFER, files.run)
            pulled = run_clients(pull_sample, server, pull, [0], 1, quiet)
            pulled.results[0].check(blob)
            sample.details["pull_mib_s"] = blob.size / MIB / pulled.seconds
            sample.value = blob.size / MIB / pushed.seconds
            return sample

        return [guarded(Measurement(server.name, BIG_TRANSFER, files.run), action)]
