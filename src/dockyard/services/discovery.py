"""Tag lists, the catalog and the referrers API."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from dockyard.metadata import MetadataStore
from dockyard.oci import errcodes, mediatypes
from dockyard.oci.digest import Digest
from dockyard.oci.errcodes import RegistryError

# The most entries one page returns, whatever `n` asks for.
MAX_PAGE = 10_000
# Repositories read at a time when the catalog is filtered by access rights.
CATALOG_BATCH = 500

RepositoryFilter = Callable[[str], Awaitable[bool]]


@dataclass(frozen=True, slots=True)
class Page:
    items: list[str]
    # The last item, when more may follow (the `last` of the next page's link).
    next_last: str | None


def parse_page_size(value: str | None) -> int | None:
    if value is None or value == "":
        return None
    try:
        size = int(value)
    except ValueError:
        size = -1
    if size < 0:
        raise RegistryError(
            errcodes.PAGINATION_NUMBER_INVALID, f"invalid page size {value!r}"
        )
    return min(size, MAX_PAGE)


def _page(items: list[str], size: int | None) -> Page:
    if size is not None and len(items) > size:
        items = items[:size]
        return Page(items, items[-1] if items else None)
    return Page(items, None)


class DiscoveryService:
    def __init__(self, store: MetadataStore) -> None:
        self.store = store

    async def tags(self, repository: str, size: int | None, last: str | None) -> Page:
        if size == 0:
            if not await self.store.repository_exists(repository):
                raise RegistryError(errcodes.NAME_UNKNOWN, detail={"name": repository})
            return Page([], None)
        limit = None if size is None else size + 1
        names = await self.store.list_tags(repository, limit, last)
        if names is None:
            raise RegistryError(errcodes.NAME_UNKNOWN, detail={"name": repository})
        return _page(names, size)

    async def catalog(
        self,
        size: int | None,
        last: str | None,
        visible: RepositoryFilter | None = None,
    ) -> Page:
        if size == 0:
            return Page([], None)
        limit = None if size is None else size + 1
        if visible is None:
            return _page(await self.store.list_repositories(limit, last), size)
        return _page(await self._visible_repositories(limit, last, visible), size)

    async def _visible_repositories(
        self, limit: int | None, last: str | None, visible: RepositoryFilter
    ) -> list[str]:
        """Read the catalog in batches, keeping what the caller may see."""
        kept: list[str] = []
        while limit is None or len(kept) < limit:
            batch = await self.store.list_repositories(CATALOG_BATCH, last)
            for name in batch:
                if await visible(name):
                    kept.append(name)
            if len(batch) < CATALOG_BATCH:
                break
            last = batch[-1]
        return kept if limit is None else kept[:limit]

    async def referrers(
        self, repository: str, subject: Digest, artifact_type: str | None
    ) -> bytes:
        """The referrers index for a subject; empty (never 404) when none exist."""
        records = await self.store.list_referrers(
            repository, str(subject), artifact_type
        )
        descriptors = []
        for record in records:
            descriptor: dict[str, object] = {
                "mediaType": record.media_type,
                "digest": record.digest,
                "size": record.size,
            }
            if record.artifact_type:
                descriptor["artifactType"] = record.artifact_type
            if record.annotations:
                descriptor["annotations"] = record.annotations
            descriptors.append(descriptor)
        index = {
            "schemaVersion": 2,
            "mediaType": mediatypes.OCI_INDEX,
            "manifests": descriptors,
        }
        return json.dumps(index, separators=(",", ":")).encode()
