"""The queries garbage collection runs, as plain functions of a connection.

Two kinds: reads that load what the planner needs (`load_repository`,
`orphan_blobs`, ...), and deletions that each re-check their own condition in
the statement that deletes, so that they stay correct whatever a push did since
the plan was made. Every deletion first locks its row (`FOR UPDATE`, rendered on
PostgreSQL only): a push that holds `FOR SHARE` on the row makes it wait, and the
deleting statement that follows, in READ COMMITTED, sees what the push committed.
SQLite serialises write transactions, so there the lock is not needed.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field

import sqlalchemy as sa

from dockyard.metadata.tables import (
    blobs,
    manifest_references,
    manifests,
    repositories,
    repository_blobs,
    tags,
)


@dataclass(frozen=True, slots=True)
class ManifestNode:
    digest: str
    size: int
    subject: str | None
    created_at: float


@dataclass(slots=True)
class RepositoryGraph:
    """Everything the planner needs to know about one repository."""

    repository_id: int
    name: str
    manifests: dict[str, ManifestNode] = field(default_factory=dict)
    tagged: set[str] = field(default_factory=set)
    # manifest digest -> the digests it references (blobs and child manifests).
    references: dict[str, set[str]] = field(default_factory=lambda: defaultdict(set))
    # manifest digest -> its child manifests (a subset of its references).
    children: dict[str, set[str]] = field(default_factory=lambda: defaultdict(set))
    # blob digest -> when the repository's link to it was made.
    links: dict[str, float] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class BlobRow:
    digest: str
    size: int


def repository_list(conn: sa.Connection) -> list[tuple[int, str]]:
    query = sa.select(repositories.c.id, repositories.c.name).order_by(
        repositories.c.name
    )
    return [(row.id, row.name) for row in conn.execute(query)]


def load_repository(
    conn: sa.Connection, repository_id: int, name: str
) -> RepositoryGraph:
    """The manifests, tags, references and blob links of one repository."""
    graph = RepositoryGraph(repository_id, name)
    query = sa.select(
        manifests.c.digest,
        manifests.c.size,
        manifests.c.subject,
        manifests.c.created_at,
    ).where(manifests.c.repository_id == repository_id)
    for row in conn.execute(query):
        graph.manifests[row.digest] = ManifestNode(
            row.digest, row.size, row.subject, row.created_at
        )

    tagged = sa.select(tags.c.manifest_digest).where(
        tags.c.repository_id == repository_id
    )
    graph.tagged.update(conn.execute(tagged).scalars())

    refs = sa.select(
        manifest_references.c.manifest_digest,
        manifest_references.c.target_digest,
        manifest_references.c.is_manifest,
    ).where(manifest_references.c.repository_id == repository_id)
    for ref in conn.execute(refs):
        graph.references[ref.manifest_digest].add(ref.target_digest)
        if ref.is_manifest:
            graph.children[ref.manifest_digest].add(ref.target_digest)

    links = sa.select(repository_blobs.c.digest, repository_blobs.c.created_at).where(
        repository_blobs.c.repository_id == repository_id
    )
    graph.links.update((row.digest, row.created_at) for row in conn.execute(links))
    return graph


def blob_links(conn: sa.Connection, cutoff: float) -> dict[str, tuple[int, set[int]]]:
    """Blobs older than `cutoff`: their size and the repositories linking them.

    Used by the dry run, which cannot ask the database after deleting.
    """
    found: dict[str, tuple[int, set[int]]] = {}
    query = sa.select(blobs.c.digest, blobs.c.size).where(blobs.c.created_at < cutoff)
    for row in conn.execute(query):
        found[row.digest] = (row.size, set())
    linked = sa.select(repository_blobs.c.digest, repository_blobs.c.repository_id)
    for row in conn.execute(linked):
        entry = found.get(row.digest)
        if entry is not None:
            entry[1].add(row.repository_id)
    return found


def orphan_blobs(conn: sa.Connection, cutoff: float) -> list[BlobRow]:
    """Blobs older than `cutoff` that no repository links."""
    query = (
        sa.select(blobs.c.digest, blobs.c.size)
        .where(blobs.c.created_at < cutoff, ~_linked(blobs.c.digest))
        .order_by(blobs.c.digest)
    )
    return [BlobRow(row.digest, row.size) for row in conn.execute(query)]


def blob_exists(conn: sa.Connection, digest: str) -> bool:
    query = sa.select(blobs.c.digest).where(blobs.c.digest == digest)
    return conn.execute(query).first() is not None


# -- deletions, each re-checking its condition ---------------------------------


def delete_unreachable_manifest(
    conn: sa.Connection, repository_id: int, digest: str, cutoff: float
) -> bool:
    """Delete a manifest if nothing can reach it any more.

    Nothing reaches it when no tag names it, no remaining manifest lists it as a
    child, and its subject (if any) is gone from the repository. Unreachable
    parents and subjects are deleted first, so this local test is enough.
    """
    conn.execute(
        sa.select(manifests.c.digest)
        .where(manifests.c.repository_id == repository_id, manifests.c.digest == digest)
        .with_for_update()
    ).first()
    subject = manifests.alias("subject_manifest")
    result = conn.execute(
        sa.delete(manifests).where(
            manifests.c.repository_id == repository_id,
            manifests.c.digest == digest,
            manifests.c.created_at < cutoff,
            ~sa.exists().where(
                tags.c.repository_id == repository_id,
                tags.c.manifest_digest == digest,
            ),
            ~sa.exists().where(
                manifest_references.c.repository_id == repository_id,
                manifest_references.c.target_digest == digest,
                manifest_references.c.is_manifest == sa.true(),
            ),
            sa.or_(
                manifests.c.subject.is_(None),
                ~sa.exists().where(
                    subject.c.repository_id == repository_id,
                    subject.c.digest == manifests.c.subject,
                ),
            ),
        )
    )
    if not result.rowcount:
        return False
    # The foreign key cascades too; this keeps a database without it clean.
    conn.execute(
        sa.delete(manifest_references).where(
            manifest_references.c.repository_id == repository_id,
            manifest_references.c.manifest_digest == digest,
        )
    )
    return True


def unlink_unreferenced_blob(
    conn: sa.Connection, repository_id: int, digest: str, cutoff: float
) -> bool:
    """Remove a repository's link to a blob that none of its manifests use."""
    conn.execute(
        sa.select(repository_blobs.c.digest)
        .where(
            repository_blobs.c.repository_id == repository_id,
            repository_blobs.c.digest == digest,
        )
        .with_for_update()
    ).first()
    result = conn.execute(
        sa.delete(repository_blobs).where(
            repository_blobs.c.repository_id == repository_id,
            repository_blobs.c.digest == digest,
            repository_blobs.c.created_at < cutoff,
            ~sa.exists().where(
                manifest_references.c.repository_id == repository_id,
                manifest_references.c.target_digest == digest,
            ),
        )
    )
    return bool(result.rowcount)


def delete_orphan_blob(conn: sa.Connection, digest: str, cutoff: float) -> bool:
    """Delete a blob's row if no repository links it."""
    conn.execute(
        sa.select(blobs.c.digest).where(blobs.c.digest == digest).with_for_update()
    ).first()
    result = conn.execute(
        sa.delete(blobs).where(
            blobs.c.digest == digest,
            blobs.c.created_at < cutoff,
            ~_linked(blobs.c.digest),
        )
    )
    return bool(result.rowcount)


def _linked(digest: sa.ColumnElement[str]) -> sa.Exists:
    return sa.exists().where(repository_blobs.c.digest == digest)
