"""The metadata store: repositories, manifests, tags, blob links and uploads.

Handlers and services see only `MetadataStore`; the SQL behind it is SQLAlchemy
Core, so SQLite (the embedded default) and PostgreSQL share one implementation.
"""

from dockyard.metadata.records import (
    BlobRecord,
    ManifestRecord,
    ReferrerRecord,
    UploadRecord,
)
from dockyard.metadata.store import MetadataStore

__all__ = [
    "BlobRecord",
    "ManifestRecord",
    "MetadataStore",
    "ReferrerRecord",
    "UploadRecord",
]
