"""Garbage collection's reachability rules and guarded deletions, on SQLite."""

from __future__ import annotations

import hashlib
import os
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import anyio
import pytest
import sqlalchemy as sa

from dockyard.metadata import gc_queries, migrate, queries
from dockyard.metadata.engine import create_sync_engine
from dockyard.metadata.executor import create_executor
from dockyard.metadata.tables import repository_blobs
from dockyard.oci.digest import Digest
from dockyard.oci.manifest import Descriptor, ParsedManifest
from dockyard.services.gc import (
    TRANSACTION_TARGET,
    BatchSize,
    GarbageCollector,
    GcOptions,
    Removal,
    plan_repository,
    reachable_manifests,
)
from dockyard.storage.drivers.filesystem import FilesystemDriver
from dockyard.storage.paths import blob_path, trash_path

MANIFEST = "application/vnd.oci.image.manifest.v1+json"
INDEX = "application/vnd.oci.image.index.v1+json"
REPO = "library/app"
FUTURE = 1e12  # a cutoff every row is older than
PAST = 0.0  # a cutoff every row is younger than


def digest_of(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


@pytest.fixture
def database(tmp_path: Path) -> str:
    url = f"sqlite:///{tmp_path / 'metadata.db'}"
    migrate.upgrade(url)
    return url


@pytest.fixture
def conn(database: str) -> Iterator[sa.Connection]:
    engine = create_sync_engine(database)
    with engine.connect() as connection:
        yield connection
        connection.commit()
    engine.dispose()


def blob(conn: sa.Connection, repository: str = REPO) -> str:
    digest = digest_of(os.urandom(16))
    queries.link_blob(conn, repository, digest, 16)
    return digest


def image(
    conn: sa.Connection,
    *layers: str,
    tag: str | None = None,
    subject: str | None = None,
) -> str:
    content = os.urandom(32)
    digest = digest_of(content)
    parsed = ParsedManifest(
        MANIFEST,
        blobs=tuple(Descriptor("layer", layer, 16) for layer in layers),
        subject=subject,
    )
    queries.put_manifest(conn, REPO, digest, parsed, content, [tag] if tag else [])
    return digest


def index(conn: sa.Connection, *children: str, tag: str | None = None) -> str:
    content = os.urandom(32)
    digest = digest_of(content)
    parsed = ParsedManifest(
        INDEX, children=tuple(Descriptor(MANIFEST, child, 32) for child in children)
    )
    queries.put_manifest(conn, REPO, digest, parsed, content, [tag] if tag else [])
    return digest


def graph(conn: sa.Connection) -> gc_queries.RepositoryGraph:
    found = queries.repository_id(conn, REPO)
    assert found is not None
    return gc_queries.load_repository(conn, found, REPO)


def planned(conn: sa.Connection, cutoff: float = FUTURE) -> tuple[set[str], set[str]]:
    plan = plan_repository(graph(conn), cutoff, cutoff)
    return {node.digest for node in plan.manifests}, set(plan.links)


def test_tagged_manifest_and_its_blobs_are_kept(conn: sa.Connection) -> None:
    layer = blob(conn)
    tagged = image(conn, layer, tag="latest")

    assert reachable_manifests(graph(conn)) == {tagged}
    assert planned(conn) == (set(), set())


def test_untagged_manifest_and_its_blobs_go(conn: sa.Connection) -> None:
    layer = blob(conn)
    untagged = image(conn, layer)

    assert planned(conn) == ({untagged}, {layer})


def test_blob_shared_with_a_tagged_image_keeps_its_link(conn: sa.Connection) -> None:
    shared, own = blob(conn), blob(conn)
    image(conn, shared, tag="v1")
    untagged = image(conn, shared, own)

    assert planned(conn) == ({untagged}, {own})


def test_children_of_a_tagged_index_are_reachable(conn: sa.Connection) -> None:
    first, second = image(conn, blob(conn)), image(conn, blob(conn))
    top = index(conn, first, second, tag="multi")

    assert reachable_manifests(graph(conn)) == {top, first, second}
    assert planned(conn) == (set(), set())


def test_untagged_index_goes_before_its_children(conn: sa.Connection) -> None:
    child = image(conn, blob(conn))
    top = index(conn, child)

    plan = plan_repository(graph(conn), FUTURE, FUTURE)
    assert [node.digest for node in plan.manifests] == [top, child]


def test_referrers_of_reachable_manifests_are_kept(conn: sa.Connection) -> None:
    subject = image(conn, blob(conn), tag="signed")
    signature = image(conn, blob(conn), subject=subject)
    signature_of_signature = image(conn, blob(conn), subject=signature)

    assert reachable_manifests(graph(conn)) == {
        subject,
        signature,
        signature_of_signature,
    }


def test_referrers_of_unreachable_manifests_go_after_it(conn: sa.Connection) -> None:
    subject = image(conn, blob(conn))
    signature = image(conn, blob(conn), subject=subject)

    plan = plan_repository(graph(conn), FUTURE, FUTURE)
    assert [node.digest for node in plan.manifests] == [subject, signature]


def test_referrer_of_an_absent_subject_goes(conn: sa.Connection) -> None:
    dangling = image(conn, blob(conn), subject=digest_of(b"never pushed"))

    assert dangling in planned(conn)[0]


def test_young_manifests_and_links_stay(conn: sa.Connection) -> None:
    before = time.time() - 1
    child = image(conn, blob(conn))
    index(conn, child)

    assert planned(conn, cutoff=before) == (set(), set())


def test_young_unreachable_index_keeps_its_old_children(conn: sa.Connection) -> None:
    child = image(conn, blob(conn))
    cutoff = time.time()
    time.sleep(0.01)
    index(conn, child)

    manifests, _ = planned(conn, cutoff=cutoff)
    assert manifests == set()


def test_blob_without_manifest_link_goes_after_grace(conn: sa.Connection) -> None:
    fresh = blob(conn)

    assert planned(conn, cutoff=PAST) == (set(), set())
    assert planned(conn) == (set(), {fresh})


def test_manifest_delete_rechecks_tags(conn: sa.Connection) -> None:
    untagged = image(conn, blob(conn))
    found = queries.repository_id(conn, REPO)
    assert found is not None
    # A tag pushed after the plan was made.
    queries.put_manifest(conn, REPO, untagged, ParsedManifest(MANIFEST), b"", ["late"])

    assert not gc_queries.delete_unreachable_manifest(conn, found, untagged, FUTURE)
    queries.delete_tag(conn, REPO, "late")
    assert gc_queries.delete_unreachable_manifest(conn, found, untagged, FUTURE)
    assert reachable_manifests(graph(conn)) == set()
    assert graph(conn).references == {}


def test_manifest_delete_rechecks_parents(conn: sa.Connection) -> None:
    child = image(conn, blob(conn))
    index(conn, child)
    found = queries.repository_id(conn, REPO)
    assert found is not None

    assert not gc_queries.delete_unreachable_manifest(conn, found, child, FUTURE)


def test_unlink_rechecks_references(conn: sa.Connection) -> None:
    layer = blob(conn)
    found = queries.repository_id(conn, REPO)
    assert found is not None
    # The manifest arrived after the plan said the link was unused.
    image(conn, layer, tag="v1")

    assert not gc_queries.unlink_unreferenced_blob(conn, found, layer, FUTURE)
    assert not gc_queries.unlink_unreferenced_blob(conn, found, blob(conn), PAST)


def test_blob_delete_rechecks_links(conn: sa.Connection) -> None:
    kept = blob(conn)
    orphan = blob(conn)
    conn.execute(sa.delete(repository_blobs).where(repository_blobs.c.digest == orphan))

    assert [row.digest for row in gc_queries.orphan_blobs(conn, FUTURE)] == [orphan]
    assert not gc_queries.delete_orphan_blob(conn, kept, FUTURE)
    assert not gc_queries.delete_orphan_blob(conn, orphan, PAST)
    assert gc_queries.delete_orphan_blob(conn, orphan, FUTURE)
    assert not gc_queries.blob_exists(conn, orphan)


def test_batch_deletions_keep_what_is_used_again(conn: sa.Connection) -> None:
    found = queries.repository_id(conn, REPO) or queries.ensure_repository(conn, REPO)
    layers = [blob(conn) for _ in range(4)]
    untagged = [image(conn, layer) for layer in layers]
    # Since the plan: one manifest was tagged, one layer is used by a new
    # image, and one was mounted into another repository.
    retagged = ParsedManifest(MANIFEST, blobs=(Descriptor("layer", layers[1], 16),))
    queries.put_manifest(conn, REPO, untagged[1], retagged, b"", ["late"])
    image(conn, layers[2], tag="v2")

    manifests = gc_queries.delete_unreachable_manifests(conn, found, untagged, FUTURE)
    assert sorted(manifests) == sorted(set(untagged) - {untagged[1]})
    links = gc_queries.unlink_unreferenced_blobs(conn, found, layers, FUTURE)
    assert sorted(links) == sorted([layers[0], layers[3]])

    queries.link_blob(conn, "other/app", layers[3], 16)
    assert gc_queries.delete_orphan_blobs(conn, layers, FUTURE) == [layers[0]]
    assert gc_queries.existing_blobs(conn, layers) == set(layers[1:])


def test_one_batch_deletes_an_index_below_its_parents(conn: sa.Connection) -> None:
    found = queries.repository_id(conn, REPO) or queries.ensure_repository(conn, REPO)
    child = image(conn, blob(conn))
    top = index(conn, child)
    signature = image(conn, blob(conn), subject=child)
    kept = image(conn, blob(conn))
    index(conn, kept, tag="multi")

    # Children and referrers first: each only goes once what reached it has.
    batch = [signature, child, top, kept]
    deleted = gc_queries.delete_unreachable_manifests(conn, found, batch, FUTURE)
    assert sorted(deleted) == sorted([signature, child, top])
    assert not gc_queries.delete_unreachable_manifests(conn, found, batch, PAST)


def test_batch_size_shrinks_for_slow_transactions_and_grows_back() -> None:
    size = BatchSize(100)
    sizes = [size.size]
    for seconds in (0.0, 0.0, 0.0, TRANSACTION_TARGET * 2, 0.0, 0.0):
        size.record(seconds)
        sizes.append(size.size)
    assert sizes == [16, 32, 64, 100, 50, 100, 100]
    lone = BatchSize(1)
    lone.record(TRANSACTION_TARGET * 2)
    assert lone.size == 1


# -- the collector on a real driver -----------------------------------------


def store_blob(root: Path, conn: sa.Connection, data: bytes) -> str:
    digest = digest_of(data)
    path = root / blob_path(Digest.parse(digest))
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    queries.link_blob(conn, REPO, digest, len(data))
    return digest


def collect(
    database: str,
    root: Path,
    dry_run: bool = False,
    batch_size: int = 256,
    on_removal: Callable[[Removal], None] | None = None,
) -> list[Removal]:
    options = GcOptions(
        dry_run=dry_run, grace=0, keep_untagged=0, batch_size=batch_size
    )
    removed: list[Removal] = []

    def record(removal: Removal) -> None:
        removed.append(removal)
        if on_removal is not None:
            on_removal(removal)

    async def go() -> None:
        executor = create_executor(database)
        storage = FilesystemDriver(root)
        try:
            await GarbageCollector(executor, storage, options, record).run()
        finally:
            await executor.close()

    anyio.run(go)
    return removed


def test_blob_linked_by_another_repository_stays(
    database: str, conn: sa.Connection, tmp_path: Path
) -> None:
    root = tmp_path / "storage"
    shared = store_blob(root, conn, b"shared")
    queries.mount_blob(conn, "other/app", REPO, shared)
    parsed = ParsedManifest(MANIFEST, blobs=(Descriptor("layer", shared, 6),))
    queries.put_manifest(conn, "other/app", digest_of(b"m"), parsed, b"m", ["v1"])
    image(conn, shared)
    conn.commit()

    planned = collect(database, root, dry_run=True)
    assert [(r.kind, r.repository) for r in planned] == [
        ("manifest", REPO),
        ("link", REPO),
    ]
    assert collect(database, root) == planned
    assert (root / blob_path(Digest.parse(shared))).exists()
    assert gc_queries.blob_exists(conn, shared)


def test_collector_removes_files_of_unused_blobs(
    database: str, conn: sa.Connection, tmp_path: Path
) -> None:
    root = tmp_path / "storage"
    kept = store_blob(root, conn, b"kept")
    dropped = store_blob(root, conn, b"dropped")
    image(conn, kept, tag="v1")
    image(conn, dropped)
    conn.commit()

    collect(database, root, dry_run=True)
    assert (root / blob_path(Digest.parse(dropped))).exists()

    collect(database, root)
    assert (root / blob_path(Digest.parse(kept))).exists()
    assert not (root / blob_path(Digest.parse(dropped))).exists()
    assert not gc_queries.blob_exists(conn, dropped)
    assert gc_queries.blob_exists(conn, kept)
    assert not list((root / "trash").glob("sha256:*"))


def test_collector_restores_trash_of_blobs_that_came_back(
    database: str, conn: sa.Connection, tmp_path: Path
) -> None:
    # What an interrupted run leaves when an upload re-linked the blob after the
    # row was deleted and the file moved to trash.
    root = tmp_path / "storage"
    back = store_blob(root, conn, b"came back")
    gone = digest_of(b"gone")
    image(conn, back, tag="v1")
    conn.commit()
    for digest, data in ((back, b"came back"), (gone, b"gone")):
        trash = root / trash_path(digest)
        trash.parent.mkdir(parents=True, exist_ok=True)
        trash.write_bytes(data)
    (root / blob_path(Digest.parse(back))).unlink()

    collect(database, root)
    assert (root / blob_path(Digest.parse(back))).read_bytes() == b"came back"
    assert not (root / trash_path(gone)).exists()
    assert not (root / trash_path(back)).exists()


def test_collector_deletes_more_than_one_batch(
    database: str, conn: sa.Connection, tmp_path: Path
) -> None:
    root = tmp_path / "storage"
    kept = store_blob(root, conn, b"kept")
    image(conn, kept, tag="v1")
    layers = [store_blob(root, conn, f"layer {n}".encode()) for n in range(7)]
    for layer in layers:
        image(conn, layer)
    conn.commit()

    removed = collect(database, root, batch_size=3)
    kinds = [removal.kind for removal in removed]
    assert kinds == ["manifest"] * 7 + ["link"] * 7 + ["blob"] * 7
    assert sorted(r.digest for r in removed if r.kind == "blob") == sorted(layers)
    for layer in layers:
        assert not (root / blob_path(Digest.parse(layer))).exists()
    assert (root / blob_path(Digest.parse(kept))).exists()
    assert gc_queries.existing_blobs(conn, [kept, *layers]) == {kept}
    assert not list((root / "trash").glob("sha256:*"))


def test_collector_keeps_items_used_again_while_it_runs(
    database: str, conn: sa.Connection, tmp_path: Path
) -> None:
    # Batches of two, in digest order: what becomes used again while the first
    # batch of a phase is deleted sits in the last batch, and its re-check keeps
    # it.
    root = tmp_path / "storage"
    layers = sorted(store_blob(root, conn, f"layer {n}".encode()) for n in range(6))
    by_manifest = {image(conn, layer): layer for layer in layers}
    conn.commit()
    tagged = max(by_manifest)
    reused = max(set(layers) - {by_manifest[tagged]})
    orphans = sorted(set(layers) - {by_manifest[tagged], reused})
    engine = create_sync_engine(database)
    seen: set[str] = set()

    def meanwhile(removal: Removal) -> None:
        if removal.kind in seen:
            return
        seen.add(removal.kind)
        with engine.begin() as other:
            if removal.kind == "manifest":
                again = ParsedManifest(MANIFEST)
                queries.put_manifest(other, REPO, tagged, again, b"", ["late"])
            elif removal.kind == "link":
                image(other, reused, tag="new")
            else:
                queries.link_blob(other, "other/app", orphans[-1], 16)

    try:
        removed = collect(database, root, batch_size=2, on_removal=meanwhile)
    finally:
        engine.dispose()

    collected_manifests = {r.digest for r in removed if r.kind == "manifest"}
    assert collected_manifests == set(by_manifest) - {tagged}
    assert {r.digest for r in removed if r.kind == "link"} == set(orphans)
    assert {r.digest for r in removed if r.kind == "blob"} == set(orphans[:-1])
    for layer in (by_manifest[tagged], reused, orphans[-1]):
        assert (root / blob_path(Digest.parse(layer))).exists()
    for layer in orphans[:-1]:
        assert not (root / blob_path(Digest.parse(layer))).exists()
    assert gc_queries.existing_blobs(conn, layers) == set(layers) - set(orphans[:-1])
