"""Every query the registry runs, as plain functions of a SQLAlchemy connection.

They know nothing of threads or event loops: `MetadataStore` decides where each
one runs. Inserts that may race use the dialect's ON CONFLICT clause, which both
SQLite and PostgreSQL support.
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa

from dockyard.metadata import quotas, tag_rules
from dockyard.metadata.prepared import Prepared
from dockyard.metadata.records import (
    BlobRecord,
    ManifestRecord,
    ReferrerRecord,
    UploadRecord,
)
from dockyard.metadata.tables import (
    blobs,
    dialect_insert,
    manifest_references,
    manifests,
    repositories,
    repository_blobs,
    tags,
    uploads,
)
from dockyard.oci import errcodes
from dockyard.oci.errcodes import RegistryError
from dockyard.oci.manifest import ParsedManifest


def _insert(conn: sa.Connection, table: sa.Table) -> Any:
    return dialect_insert(conn.dialect.name, table)


# -- repositories ------------------------------------------------------------


_REPOSITORY_ID = Prepared(
    sa.select(repositories.c.id).where(repositories.c.name == sa.bindparam("name"))
)


def repository_id(conn: sa.Connection, name: str) -> int | None:
    row = _REPOSITORY_ID.first(conn, name=name)
    return None if row is None else int(row[0])


def ensure_repository(conn: sa.Connection, name: str) -> int:
    found = repository_id(conn, name)
    if found is not None:
        return found
    insert = _insert(conn, repositories).values(name=name, created_at=time.time())
    conn.execute(insert.on_conflict_do_nothing(index_elements=["name"]))
    found = repository_id(conn, name)
    assert found is not None
    return found


def _name_page(
    column: sa.ColumnElement[str], source: Any, *where: sa.ColumnElement[bool]
) -> dict[tuple[bool, bool], Prepared]:
    """Pages of names in order, one statement per (has `last`, has `limit`)."""
    statements = {}
    for after in (False, True):
        for limited in (False, True):
            query = sa.select(column).select_from(source).where(*where)
            if after:
                query = query.where(column > sa.bindparam("last"))
            query = query.order_by(column)
            if limited:
                query = query.limit(sa.bindparam("limit", type_=sa.Integer))
            statements[(after, limited)] = query
    return {key: Prepared(query) for key, query in statements.items()}


_REPOSITORY_PAGES = _name_page(repositories.c.name, repositories)


def list_repositories(
    conn: sa.Connection, limit: int | None, last: str | None
) -> list[str]:
    page = _REPOSITORY_PAGES[(last is not None, limit is not None)]
    return page.column(conn, last=last, limit=limit)


# -- blobs -------------------------------------------------------------------


def _visible_blob(*columns: sa.ColumnElement[Any]) -> sa.Select[Any]:
    return (
        sa.select(*columns)
        .select_from(
            repository_blobs.join(
                repositories, repositories.c.id == repository_blobs.c.repository_id
            ).join(blobs, blobs.c.digest == repository_blobs.c.digest)
        )
        .where(
            repositories.c.name == sa.bindparam("repository"),
            repository_blobs.c.digest == sa.bindparam("digest"),
        )
    )


_VISIBLE_BLOB_QUERY = _visible_blob(blobs.c.size)


_MANIFEST_AS_BLOB = (
    sa.select(
        sa.literal_column("1"),
        manifests.c.size,
        manifests.c.media_type,
        manifests.c.content,
    )
    .select_from(
        manifests.join(repositories, repositories.c.id == manifests.c.repository_id)
    )
    .where(
        repositories.c.name == sa.bindparam("repository"),
        manifests.c.digest == sa.bindparam("digest"),
    )
)
# A stored blob first, else a manifest by that digest, in one round trip.
_CONTENT = Prepared(
    sa.union_all(
        _visible_blob(sa.literal_column("0"), blobs.c.size, sa.null(), sa.null()),
        _MANIFEST_AS_BLOB,
    ).limit(1)
)


def find_content(
    conn: sa.Connection, repository: str, digest: str
) -> BlobRecord | ManifestRecord | None:
    """What `/blobs/<digest>` serves: a blob the repository may see, or one of
    its manifests (clients may fetch those through the blob endpoint too)."""
    row = _CONTENT.first(conn, repository=repository, digest=digest)
    if row is None:
        return None
    kind, size, media_type, content = row
    if kind == 0:
        return BlobRecord(digest, size)
    return ManifestRecord(digest, media_type, size, bytes(content))


def link_blob(
    conn: sa.Connection,
    repository: str,
    digest: str,
    size: int,
    finished_upload: str | None = None,
) -> None:
    """Record a stored blob and let the repository see it.

    `finished_upload` is the session that delivered the bytes: it ends here.
    """
    now = time.time()
    found = ensure_repository(conn, repository)
    quotas.check_room(conn, repository, digest, size)
    _ensure_blob(conn, digest, size, now)
    _INSERT_LINK.execute(conn, repository_id=found, digest=digest, now=now)
    if finished_upload is not None:
        delete_upload(conn, finished_upload)


_INSERT_BLOB = Prepared(
    lambda dialect: (
        dialect_insert(dialect, blobs)
        .values(
            digest=sa.bindparam("digest"),
            size=sa.bindparam("size"),
            created_at=sa.bindparam("now"),
        )
        .on_conflict_do_nothing(index_elements=["digest"])
    )
)
_HOLD_BLOB = Prepared(
    sa.select(blobs.c.digest)
    .where(blobs.c.digest == sa.bindparam("digest"))
    .with_for_update(read=True)
)
_INSERT_LINK = Prepared(
    lambda dialect: (
        dialect_insert(dialect, repository_blobs)
        .values(
            repository_id=sa.bindparam("repository_id"),
            digest=sa.bindparam("digest"),
            created_at=sa.bindparam("now"),
        )
        .on_conflict_do_nothing(index_elements=["repository_id", "digest"])
    )
)


def _ensure_blob(conn: sa.Connection, digest: str, size: int, now: float) -> None:
    """The blob row exists, and (PostgreSQL) stays until this transaction ends.

    An insert that finds the row does not lock it, so the collector could
    delete it before this transaction's link is written, and the link would
    then fail its foreign key. FOR SHARE holds the row (the collector skips
    rows it cannot lock); if the collector deleted it first, insert it again.
    SQLite runs one writer at a time, so there the insert is enough.
    """
    _INSERT_BLOB.execute(conn, digest=digest, size=size, now=now)
    if conn.dialect.name != "postgresql":
        return
    if _HOLD_BLOB.first(conn, digest=digest) is None:
        _INSERT_BLOB.execute(conn, digest=digest, size=size, now=now)


def mount_blob(conn: sa.Connection, repository: str, source: str, digest: str) -> bool:
    # FOR SHARE (PostgreSQL): the collector cannot drop the source's link, and
    # with it the blob, between this check and the new link.
    size = conn.execute(
        _VISIBLE_BLOB_QUERY.with_for_update(read=True),
        {"repository": source, "digest": digest},
    ).scalar()
    if size is None:
        return False
    blob = BlobRecord(digest, size)
    link_blob(conn, repository, digest, blob.size)
    return True


def unlink_blob(conn: sa.Connection, repository: str, digest: str) -> bool:
    found = repository_id(conn, repository)
    if found is None:
        return False
    result = conn.execute(
        sa.delete(repository_blobs).where(
            repository_blobs.c.repository_id == found,
            repository_blobs.c.digest == digest,
        )
    )
    return bool(result.rowcount)


# -- manifests ---------------------------------------------------------------


def _manifest_query(by_tag: bool, content: bool) -> sa.Select[Any]:
    columns = [manifests.c.digest, manifests.c.media_type, manifests.c.size]
    if content:
        columns.append(manifests.c.content)
    source = manifests.join(
        repositories, repositories.c.id == manifests.c.repository_id
    )
    if by_tag:
        source = source.join(
            tags,
            sa.and_(
                tags.c.repository_id == manifests.c.repository_id,
                tags.c.manifest_digest == manifests.c.digest,
            ),
        )
        match = tags.c.name == sa.bindparam("reference")
    else:
        match = manifests.c.digest == sa.bindparam("reference")
    return (
        sa.select(*columns)
        .select_from(source)
        .where(repositories.c.name == sa.bindparam("repository"), match)
    )


_MANIFEST_QUERIES = {
    (by_tag, content): Prepared(_manifest_query(by_tag, content))
    for by_tag in (True, False)
    for content in (True, False)
}


def get_manifest(
    conn: sa.Connection, repository: str, reference: str, by_tag: bool, content: bool
) -> ManifestRecord | None:
    row = _MANIFEST_QUERIES[(by_tag, content)].first(
        conn, repository=repository, reference=reference
    )
    if row is None:
        return None
    return ManifestRecord(row[0], row[1], row[2], bytes(row[3]) if content else None)


def put_manifest(
    conn: sa.Connection,
    repository: str,
    digest: str,
    parsed: ParsedManifest,
    content: bytes,
    tag_names: Sequence[str],
) -> None:
    """Store a manifest and its tags once everything it references is here."""
    now = time.time()
    found = ensure_repository(conn, repository)
    _check_references(conn, found, parsed)
    _check_tags_movable(conn, found, repository, digest, tag_names)
    conn.execute(
        _insert(conn, manifests)
        .values(
            repository_id=found,
            digest=digest,
            media_type=parsed.media_type,
            size=len(content),
            content=content,
            artifact_type=parsed.artifact_type,
            subject=parsed.subject,
            annotations=json.dumps(parsed.annotations) if parsed.annotations else None,
            created_at=now,
        )
        # Pushing a manifest that exists touches its row (a no-op update), which
        # on PostgreSQL locks it: a collector deleting it waits, then sees the tag.
        .on_conflict_do_update(
            index_elements=["repository_id", "digest"],
            set_={"size": manifests.c.size},
        )
    )
    references = {d.digest: False for d in parsed.blobs}
    references.update({d.digest: True for d in parsed.children})
    if references:
        rows = [
            {
                "repository_id": found,
                "manifest_digest": digest,
                "target_digest": target,
                "is_manifest": is_manifest,
            }
            for target, is_manifest in references.items()
        ]
        conn.execute(
            _insert(conn, manifest_references).values(rows).on_conflict_do_nothing()
        )
    for tag in tag_names:
        insert = _insert(conn, tags).values(
            repository_id=found, name=tag, manifest_digest=digest, updated_at=now
        )
        conn.execute(
            insert.on_conflict_do_update(
                index_elements=["repository_id", "name"],
                set_={"manifest_digest": digest, "updated_at": now},
            )
        )


def _check_tags_movable(
    conn: sa.Connection,
    repository_id: int,
    repository: str,
    digest: str,
    tag_names: Sequence[str],
) -> None:
    if not tag_names:
        return
    moved = conn.execute(
        sa.select(tags.c.name).where(
            tags.c.repository_id == repository_id,
            tags.c.name.in_(tag_names),
            tags.c.manifest_digest != digest,
        )
    ).scalars()
    tag_rules.check_mutable(conn, repository, moved, action="moved")


def _check_references(
    conn: sa.Connection, repository: int, parsed: ParsedManifest
) -> None:
    wanted_blobs = {d.digest for d in parsed.blobs if not d.is_external}
    if wanted_blobs:
        # FOR SHARE (PostgreSQL; SQLite serialises writers anyway) holds off a
        # concurrent blob delete until this manifest is committed.
        found = conn.execute(
            sa.select(repository_blobs.c.digest)
            .where(
                repository_blobs.c.repository_id == repository,
                repository_blobs.c.digest.in_(wanted_blobs),
            )
            .with_for_update(read=True)
        )
        missing = wanted_blobs - set(found.scalars())
        if missing:
            raise RegistryError(
                errcodes.MANIFEST_BLOB_UNKNOWN,
                f"blob {sorted(missing)[0]} is not in this repository",
                detail={"digests": sorted(missing)},
            )
    wanted_children = {d.digest for d in parsed.children}
    if wanted_children:
        found = conn.execute(
            sa.select(manifests.c.digest)
            .where(
                manifests.c.repository_id == repository,
                manifests.c.digest.in_(wanted_children),
            )
            .with_for_update(read=True)
        )
        missing = wanted_children - set(found.scalars())
        if missing:
            raise RegistryError(
                errcodes.MANIFEST_UNKNOWN,
                f"manifest {sorted(missing)[0]} is not in this repository",
                detail={"digests": sorted(missing)},
            )


def delete_manifest(conn: sa.Connection, repository: str, digest: str) -> bool:
    """Delete a manifest and every tag that points at it."""
    found = repository_id(conn, repository)
    if found is None:
        return False
    named = conn.execute(
        sa.select(tags.c.name).where(
            tags.c.repository_id == found, tags.c.manifest_digest == digest
        )
    ).scalars()
    tag_rules.check_mutable(conn, repository, named, action="deleted")
    conn.execute(
        sa.delete(tags).where(
            tags.c.repository_id == found, tags.c.manifest_digest == digest
        )
    )
    conn.execute(
        sa.delete(manifest_references).where(
            manifest_references.c.repository_id == found,
            manifest_references.c.manifest_digest == digest,
        )
    )
    result = conn.execute(
        sa.delete(manifests).where(
            manifests.c.repository_id == found, manifests.c.digest == digest
        )
    )
    return bool(result.rowcount)


def delete_tag(conn: sa.Connection, repository: str, tag: str) -> bool:
    found = repository_id(conn, repository)
    if found is None:
        return False
    match = sa.and_(tags.c.repository_id == found, tags.c.name == tag)
    if conn.execute(sa.select(tags.c.name).where(match)).first() is None:
        return False
    tag_rules.check_mutable(conn, repository, [tag], action="deleted")
    result = conn.execute(sa.delete(tags).where(match))
    return bool(result.rowcount)


# -- discovery ---------------------------------------------------------------


_TAG_PAGES = _name_page(
    tags.c.name,
    tags.join(repositories, repositories.c.id == tags.c.repository_id),
    repositories.c.name == sa.bindparam("repository"),
)


def list_tags(
    conn: sa.Connection, repository: str, limit: int | None, last: str | None
) -> list[str] | None:
    """Tags in lexical order after `last`; None when the repository is unknown."""
    names = _TAG_PAGES[(last is not None, limit is not None)].column(
        conn, repository=repository, last=last, limit=limit
    )
    if not names and repository_id(conn, repository) is None:
        return None
    return names


def list_referrers(
    conn: sa.Connection, repository: str, subject: str, artifact_type: str | None
) -> list[ReferrerRecord]:
    query = (
        sa.select(
            manifests.c.digest,
            manifests.c.media_type,
            manifests.c.size,
            manifests.c.artifact_type,
            manifests.c.annotations,
        )
        .select_from(
            manifests.join(repositories, repositories.c.id == manifests.c.repository_id)
        )
        .where(repositories.c.name == repository, manifests.c.subject == subject)
        .order_by(manifests.c.created_at, manifests.c.digest)
    )
    if artifact_type is not None:
        query = query.where(manifests.c.artifact_type == artifact_type)
    return [
        ReferrerRecord(
            row.digest,
            row.media_type,
            row.size,
            row.artifact_type,
            json.loads(row.annotations) if row.annotations else None,
        )
        for row in conn.execute(query)
    ]


# -- upload sessions ---------------------------------------------------------


_INSERT_UPLOAD = Prepared(
    sa.insert(uploads).values(
        id=sa.bindparam("id"),
        repository_id=sa.bindparam("repository_id"),
        algorithm=sa.bindparam("algorithm"),
        size=0,
        created_at=sa.bindparam("now"),
        updated_at=sa.bindparam("now"),
    )
)


def create_upload(
    conn: sa.Connection, repository: str, upload_id: str, algorithm: str
) -> None:
    _INSERT_UPLOAD.execute(
        conn,
        id=upload_id,
        repository_id=ensure_repository(conn, repository),
        algorithm=algorithm,
        now=time.time(),
    )


_UPLOAD = Prepared(
    sa.select(
        uploads.c.algorithm,
        uploads.c.size,
        uploads.c.created_at,
        uploads.c.digest_so_far,
    )
    .select_from(
        uploads.join(repositories, repositories.c.id == uploads.c.repository_id)
    )
    .where(
        uploads.c.id == sa.bindparam("upload_id"),
        repositories.c.name == sa.bindparam("repository"),
    )
)


def get_upload(
    conn: sa.Connection, repository: str, upload_id: str
) -> UploadRecord | None:
    row = _UPLOAD.first(conn, upload_id=upload_id, repository=repository)
    if row is None:
        return None
    algorithm, size, created_at, digest_so_far = row
    return UploadRecord(
        upload_id, repository, algorithm, size, created_at, digest_so_far
    )


def advance_upload(
    conn: sa.Connection,
    upload_id: str,
    expected: int,
    size: int,
    digest_so_far: str | None,
) -> bool:
    """Move an upload's committed size forward if nobody else moved it."""
    result = conn.execute(
        sa.update(uploads)
        .where(uploads.c.id == upload_id, uploads.c.size == expected)
        .values(size=size, digest_so_far=digest_so_far, updated_at=time.time())
    )
    return bool(result.rowcount)


_DELETE_UPLOAD = Prepared(
    sa.delete(uploads).where(uploads.c.id == sa.bindparam("upload_id"))
)


def delete_upload(conn: sa.Connection, upload_id: str) -> bool:
    return bool(_DELETE_UPLOAD.execute(conn, upload_id=upload_id))
