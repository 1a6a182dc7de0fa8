"""The queries garbage collection runs, as plain functions of a connection.

Two kinds: reads that load what the planner needs (`load_repository`,
`orphan_blobs`, ...), and deletions that re-check their own condition in the
statement that deletes, so that they stay correct whatever a push did since the
plan was made. The deletions take a batch of digests: one transaction removes
many rows, and the statements stay few whatever the batch size.

Every deletion first locks its rows (`FOR UPDATE`, rendered on PostgreSQL
only). A push that holds `FOR SHARE` on a row keeps it: the batch functions skip
rows locked by someone else (`SKIP LOCKED`; a row a push is using is not
garbage, and the next run sees it again), the one-row functions wait for the
push. The deleting statement that follows, in READ COMMITTED, sees what was
committed before it. SQLite serialises write transactions, so there the lock is
not needed.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Collection
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
    # An outer join, not NOT EXISTS: without an index on the link's digest
    # SQLite would scan every link once per blob, while for a join it builds
    # a temporary index (PostgreSQL plans either as a hash anti-join).
    query = (
        sa.select(blobs.c.digest, blobs.c.size)
        .select_from(
            blobs.outerjoin(
                repository_blobs, repository_blobs.c.digest == blobs.c.digest
            )
        )
        .where(blobs.c.created_at < cutoff, repository_blobs.c.digest.is_(None))
        .order_by(blobs.c.digest)
    )
    return [BlobRow(row.digest, row.size) for row in conn.execute(query)]


def blob_exists(conn: sa.Connection, digest: str) -> bool:
    return bool(existing_blobs(conn, [digest]))


def existing_blobs(conn: sa.Connection, digests: Collection[str]) -> set[str]:
    """Those of `digests` that have a blob row."""
    query = sa.select(blobs.c.digest).where(blobs.c.digest.in_(digests))
    return set(conn.execute(query).scalars())


# -- deletions, each re-checking its condition ---------------------------------


def delete_unreachable_manifests(
    conn: sa.Connection,
    repository_id: int,
    digests: Collection[str],
    cutoff: float,
    *,
    skip_locked: bool = True,
) -> list[str]:
    """Delete those of `digests` that nothing can reach any more; return them.

    Nothing reaches a manifest when no tag names it, no remaining manifest lists
    it as a child, and its subject (if any) is gone from the repository.
    Unreachable parents and subjects are deleted first, so this local test is
    enough: each statement deletes those whose test holds, which can free their
    children and referrers for the next one, until a statement deletes nothing.
    The test only gets truer as manifests go, so deleting a set at once is the
    same as deleting its members one by one.
    """
    pending = _lock(
        conn,
        manifests,
        manifests.c.digest,
        digests,
        skip_locked,
        manifests.c.repository_id == repository_id,
    )
    subject = manifests.alias("subject_manifest")
    unreachable = (
        sa.delete(manifests)
        .where(
            manifests.c.repository_id == repository_id,
            manifests.c.digest.in_(sa.bindparam("pending", expanding=True)),
            manifests.c.created_at < cutoff,
            ~sa.exists().where(
                tags.c.repository_id == repository_id,
                tags.c.manifest_digest == manifests.c.digest,
            ),
            ~sa.exists().where(
                manifest_references.c.repository_id == repository_id,
                manifest_references.c.target_digest == manifests.c.digest,
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
        .returning(manifests.c.digest)
    )
    deleted: list[str] = []
    while pending:
        gone = list(conn.execute(unreachable, {"pending": sorted(pending)}).scalars())
        if not gone:
            break
        # The foreign key cascades too; this keeps a database without it clean.
        conn.execute(
            sa.delete(manifest_references).where(
                manifest_references.c.repository_id == repository_id,
                manifest_references.c.manifest_digest.in_(gone),
            )
        )
        deleted += gone
        pending -= set(gone)
    return deleted


def unlink_unreferenced_blobs(
    conn: sa.Connection,
    repository_id: int,
    digests: Collection[str],
    cutoff: float,
    *,
    skip_locked: bool = True,
) -> list[str]:
    """Unlink those of `digests` that no manifest of the repository uses.

    Only links older than `cutoff` go. Returns the digests unlinked.
    """
    locked = _lock(
        conn,
        repository_blobs,
        repository_blobs.c.digest,
        digests,
        skip_locked,
        repository_blobs.c.repository_id == repository_id,
    )
    if not locked:
        return []
    return list(
        conn.execute(
            sa.delete(repository_blobs)
            .where(
                repository_blobs.c.repository_id == repository_id,
                repository_blobs.c.digest.in_(sorted(locked)),
                repository_blobs.c.created_at < cutoff,
                ~sa.exists().where(
                    manifest_references.c.repository_id == repository_id,
                    manifest_references.c.target_digest == repository_blobs.c.digest,
                ),
            )
            .returning(repository_blobs.c.digest)
        ).scalars()
    )


def delete_orphan_blobs(
    conn: sa.Connection,
    digests: Collection[str],
    cutoff: float,
    *,
    skip_locked: bool = True,
) -> list[str]:
    """Delete the rows of those of `digests` that no repository links.

    Only rows older than `cutoff` go. Returns the digests deleted.
    """
    locked = _lock(conn, blobs, blobs.c.digest, digests, skip_locked)
    if not locked:
        return []
    # NOT IN over the batch's own links: one pass over the links per
    # statement, where a correlated NOT EXISTS would be one per blob on SQLite.
    linked = sa.select(repository_blobs.c.digest).where(
        repository_blobs.c.digest.in_(sorted(locked))
    )
    return list(
        conn.execute(
            sa.delete(blobs)
            .where(
                blobs.c.digest.in_(sorted(locked)),
                blobs.c.created_at < cutoff,
                blobs.c.digest.not_in(linked),
            )
            .returning(blobs.c.digest)
        ).scalars()
    )


def delete_unreachable_manifest(
    conn: sa.Connection, repository_id: int, digest: str, cutoff: float
) -> bool:
    """One manifest, waiting for a push that holds it; see the batch form."""
    return bool(
        delete_unreachable_manifests(
            conn, repository_id, [digest], cutoff, skip_locked=False
        )
    )


def unlink_unreferenced_blob(
    conn: sa.Connection, repository_id: int, digest: str, cutoff: float
) -> bool:
    """One link, waiting for a push that holds it; see the batch form."""
    return bool(
        unlink_unreferenced_blobs(
            conn, repository_id, [digest], cutoff, skip_locked=False
        )
    )


def delete_orphan_blob(conn: sa.Connection, digest: str, cutoff: float) -> bool:
    """One blob row, waiting for a transaction that holds it; see the batch form."""
    return bool(delete_orphan_blobs(conn, [digest], cutoff, skip_locked=False))


def _lock(
    conn: sa.Connection,
    table: sa.Table,
    digest: sa.Column[str],
    digests: Collection[str],
    skip_locked: bool,
    *where: sa.ColumnElement[bool],
) -> set[str]:
    """Lock the rows of `digests` (PostgreSQL) and return those that exist."""
    query = (
        sa.select(digest)
        .select_from(table)
        .where(*where, digest.in_(digests))
        .with_for_update(skip_locked=skip_locked)
    )
    return set(conn.execute(query).scalars())
