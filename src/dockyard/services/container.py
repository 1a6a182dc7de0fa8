"""All services of one registry, built from settings in one place."""

from __future__ import annotations

from dataclasses import dataclass

from dockyard.metadata import MetadataStore
from dockyard.metadata.executor import create_executor
from dockyard.services.blobs import BlobService
from dockyard.services.discovery import DiscoveryService
from dockyard.services.manifests import ManifestService
from dockyard.services.uploads import UploadService
from dockyard.settings import Settings
from dockyard.storage import StorageDriver, create_driver


@dataclass(frozen=True, slots=True)
class Services:
    settings: Settings
    store: MetadataStore
    storage: StorageDriver
    blobs: BlobService
    uploads: UploadService
    manifests: ManifestService
    discovery: DiscoveryService

    async def close(self) -> None:
        await self.store.close()


def build_services(settings: Settings) -> Services:
    store = MetadataStore(create_executor(settings.database_url))
    storage = create_driver(settings.storage.driver, root=settings.storage_root)
    return Services(
        settings=settings,
        store=store,
        storage=storage,
        blobs=BlobService(store, storage),
        uploads=UploadService(store, storage),
        manifests=ManifestService(store),
        discovery=DiscoveryService(store),
    )
