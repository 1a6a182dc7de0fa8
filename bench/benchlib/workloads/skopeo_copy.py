"""``skopeo copy`` of a multi-layer image into the registry and back out.

In: from an OCI layout folder to the registry; the registry must then serve
the very manifest bytes, and every blob with its size. Out: from the registry
to a fresh OCI layout folder; it must hold the same manifest and intact blobs.
Every run copies a new image, so nothing is found already in place.
"""

from __future__ import annotations

from pathlib import Path

from tests.support.oci_layout import Image

from benchlib import BenchError
from benchlib.measure import Measurement, fill, guarded
from benchlib.rows import SKOPEO_IN, SKOPEO_OUT
from benchlib.servers import RunningServer
from benchlib.skopeo import Skopeo, check_layout_blob, layout_manifest
from benchlib.workloads.base import (
    RunFiles,
    ServerTiming,
    Settings,
    Workload,
    timed_on,
)

TAG = "latest"


class SkopeoCopies(Workload):
    """One copy in and one copy out per run and server."""

    name = "skopeo"
    rows = (SKOPEO_IN, SKOPEO_OUT)

    def __init__(self, settings: Settings, skopeo: Skopeo) -> None:
        super().__init__(settings)
        self.skopeo = skopeo

    def measure(self, server: RunningServer, files: RunFiles) -> list[Measurement]:
        root, image = files.image()
        repo = f"bench/skopeo-{files.run}"
        remote = _remote(server, repo)
        copied_in = guarded(
            Measurement(server.name, SKOPEO_IN, files.run),
            lambda sample: self._copy_in(server, sample, root, repo, image),
        )
        if copied_in.error is not None:
            skipped = Measurement(server.name, SKOPEO_OUT, files.run)
            skipped.error = "skipped: the copy in failed"
            return [copied_in, skipped]
        out = files.folder / f"out-{server.name.lower()}"
        copied_out = guarded(
            Measurement(server.name, SKOPEO_OUT, files.run),
            lambda sample: self._copy_out(server, sample, remote, out, image),
        )
        return [copied_in, copied_out]

    def _copy_in(
        self,
        server: RunningServer,
        sample: Measurement,
        root: Path,
        repo: str,
        image: Image,
    ) -> Measurement:
        cost = self._timed(server, sample, f"oci:{root}:{TAG}", _remote(server, repo))
        with server.client() as client:
            if client.get_manifest(repo, TAG) != image.manifest_bytes:
                raise BenchError("the registry serves other manifest bytes than copied")
            for blob in (image.config, *image.layers):
                client.check_blob(repo, blob.digest, blob.size)
        return fill(sample, cost.timing.seconds, cost.timing)

    def _copy_out(
        self,
        server: RunningServer,
        sample: Measurement,
        remote: str,
        out: Path,
        image: Image,
    ) -> Measurement:
        cost = self._timed(server, sample, remote, f"oci:{out}:{TAG}")
        digest, manifest = layout_manifest(out, TAG)
        if digest != image.digest or manifest != image.manifest_bytes:
            raise BenchError(
                f"the copy out holds manifest {digest}, not {image.digest}"
            )
        for blob in (image.config, *image.layers):
            check_layout_blob(out, blob.digest, blob.size)
        return fill(sample, cost.timing.seconds, cost.timing)

    def _timed(
        self, server: RunningServer, sample: Measurement, source: str, target: str
    ) -> ServerTiming:
        client_cpu, cost = timed_on(
            server, lambda: self.skopeo.copy(source, target), self.settings.quiet
        )
        seconds = max(cost.timing.seconds, 1e-9)
        sample.details = {
            "client": "skopeo",
            "client_cores": client_cpu / seconds,
            "server_cores": cost.server_cores,
        }
        return cost


def _remote(server: RunningServer, repo: str) -> str:
    return f"docker://{server.base_url.removeprefix('http://')}/{repo}:{TAG}"
