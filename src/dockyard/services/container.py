"""All services of one registry, built from settings in one place."""

from __future__ import annotations

from dataclasses import dataclass

from dockyard.auth.access import AccessControl
from dockyard.metadata import MetadataStore
from dockyard.metadata.account_store import AccountStore
from dockyard.metadata.executor import Executor, create_executor
from dockyard.services.blobs import BlobService
from dockyard.services.discovery import DiscoveryService
from dockyard.services.gc import GcOptions
from dockyard.services.maintenance import GcSchedule, Maintenance
from dockyard.services.manifests import ManifestService
from dockyard.services.pulls import PullRecorder
from dockyard.services.retention import RetentionService
from dockyard.services.upload_locks import UploadLocks
from dockyard.services.uploads import UploadService
from dockyard.settings import Settings
from dockyard.storage import StorageDriver
from dockyard.storage.configure import driver_from_settings


@dataclass(frozen=True, slots=True)
class Services:
    settings: Settings
    store: MetadataStore
    accounts: AccountStore
    storage: StorageDriver
    blobs: BlobService
    uploads: UploadService
    manifests: ManifestService
    discovery: DiscoveryService
    # None when authentication is switched off: everything is allowed.
    access: AccessControl | None
    maintenance: Maintenance
    retention: RetentionService
    # Pull times noted by manifest GETs, written in batches in the background.
    pulls: PullRecorder

    async def close(self) -> None:
        await self.store.close()


def build_access(settings: Settings, accounts: AccountStore) -> AccessControl | None:
    if not settings.auth.enabled:
        return None
    from dockyard.auth.authenticate import build_authenticator
    from dockyard.auth.keys import SigningKeys
    from dockyard.auth.policy import AccessPolicy
    from dockyard.auth.tokens import TokenService

    keys = SigningKeys(settings.keys_dir)
    keys.load()
    tokens = TokenService(
        keys, settings.auth.issuer, settings.auth.service, settings.auth.token_ttl
    )
    return AccessControl(
        tokens,
        build_authenticator(settings.auth, accounts),
        AccessPolicy(accounts),
        accounts,
    )


def build_services(settings: Settings) -> Services:
    executor: Executor = create_executor(settings.database_url)
    store = MetadataStore(executor)
    accounts = AccountStore(executor)
    storage = driver_from_settings(settings)
    retention = RetentionService(executor, settings.registry.retention_interval)
    return Services(
        settings=settings,
        store=store,
        accounts=accounts,
        storage=storage,
        blobs=BlobService(store, storage),
        uploads=UploadService(store, storage, UploadLocks(executor)),
        manifests=ManifestService(store),
        discovery=DiscoveryService(store),
        access=build_access(settings, accounts),
        maintenance=Maintenance(
            executor,
            storage,
            settings.registry.upload_max_age,
            GcSchedule(
                settings.registry.gc_interval,
                GcOptions(
                    grace=settings.registry.gc_grace,
                    keep_untagged=settings.registry.gc_keep_untagged,
                ),
            ),
            retention=retention,
        ),
        retention=retention,
        pulls=PullRecorder(executor, settings.registry.pull_flush_interval),
    )
