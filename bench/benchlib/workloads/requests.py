"""Small requests under concurrent load, and the server CPU each one costs.

Manifest HEAD and GET by tag, HEAD of a blob that is not there, and tags/list
of a repository with many tags. The load comes from hey (or the Python
fallback), which checks every status and Content-Length; before and after the
load one request through httpx checks the content itself: the manifest's
bytes, the full tag list.
"""

from __future__ import annotations

import os
from dataclasses import replace

from benchlib import BenchError
from benchlib.blobs import blob_digest
from benchlib.loadgen import LoadResult, LoadSpec, run_load
from benchlib.measure import Measurement, fill, guarded
from benchlib.populate import push_config_only_image, tag_many
from benchlib.registry import MANIFEST_ACCEPT, RegistryClient
from benchlib.rows import (
    CPU_PER_REQUEST,
    MANIFEST_GET,
    MANIFEST_HEAD,
    MISSING_BLOB_HEAD,
    TAGS_LIST,
)
from benchlib.servers import RunningServer
from benchlib.workloads.base import (
    RunFiles,
    ServerTiming,
    Settings,
    Workload,
    timed_on,
)

IMAGE_REPO = "bench/app"
IMAGE_TAG = "latest"
TAGS_REPO = "bench/tags"
MISSING_BLOB = blob_digest(b"a blob no one pushed")
CPU_CONNECTIONS = 16


class SmallImages:
    """The small image the request workloads ask for, pushed once per server."""

    def __init__(self) -> None:
        self._manifests: dict[str, bytes] = {}

    def manifest(self, server: RunningServer) -> bytes:
        """The manifest of ``IMAGE_REPO:IMAGE_TAG`` on ``server``, pushed if new."""
        if server.name not in self._manifests:
            with server.client() as client:
                body = client.push_small_image(IMAGE_REPO, IMAGE_TAG, os.urandom(4096))
                check_manifest(client, body)
            self._manifests[server.name] = body
        return self._manifests[server.name]


def check_manifest(client: RegistryClient, body: bytes) -> None:
    """GET by tag returns exactly ``body``; HEAD by tag names its digest."""
    if client.get_manifest(IMAGE_REPO, IMAGE_TAG) != body:
        raise BenchError("manifest GET by tag: not the bytes that were pushed")
    status, digest = client.head_manifest(IMAGE_REPO, IMAGE_TAG)
    if status != 200 or digest != blob_digest(body):
        raise BenchError(f"manifest HEAD gave {status} with digest {digest!r}")


def manifest_url(server: RunningServer) -> str:
    return f"{server.base_url}/v2/{IMAGE_REPO}/manifests/{IMAGE_TAG}"


def load_details(load: LoadResult, cost: ServerTiming) -> dict[str, object]:
    """Who made the load and what it and the server cost, for the report."""
    seconds = max(load.seconds, 1e-9)
    return {
        "client": load.tool,
        "client_cores": load.generator_cpu_seconds / seconds,
        "server_cores": cost.server_cpu_seconds / seconds,
        "ok": load.ok,
        "failed": load.failed,
        "statuses": load.statuses,
    }


def load_sample(
    sample: Measurement,
    server: RunningServer,
    spec: LoadSpec,
    settings: Settings,
    length: int | None = None,
) -> Measurement:
    """Warm up, then time ``spec``; the sample's value is good answers a second.

    With ``length``, every answer must carry that Content-Length.
    """
    warmup = replace(spec, duration=settings.warmup)
    load, cost = timed_on(
        server,
        lambda: run_load(spec, settings.loadgen),
        settings.quiet,
        (lambda: run_load(warmup, settings.loadgen)) if settings.warmup > 0 else None,
    )
    sample.details = load_details(load, cost)
    load.check(length)
    return fill(sample, load.requests_per_second, cost.timing)


class ImageWorkload(Workload):
    """A workload that asks for the small image, pushed in preparation."""

    def __init__(self, settings: Settings, images: SmallImages) -> None:
        super().__init__(settings)
        self.images = images

    def prepare(self, server: RunningServer) -> None:
        self.images.manifest(server)


