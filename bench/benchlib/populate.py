"""Fill a registry with many tags or repositories, through its HTTP API.

Every entry is the same small image without layers: its config blob is
pushed once, then each tag is one manifest PUT, and each further repository
a cross-repository mount of the config plus one manifest PUT. That is what a
registry sees when CI tags every build of an image.
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from typing import TypeVar

from benchlib.blobs import blob_digest
from benchlib.parallel import Clients, Job, run_parallel
from benchlib.registry import (
    OCI_CONFIG,
    RegistryClient,
    descriptor,
    image_config,
    image_manifest,
)
from benchlib.servers import RunningServer

DEFAULT_WRITERS = 16
T = TypeVar("T")


def push_config_only_image(client: RegistryClient, repo: str) -> bytes:
    """Push a config blob to ``repo``; returns a manifest of it without layers."""
    config = image_config([])
    digest = client.push_blob_bytes(repo, config)
    return image_manifest(descriptor(OCI_CONFIG, digest, len(config)), [])


def config_digest(manifest: bytes) -> str:
    """The config digest of a manifest made by ``push_config_only_image``."""
    return str(json.loads(manifest)["config"]["digest"])


def tag_many(
    server: RunningServer,
    repo: str,
    manifest: bytes,
    tags: Sequence[str],
    writers: int = DEFAULT_WRITERS,
    batches: int = 1,
    per_put: int = 1,
) -> None:
    """Tag ``manifest`` with every tag, with ``writers`` concurrent clients.

    One PUT per tag, or with ``per_put`` above 1, one PUT by digest carrying
    that many ``?tag=`` parameters, if the server honours them (Distribution
    2.8.2 does not: it then gets one PUT per tag). With several ``batches``,
    prints progress after each.
    """
    if per_put > 1 and tags and _honours_tag_parameters(server, repo, manifest, tags):
        starts = range(0, len(tags), per_put)
        groups = [tags[start : start + per_put] for start in starts]
        digest = blob_digest(manifest)

        def put_group(client: RegistryClient, group: Sequence[str]) -> None:
            client.put_manifest(repo, digest, manifest, group)

        _in_batches(server, put_group, groups, writers, batches, "tag groups")
        return

    def put(client: RegistryClient, tag: str) -> None:
        client.put_manifest(repo, tag, manifest)

    _in_batches(server, put, tags, writers, batches, "tags")


def _honours_tag_parameters(
    server: RunningServer, repo: str, manifest: bytes, tags: Sequence[str]
) -> bool:
    """Push by digest with ``?tag=`` for the first tag; is that tag there?"""
    with server.client() as client:
        client.put_manifest(repo, blob_digest(manifest), manifest, tags[:1])
        status, _ = client.head_manifest(repo, tags[0])
    if status != 200:
        print(f"{server.name} ignores ?tag= on manifest PUT: one PUT per tag")
    return status == 200


def make_repositories(
    server: RunningServer,
    source: str,
    manifest: bytes,
    repos: Sequence[str],
    writers: int = DEFAULT_WRITERS,
    batches: int = 1,
) -> None:
    """Create every repository of ``repos`` holding ``manifest`` as ``latest``.

    The manifest's config must already be in ``source``; it is mounted from
    there, so no blob bytes travel.
    """
    digest = config_digest(manifest)

    def create(client: RegistryClient, repo: str) -> None:
        client.mount_blob(repo, digest, source)
        client.put_manifest(repo, "latest", manifest)

    _in_batches(server, create, repos, writers, batches, "repositories")


def _in_batches(
    server: RunningServer,
    job: Job[T, None],
    items: Sequence[T],
    writers: int,
    batches: int,
    what: str,
) -> None:
    where = Clients(server.port, writers, server.authorization)
    size = max(1, -(-len(items) // batches))
    started = time.monotonic()
    for start in range(0, len(items), size):
        run_parallel(job, items[start : start + size], where).check(what)
        if batches > 1:
            done = min(start + size, len(items))
            rate = done / (time.monotonic() - started)
            print(
                f"  {server.name}: {done:,} of {len(items):,} {what} ({rate:,.0f}/s)",
                flush=True,
            )
