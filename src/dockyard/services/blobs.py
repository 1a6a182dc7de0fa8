"""Reading, mounting and deleting blobs that repositories can see."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from dockyard.metadata import BlobRecord, MetadataStore
from dockyard.oci import errcodes
from dockyard.oci.digest import Digest
from dockyard.oci.errcodes import RegistryError
from dockyard.storage import StorageDriver
from dockyard.storage.paths import blob_path


@dataclass(frozen=True, slots=True)
class BlobContent:
    """Where to find a blob's bytes: a stored path, or inline (a manifest)."""

    digest: str
    size: int
    path: str | None = None
    local_file: Path | None = None
    inline: bytes | None = None
    media_type: str = "application/octet-stream"


class BlobService:
    def __init__(self, store: MetadataStore, storage: StorageDriver) -> None:
        self.store = store
        self.storage = storage

    async def locate(self, repository: str, digest: Digest) -> BlobContent:
        text = str(digest)
        found = await self.store.find_content(repository, text)
        if isinstance(found, BlobRecord):
            path = blob_path(digest)
            return BlobContent(
                text, found.size, path=path, local_file=self.storage.local_file(path)
            )
        # Manifests are content too: clients may fetch them through /blobs/.
        if found is not None and found.content is not None:
            return BlobContent(
                text, found.size, inline=found.content, media_type=found.media_type
            )
        raise RegistryError(errcodes.BLOB_UNKNOWN, detail={"digest": text})

    async def mount(self, repository: str, source: str, digest: Digest) -> bool:
        return await self.store.mount_blob(repository, source, str(digest))

    async def delete(self, repository: str, digest: Digest) -> None:
        """Unlink the blob from the repository; storage is reclaimed by GC."""
        if not await self.store.unlink_blob(repository, str(digest)):
            raise RegistryError(errcodes.BLOB_UNKNOWN, detail={"digest": str(digest)})
