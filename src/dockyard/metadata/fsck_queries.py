"""Read-only queries, and the repairs, that `dockyard fsck` runs."""

from __future__ import annotations

from collections.abc import Iterator

import sqlalchemy as sa

from dockyard.metadata.tables import (
    blobs,
    manifest_references,
    manifests,
    repositories,
    repository_blobs,
)

PAGE = 1000


def iter_blobs(conn: sa.Connection) -> Iterator[tuple[str, int]]:
    """Every blob row (digest, size), in pages so memory stays flat."""
    last = ""
    while True:
        rows = conn.execute(
            sa.select(blobs.c.digest, blobs.c.size)
            .where(blobs.c.digest > last)
            .order_by(blobs.c.digest)
            .limit(PAGE)
        ).all()
        yield from [(digest, size) for digest, size in rows]
        if len(rows) < PAGE:
            return
        last = rows[-1][0]


def known_blobs(conn: sa.Connection, digests: list[str]) -> set[str]:
    found = conn.execute(sa.select(blobs.c.digest).where(blobs.c.digest.in_(digests)))
    return set(found.scalars())


def dangling_references(conn: sa.Connection) -> list[tuple[str, str, str]]:
    """(repository, manifest, blob) where a manifest names a blob its repository
    no longer sees (deleted by a client, or lost)."""
    query = (
        sa.select(
            repositories.c.name,
            manifest_references.c.manifest_digest,
            manifest_references.c.target_digest,
        )
        .join(repositories, repositories.c.id == manifest_references.c.repository_id)
        .outerjoin(
            repository_blobs,
            sa.and_(
                repository_blobs.c.repository_id == manifest_references.c.repository_id,
                repository_blobs.c.digest == manifest_references.c.target_digest,
            ),
        )
        .where(
            manifest_references.c.is_manifest.is_(False),
            repository_blobs.c.digest.is_(None),
        )
        .order_by(repositories.c.name)
    )
    return [(r[0], r[1], r[2]) for r in conn.execute(query)]


def manifests_using(conn: sa.Connection, digest: str) -> list[tuple[str, str]]:
    query = (
        sa.select(repositories.c.name, manifests.c.digest)
        .join(manifests, manifests.c.repository_id == repositories.c.id)
        .join(
            manifest_references,
            sa.and_(
                manifest_references.c.repository_id == manifests.c.repository_id,
                manifest_references.c.manifest_digest == manifests.c.digest,
            ),
        )
        .where(manifest_references.c.target_digest == digest)
    )
    return [(r[0], r[1]) for r in conn.execute(query)]


def forget_blob(conn: sa.Connection, digest: str) -> None:
    """Repair: drop a blob whose bytes are lost or damaged, so clients see a
    clean BLOB_UNKNOWN (and can push it again) instead of a broken download."""
    conn.execute(sa.delete(repository_blobs).where(repository_blobs.c.digest == digest))
    conn.execute(sa.delete(blobs).where(blobs.c.digest == digest))