class ManifestRequests(ImageWorkload):
    """HEAD and GET of a manifest by tag."""

    name = "manifest"
    rows = (MANIFEST_HEAD, MANIFEST_GET)

    def measure(self, server: RunningServer, files: RunFiles) -> list[Measurement]:
        return [
            self._one(server, MANIFEST_HEAD, "HEAD", files.run),
            self._one(server, MANIFEST_GET, "GET", files.run),
        ]

    def _one(
        self, server: RunningServer, row: str, method: str, run: int
    ) -> Measurement:
        body = self.images.manifest(server)

        def action(sample: Measurement) -> Measurement:
            spec = LoadSpec(
                manifest_url(server),
                method,
                {"Accept": MANIFEST_ACCEPT},
                self.settings.sizes.connections,
                duration=self.settings.duration,
            )
            load_sample(sample, server, spec, self.settings, len(body))
            with server.client() as client:
                check_manifest(client, body)
            return sample

        return guarded(Measurement(server.name, row, run), action)


class MissingBlobs(ImageWorkload):
    """HEAD of a blob that is not in the repository: a 404 every time.

    The repository exists (the small image is in it); only the blob does not.
    """

    name = "missing"
    rows = (MISSING_BLOB_HEAD,)

    def measure(self, server: RunningServer, files: RunFiles) -> list[Measurement]:
        def action(sample: Measurement) -> Measurement:
            with server.client() as client:
                status = client.head_blob(IMAGE_REPO, MISSING_BLOB)
            if status != 404:
                raise BenchError(f"HEAD of a missing blob gave {status}, not 404")
            spec = LoadSpec(
                f"{server.base_url}/v2/{IMAGE_REPO}/blobs/{MISSING_BLOB}",
                "HEAD",
                {},
                self.settings.sizes.connections,
                duration=self.settings.duration,
                expect=404,
            )
            return load_sample(sample, server, spec, self.settings)

        return [guarded(Measurement(server.name, MISSING_BLOB_HEAD, files.run), action)]


class TagList(Workload):
    """GET tags/list of a repository with ``--tags`` tags, without paging."""

    name = "tags"
    rows = (TAGS_LIST,)

    def __init__(self, settings: Settings) -> None:
        super().__init__(settings)
        count = settings.sizes.tags
        self.expected = [f"t{number:05d}" for number in range(count)]
        self.in_order: dict[str, bool] = {}

    def prepare(self, server: RunningServer) -> None:
        with server.client() as client:
            manifest = push_config_only_image(client, TAGS_REPO)
        tag_many(server, TAGS_REPO, manifest, self.expected)
        self._check(server)

    def measure(self, server: RunningServer, files: RunFiles) -> list[Measurement]:
        def action(sample: Measurement) -> Measurement:
            length = self._check(server)
            spec = LoadSpec(
                f"{server.base_url}/v2/{TAGS_REPO}/tags/list",
                "GET",
                {},
                self.settings.sizes.connections,
                duration=self.settings.duration,
            )
            load_sample(sample, server, spec, self.settings, length)
            self._check(server)
            sample.details["lexical_order"] = self.in_order.get(server.name)
            sample.details["sizes_checked"] = length is not None
            return sample

        return [guarded(Measurement(server.name, TAGS_LIST, files.run), action)]

    def _check(self, server: RunningServer) -> int | None:
        """The list holds every tag once, on one page.

        Returns the answer's Content-Length, which every answer under load
        must then carry; None when the server sends the list in chunks
        (Distribution does for large lists), and hey cannot check sizes.
        """
        with server.client() as client:
            page = client.tags_page(TAGS_REPO)
        if sorted(page.names) != self.expected or page.next_url is not None:
            raise BenchError(
                f"tags/list gave {len(page.names)} tags (next page "
                f"{page.next_url!r}), expected {len(self.expected)}"
            )
        # Distribution 2.8.2 lists tags in storage order, not lexical order.
        self.in_order[server.name] = page.names == self.expected
        return page.content_length


class CpuPerRequest(ImageWorkload):
    """Server CPU time per manifest HEAD, over a fixed number of requests.

    The CPU time of the server's whole process tree, from /proc, does not
    depend on how busy the machine is, unlike a rate.
    """

    name = "cpu"
    rows = (CPU_PER_REQUEST,)

    def measure(self, server: RunningServer, files: RunFiles) -> list[Measurement]:
        body = self.images.manifest(server)
        settings = self.settings

        def action(sample: Measurement) -> Measurement:
            spec = LoadSpec(
                manifest_url(server),
                "HEAD",
                {"Accept": MANIFEST_ACCEPT},
                CPU_CONNECTIONS,
                requests=settings.cpu_requests,
            )
            load, cost = timed_on(
                server, lambda: run_load(spec, settings.loadgen), settings.quiet
            )
            sample.details = load_details(load, cost)
            load.check(len(body))
            per_request = cost.server_cpu_seconds / load.ok * 1e6
            return fill(sample, per_request, cost.timing)

        return [guarded(Measurement(server.name, CPU_PER_REQUEST, files.run), action)]
