"""Pushing, pulling and deleting manifests and tags."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from dockyard.metadata import ManifestRecord, MetadataStore
from dockyard.oci import errcodes, manifest
from dockyard.oci.digest import DEFAULT_ALGORITHM, Digest, is_digest
from dockyard.oci.errcodes import RegistryError
from dockyard.oci.reference import TAG_PATTERN, validate_tag


@dataclass(frozen=True, slots=True)
class PushedManifest:
    digest: str
    subject: str | None


class ManifestService:
    def __init__(self, store: MetadataStore) -> None:
        self.store = store

    async def get(
        self, repository: str, reference: str, *, content: bool = True
    ) -> ManifestRecord:
        by_tag = not is_digest(reference)
        if by_tag:
            # No manifest can have a malformed tag: that is a plain miss.
            if not TAG_PATTERN.match(reference):
                raise RegistryError(
                    errcodes.MANIFEST_UNKNOWN, detail={"reference": reference}
                )
        else:
            reference = str(Digest.parse(reference))
        record = await self.store.get_manifest(
            repository, reference, by_tag=by_tag, content=content
        )
        if record is None:
            raise RegistryError(
                errcodes.MANIFEST_UNKNOWN, detail={"reference": reference}
            )
        return record

    async def put(
        self,
        repository: str,
        reference: str,
        body: bytes,
        content_type: str | None,
        extra_tags: Sequence[str] = (),
    ) -> PushedManifest:
        """Validate and store a manifest under a tag or its digest.

        `extra_tags` are the `?tag=` parameters that the spec allows alongside a
        digest reference, so one request can tag a manifest several times.
        """
        tags = [validate_tag(tag) for tag in extra_tags]
        if is_digest(reference):
            expected = Digest.parse(reference)
            digest = Digest.of(body, expected.algorithm)
            if digest != expected:
                raise RegistryError(
                    errcodes.DIGEST_INVALID,
                    f"manifest digest is {digest}, not {expected}",
                    detail={"digest": str(expected)},
                )
        else:
            tags.insert(0, validate_tag(reference))
            digest = Digest.of(body, DEFAULT_ALGORITHM)

        parsed = manifest.parse(body, content_type)
        await self.store.put_manifest(repository, str(digest), parsed, body, tags)
        return PushedManifest(str(digest), parsed.subject)

    async def delete(self, repository: str, reference: str) -> None:
        """Delete by digest (the manifest and its tags) or by tag (the tag only)."""
        if is_digest(reference):
            digest = str(Digest.parse(reference))
            if not await self.store.delete_manifest(repository, digest):
                raise RegistryError(
                    errcodes.MANIFEST_UNKNOWN, detail={"reference": digest}
                )
            return
        validate_tag(reference)
        if not await self.store.delete_tag(repository, reference):
            raise RegistryError(
                errcodes.MANIFEST_UNKNOWN, detail={"reference": reference}
            )
