"""The metadata store: the async face of the queries, for the services."""

from __future__ import annotations

from collections.abc import Sequence
from functools import partial

from dockyard.metadata import queries
from dockyard.metadata.executor import Executor
from dockyard.metadata.records import (
    BlobRecord,
    ManifestRecord,
    ReferrerRecord,
    UploadRecord,
)
from dockyard.oci.manifest import ParsedManifest


class MetadataStore:
    """Repositories, manifests, tags, blob links and uploads, in one database."""

    def __init__(self, executor: Executor) -> None:
        self._db = executor

    @property
    def dialect(self) -> str:
        return self._db.dialect

    async def close(self) -> None:
        await self._db.close()

    async def repository_exists(self, name: str) -> bool:
        found = await self._db.read(partial(queries.repository_id, name=name))
        return found is not None

    async def find_content(
        self, repository: str, digest: str
    ) -> BlobRecord | ManifestRecord | None:
        return await self._db.read(
            partial(queries.find_content, repository=repository, digest=digest)
        )

    async def link_blob(
        self, repository: str, digest: str, size: int, finished: str | None = None
    ) -> None:
        await self._db.write(
            partial(
                queries.link_blob,
                repository=repository,
                digest=digest,
                size=size,
                finished_upload=finished,
            ),
            # The file is already on disk; the row reaches it with the next
            # durable commit, at the latest the manifest that refers to it.
            durable=False,
        )

    async def mount_blob(self, repository: str, source: str, digest: str) -> bool:
        return await self._db.write(
            partial(
                queries.mount_blob, repository=repository, source=source, digest=digest
            )
        )

    async def unlink_blob(self, repository: str, digest: str) -> bool:
        return await self._db.write(
            partial(queries.unlink_blob, repository=repository, digest=digest)
        )

    async def get_manifest(
        self, repository: str, reference: str, *, by_tag: bool, content: bool = True
    ) -> ManifestRecord | None:
        return await self._db.read(
            partial(
                queries.get_manifest,
                repository=repository,
                reference=reference,
                by_tag=by_tag,
                content=content,
            )
        )

    async def put_manifest(
        self,
        repository: str,
        digest: str,
        parsed: ParsedManifest,
        content: bytes,
        tag_names: Sequence[str],
    ) -> None:
        await self._db.write(
            partial(
                queries.put_manifest,
                repository=repository,
                digest=digest,
                parsed=parsed,
                content=content,
                tag_names=tag_names,
            )
        )

    async def delete_manifest(self, repository: str, digest: str) -> bool:
        return await self._db.write(
            partial(queries.delete_manifest, repository=repository, digest=digest)
        )

    async def delete_tag(self, repository: str, tag: str) -> bool:
        return await self._db.write(
            partial(queries.delete_tag, repository=repository, tag=tag)
        )

    async def list_tags(
        self, repository: str, limit: int | None, last: str | None
    ) -> list[str] | None:
        return await self._db.read(
            partial(queries.list_tags, repository=repository, limit=limit, last=last)
        )

    async def list_repositories(self, limit: int | None, last: str | None) -> list[str]:
        return await self._db.read(
            partial(queries.list_repositories, limit=limit, last=last)
        )

    async def list_referrers(
        self, repository: str, subject: str, artifact_type: str | None
    ) -> list[ReferrerRecord]:
        return await self._db.read(
            partial(
                queries.list_referrers,
                repository=repository,
                subject=subject,
                artifact_type=artifact_type,
            )
        )

    async def create_upload(
        self, repository: str, upload_id: str, algorithm: str
    ) -> None:
        await self._db.write(
            partial(
                queries.create_upload,
                repository=repository,
                upload_id=upload_id,
                algorithm=algorithm,
            ),
            durable=False,
        )

    async def get_upload(self, repository: str, upload_id: str) -> UploadRecord | None:
        return await self._db.read(
            partial(queries.get_upload, repository=repository, upload_id=upload_id)
        )

    async def advance_upload(
        self, upload_id: str, expected: int, size: int, digest_so_far: str | None
    ) -> bool:
        return await self._db.write(
            partial(
                queries.advance_upload,
                upload_id=upload_id,
                expected=expected,
                size=size,
                digest_so_far=digest_so_far,
            ),
            durable=False,
        )

    async def delete_upload(self, upload_id: str) -> bool:
        return await self._db.write(
            partial(queries.delete_upload, upload_id=upload_id), durable=False
        )
