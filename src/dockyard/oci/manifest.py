"""Parsing and validating manifests without touching storage.

The parser checks that a manifest is well formed and says what it references;
whether those references exist is the manifest service's question.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from dockyard.oci import errcodes, mediatypes
from dockyard.oci.digest import Digest
from dockyard.oci.errcodes import RegistryError

MAX_MANIFEST_BYTES = 4 * 1024 * 1024


@dataclass(frozen=True, slots=True)
class Descriptor:
    media_type: str
    digest: str
    size: int
    urls: tuple[str, ...] = ()

    @property
    def is_external(self) -> bool:
        """True for layers the registry need not hold (foreign or with URLs)."""
        return bool(self.urls) or mediatypes.is_non_distributable(self.media_type)


@dataclass(frozen=True, slots=True)
class ParsedManifest:
    media_type: str
    blobs: tuple[Descriptor, ...] = ()
    children: tuple[Descriptor, ...] = ()
    subject: str | None = None
    artifact_type: str | None = None
    annotations: dict[str, str] = field(default_factory=dict)

    @property
    def is_index(self) -> bool:
        return self.media_type in mediatypes.INDEX_TYPES


def _invalid(message: str) -> RegistryError:
    return RegistryError(errcodes.MANIFEST_INVALID, message)


def _descriptor(value: Any, where: str) -> Descriptor:
    if not isinstance(value, dict):
        raise _invalid(f"{where} must be a descriptor object")
    media_type = value.get("mediaType")
    digest = value.get("digest")
    size = value.get("size")
    if not isinstance(media_type, str) or not media_type:
        raise _invalid(f"{where} has no mediaType")
    if not isinstance(digest, str):
        raise _invalid(f"{where} has no digest")
    if not isinstance(size, int) or isinstance(size, bool) or size < 0:
        raise _invalid(f"{where} has an invalid size")
    try:
        Digest.parse(digest)
    except RegistryError as exc:
        raise _invalid(f"{where} has an invalid digest: {exc.message}") from exc
    urls = value.get("urls") or ()
    if not isinstance(urls, list | tuple):
        raise _invalid(f"{where} has invalid urls")
    return Descriptor(media_type, digest, size, tuple(str(u) for u in urls))


def _descriptors(value: Any, where: str) -> tuple[Descriptor, ...]:
    if value is None:
        return ()
    if not isinstance(value, list):
        raise _invalid(f"{where} must be a list")
    return tuple(_descriptor(item, f"{where}[{i}]") for i, item in enumerate(value))


def _media_type(document: dict[str, Any], content_type: str | None) -> str:
    declared = document.get("mediaType")
    if declared is not None and not isinstance(declared, str):
        raise _invalid("mediaType must be a string")
    header = (content_type or "").split(";")[0].strip() or None
    if declared and header and declared != header:
        raise _invalid(f"mediaType {declared!r} does not match Content-Type {header!r}")
    media_type = declared or header
    if media_type is None:
        media_type = (
            mediatypes.OCI_INDEX
            if "manifests" in document
            else (mediatypes.OCI_MANIFEST)
        )
    if media_type in mediatypes.SCHEMA1_TYPES:
        raise _invalid("Docker schema 1 manifests are not supported")
    return media_type


def parse(body: bytes, content_type: str | None) -> ParsedManifest:
    """Parse a pushed manifest, raising MANIFEST_INVALID on anything malformed."""
    if len(body) > MAX_MANIFEST_BYTES:
        raise RegistryError(
            errcodes.MANIFEST_TOO_LARGE,
            f"manifest is {len(body)} bytes, the limit is {MAX_MANIFEST_BYTES}",
        )
    try:
        document = json.loads(body)
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise _invalid(f"manifest is not valid JSON: {exc}") from exc
    if not isinstance(document, dict):
        raise _invalid("manifest must be a JSON object")
    if document.get("schemaVersion") != 2:
        raise _invalid("schemaVersion must be 2")

    media_type = _media_type(document, content_type)
    is_index = media_type in mediatypes.INDEX_TYPES or (
        media_type not in mediatypes.IMAGE_TYPES and "manifests" in document
    )
    subject = None
    if document.get("subject") is not None:
        subject = _descriptor(document["subject"], "subject").digest
    artifact_type = document.get("artifactType")
    if artifact_type is not None and not isinstance(artifact_type, str):
        raise _invalid("artifactType must be a string")
    annotations = document.get("annotations") or {}
    if not isinstance(annotations, dict):
        raise _invalid("annotations must be an object")

    if is_index:
        if not isinstance(document.get("manifests"), list):
            raise _invalid("an index must list its manifests")
        return ParsedManifest(
            media_type=media_type,
            children=_descriptors(document["manifests"], "manifests"),
            subject=subject,
            artifact_type=artifact_type,
            annotations=annotations,
        )

    if media_type in mediatypes.IMAGE_TYPES and "config" not in document:
        raise _invalid("an image manifest must have a config")
    blobs: list[Descriptor] = []
    if "config" in document:
        config = _descriptor(document["config"], "config")
        blobs.append(config)
        artifact_type = artifact_type or config.media_type
    blobs.extend(_descriptors(document.get("layers"), "layers"))
    return ParsedManifest(
        media_type=media_type,
        blobs=tuple(blobs),
        subject=subject,
        artifact_type=artifact_type,
        annotations=annotations,
    )
