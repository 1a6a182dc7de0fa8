"""The metadata store: every query the registry runs, behind one small class."""

from __future__ import annotations

import json
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from dockyard.metadata.tables import (
    blobs,
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


@dataclass(frozen=True, slots=True)
class BlobRecord:
    digest: str
    size: int


@dataclass(frozen=True, slots=True)
class ManifestRecord:
    digest: str
    media_type: str
    size: int
    content: bytes | None


@dataclass(frozen=True, slots=True)
class ReferrerRecord:
    digest: str
    media_type: str
    size: int
    artifact_type: str | None
    annotations: dict[str, str] | None


@dataclass(frozen=True, slots=True)
class UploadRecord:
    id: str
    repository: str
    algorithm: str
    size: int
    created_at: float


class MetadataStore:
    """Async access to the registry's metadata on SQLite or PostgreSQL."""

    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine
        self._writer = engine.execution_options(sqlite_begin="IMMEDIATE")
        self._dialect = engine.dialect.name

    async def close(self) -> None:
        await self.engine.dispose()

    # -- helpers -------------------------------------------------------------

    def _insert(self, table: sa.Table) -> Any:
        module = postgresql if self._dialect == "postgresql" else sqlite
        return module.insert(table)

    async def _repository_id(self, conn: AsyncConnection, name: str) -> int | None:
        query = sa.select(repositories.c.id).where(repositories.c.name == name)
        return (await conn.execute(query)).scalar()

    async def _ensure_repository(self, conn: AsyncConnection, name: str) -> int:
        insert = self._insert(repositories).values(name=name, created_at=time.time())
        await conn.execute(insert.on_conflict_do_nothing(index_elements=["name"]))
        repository_id = await self._repository_id(conn, name)
        assert repository_id is not None
        return repository_id

    async def repository_exists(self, name: str) -> bool:
        async with self.engine.connect() as conn:
            return await self._repository_id(conn, name) is not None

    # -- blobs ---------------------------------------------------------------

    async def get_blob(self, repository: str, digest: str) -> BlobRecord | None:
        """The blob if the repository may see it."""
        query = (
            sa.select(blobs.c.size)
            .select_from(
                repository_blobs.join(
                    repositories, repositories.c.id == repository_blobs.c.repository_id
                ).join(blobs, blobs.c.digest == repository_blobs.c.digest)
            )
            .where(
                repositories.c.name == repository, repository_blobs.c.digest == digest
            )
        )
        async with self.engine.connect() as conn:
            size = (await conn.execute(query)).scalar()
        return None if size is None else BlobRecord(digest, size)

    async def link_blob(self, repository: str, digest: str, size: int) -> None:
        """Record a stored blob and let the repository see it."""
        now = time.time()
        async with self._writer.begin() as conn:
            repository_id = await self._ensure_repository(conn, repository)
            await conn.execute(
                self._insert(blobs)
                .values(digest=digest, size=size, created_at=now)
                .on_conflict_do_nothing(index_elements=["digest"])
            )
            await conn.execute(
                self._insert(repository_blobs)
                .values(repository_id=repository_id, digest=digest, created_at=now)
                .on_conflict_do_nothing(index_elements=["repository_id", "digest"])
            )

    async def mount_blob(self, repository: str, source: str, digest: str) -> bool:
        """Let `repository` see a blob that `source` already sees."""
        blob = await self.get_blob(source, digest)
        if blob is None:
            return False
        await self.link_blob(repository, digest, blob.size)
        return True

    async def unlink_blob(self, repository: str, digest: str) -> bool:
        async with self._writer.begin() as conn:
            repository_id = await self._repository_id(conn, repository)
            if repository_id is None:
                return False
            result = await conn.execute(
                sa.delete(repository_blobs).where(
                    repository_blobs.c.repository_id == repository_id,
                    repository_blobs.c.digest == digest,
                )
            )
            return bool(result.rowcount)

    # -- manifests -----------------------------------------------------------

    async def get_manifest(
        self, repository: str, reference: str, *, by_tag: bool, content: bool = True
    ) -> ManifestRecord | None:
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
            match = tags.c.name == reference
        else:
            match = manifests.c.digest == reference
        query = (
            sa.select(*columns)
            .select_from(source)
            .where(repositories.c.name == repository, match)
        )
        async with self.engine.connect() as conn:
            row = (await conn.execute(query)).first()
        if row is None:
            return None
        return ManifestRecord(
            row.digest, row.media_type, row.size, row.content if content else None
        )

    async def put_manifest(
        self,
        repository: str,
        digest: str,
        parsed: ParsedManifest,
        content: bytes,
        tag_names: Sequence[str],
    ) -> None:
        """Store a manifest and its tags once everything it references is here."""
        now = time.time()
        async with self._writer.begin() as conn:
            repository_id = await self._ensure_repository(conn, repository)
            await self._check_references(conn, repository_id, parsed)
            annotations = json.dumps(parsed.annotations) if parsed.annotations else None
            await conn.execute(
                self._insert(manifests)
                .values(
                    repository_id=repository_id,
                    digest=digest,
                    media_type=parsed.media_type,
                    size=len(content),
                    content=content,
                    artifact_type=parsed.artifact_type,
                    subject=parsed.subject,
                    annotations=annotations,
                    created_at=now,
                )
                .on_conflict_do_nothing(index_elements=["repository_id", "digest"])
            )
            references = [
                {"target_digest": d.digest, "is_manifest": False} for d in parsed.blobs
            ] + [
                {"target_digest": d.digest, "is_manifest": True}
                for d in parsed.children
            ]
            if references:
                await conn.execute(
                    self._insert(manifest_references)
                    .values(
                        [
                            {
                                "repository_id": repository_id,
                                "manifest_digest": digest,
                                **ref,
                            }
                            for ref in _unique_targets(references)
                        ]
                    )
                    .on_conflict_do_nothing()
                )
            for tag in tag_names:
                insert = self._insert(tags).values(
                    repository_id=repository_id,
                    name=tag,
                    manifest_digest=digest,
                    updated_at=now,
                )
                await conn.execute(
                    insert.on_conflict_do_update(
                        index_elements=["repository_id", "name"],
                        set_={"manifest_digest": digest, "updated_at": now},
                    )
                )

    async def _check_references(
        self, conn: AsyncConnection, repository_id: int, parsed: ParsedManifest
    ) -> None:
        wanted_blobs = {d.digest for d in parsed.blobs if not d.is_external}
        if wanted_blobs:
            found = await conn.execute(
                sa.select(repository_blobs.c.digest).where(
                    repository_blobs.c.repository_id == repository_id,
                    repository_blobs.c.digest.in_(wanted_blobs),
                )
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
            found = await conn.execute(
                sa.select(manifests.c.digest).where(
                    manifests.c.repository_id == repository_id,
                    manifests.c.digest.in_(wanted_children),
                )
            )
            missing = wanted_children - set(found.scalars())
            if missing:
                raise RegistryError(
                    errcodes.MANIFEST_UNKNOWN,
                    f"manifest {sorted(missing)[0]} is not in this repository",
                    detail={"digests": sorted(missing)},
                )

    async def delete_manifest(self, repository: str, digest: str) -> bool:
        """Delete a manifest and every tag that points at it."""
        async with self._writer.begin() as conn:
            repository_id = await self._repository_id(conn, repository)
            if repository_id is None:
                return False
            in_repository = sa.and_(
                manifests.c.repository_id == repository_id,
                manifests.c.digest == digest,
            )
            await conn.execute(
                sa.delete(tags).where(
                    tags.c.repository_id == repository_id,
                    tags.c.manifest_digest == digest,
                )
            )
            await conn.execute(
                sa.delete(manifest_references).where(
                    manifest_references.c.repository_id == repository_id,
                    manifest_references.c.manifest_digest == digest,
                )
            )
            result = await conn.execute(sa.delete(manifests).where(in_repository))
            return bool(result.rowcount)

    async def delete_tag(self, repository: str, tag: str) -> bool:
        async with self._writer.begin() as conn:
            repository_id = await self._repository_id(conn, repository)
            if repository_id is None:
                return False
            result = await conn.execute(
                sa.delete(tags).where(
                    tags.c.repository_id == repository_id, tags.c.name == tag
                )
            )
            return bool(result.rowcount)

    # -- discovery -----------------------------------------------------------

    async def list_tags(
        self, repository: str, limit: int | None, last: str | None
    ) -> list[str] | None:
        """Tags in lexical order after `last`; None when the repository is unknown."""
        async with self.engine.connect() as conn:
            repository_id = await self._repository_id(conn, repository)
            if repository_id is None:
                return None
            query = sa.select(tags.c.name).where(tags.c.repository_id == repository_id)
            if last is not None:
                query = query.where(tags.c.name > last)
            query = query.order_by(tags.c.name)
            if limit is not None:
                query = query.limit(limit)
            return list((await conn.execute(query)).scalars())

    async def list_repositories(self, limit: int | None, last: str | None) -> list[str]:
        query = sa.select(repositories.c.name)
        if last is not None:
            query = query.where(repositories.c.name > last)
        query = query.order_by(repositories.c.name)
        if limit is not None:
            query = query.limit(limit)
        async with self.engine.connect() as conn:
            return list((await conn.execute(query)).scalars())

    async def list_referrers(
        self, repository: str, subject: str, artifact_type: str | None
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
                manifests.join(
                    repositories, repositories.c.id == manifests.c.repository_id
                )
            )
            .where(repositories.c.name == repository, manifests.c.subject == subject)
            .order_by(manifests.c.created_at, manifests.c.digest)
        )
        if artifact_type is not None:
            query = query.where(manifests.c.artifact_type == artifact_type)
        async with self.engine.connect() as conn:
            rows = (await conn.execute(query)).all()
        return [
            ReferrerRecord(
                row.digest,
                row.media_type,
                row.size,
                row.artifact_type,
                json.loads(row.annotations) if row.annotations else None,
            )
            for row in rows
        ]

    # -- upload sessions -----------------------------------------------------

    async def create_upload(
        self, repository: str, upload_id: str, algorithm: str
    ) -> None:
        now = time.time()
        async with self._writer.begin() as conn:
            repository_id = await self._ensure_repository(conn, repository)
            await conn.execute(
                sa.insert(uploads).values(
                    id=upload_id,
                    repository_id=repository_id,
                    algorithm=algorithm,
                    size=0,
                    created_at=now,
                    updated_at=now,
                )
            )

    async def get_upload(self, repository: str, upload_id: str) -> UploadRecord | None:
        query = (
            sa.select(uploads.c.algorithm, uploads.c.size, uploads.c.created_at)
            .select_from(
                uploads.join(repositories, repositories.c.id == uploads.c.repository_id)
            )
            .where(uploads.c.id == upload_id, repositories.c.name == repository)
        )
        async with self.engine.connect() as conn:
            row = (await conn.execute(query)).first()
        if row is None:
            return None
        return UploadRecord(
            upload_id, repository, row.algorithm, row.size, row.created_at
        )

    async def advance_upload(self, upload_id: str, expected: int, size: int) -> bool:
        """Move an upload's committed size forward if nobody else moved it."""
        async with self._writer.begin() as conn:
            result = await conn.execute(
                sa.update(uploads)
                .where(uploads.c.id == upload_id, uploads.c.size == expected)
                .values(size=size, updated_at=time.time())
            )
            return bool(result.rowcount)

    async def delete_upload(self, upload_id: str) -> bool:
        async with self._writer.begin() as conn:
            result = await conn.execute(
                sa.delete(uploads).where(uploads.c.id == upload_id)
            )
            return bool(result.rowcount)


def _unique_targets(references: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    seen: dict[str, dict[str, Any]] = {}
    for ref in references:
        seen.setdefault(ref["target_digest"], ref)
    return list(seen.values())
