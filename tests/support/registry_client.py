"""Build OCI content and push it over HTTP, for the functional tests.

The functional tests speak to the registry the way clients do, with plain httpx
requests. This module keeps the repetitive parts out of them: random blobs,
manifests and indexes as exact bytes, the two-step blob push, and the checks
every error answer shares.
"""

from __future__ import annotations

import hashlib
import json
import os
import uuid
from dataclasses import dataclass
from typing import Any

import httpx

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER = "application/vnd.oci.image.layer.v1.tar+gzip"
OCI_EMPTY = "application/vnd.oci.empty.v1+json"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_MANIFEST_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
DOCKER_CONFIG = "application/vnd.docker.container.image.v1+json"
DOCKER_LAYER = "application/vnd.docker.image.rootfs.diff.tar.gzip"

API_VERSION_HEADER = "Docker-Distribution-API-Version"

# The codes the distribution spec defines, and those clients also understand.
SPEC_ERROR_CODES = frozenset(
    {
        "BLOB_UNKNOWN",
        "BLOB_UPLOAD_INVALID",
        "BLOB_UPLOAD_UNKNOWN",
        "DIGEST_INVALID",
        "MANIFEST_BLOB_UNKNOWN",
        "MANIFEST_INVALID",
        "MANIFEST_UNKNOWN",
        "NAME_INVALID",
        "NAME_UNKNOWN",
        "SIZE_INVALID",
        "UNAUTHORIZED",
        "DENIED",
        "UNSUPPORTED",
        "TOOMANYREQUESTS",
    }
)
CLIENT_KNOWN_ERROR_CODES = SPEC_ERROR_CODES | {
    "TAG_INVALID",
    "RANGE_INVALID",
    "PAGINATION_NUMBER_INVALID",
    "UNAVAILABLE",
    "UNKNOWN",
}


def digest_of(data: bytes, algorithm: str = "sha256") -> str:
    return f"{algorithm}:{hashlib.new(algorithm, data).hexdigest()}"


def unique_repository(prefix: str = "functional") -> str:
    """A repository name that no other test on the shared registry uses."""
    return f"{prefix}/{uuid.uuid4().hex[:12]}"


def encode(document: dict[str, Any]) -> bytes:
    """Indented JSON, so that byte-identity checks would catch a re-encoding."""
    return json.dumps(document, indent=3).encode()


@dataclass(frozen=True)
class Blob:
    data: bytes
    media_type: str = OCI_LAYER

    @property
    def digest(self) -> str:
        return digest_of(self.data)

    def descriptor(self) -> dict[str, Any]:
        return {
            "mediaType": self.media_type,
            "digest": self.digest,
            "size": len(self.data),
        }


@dataclass(frozen=True)
class Manifest:
    content: bytes
    media_type: str

    @property
    def digest(self) -> str:
        return digest_of(self.content)

    @property
    def size(self) -> int:
        return len(self.content)

    def descriptor(self) -> dict[str, Any]:
        return {"mediaType": self.media_type, "digest": self.digest, "size": self.size}


def random_blob(size: int = 256, media_type: str = OCI_LAYER) -> Blob:
    return Blob(os.urandom(size), media_type)


def config_blob(media_type: str = OCI_CONFIG) -> Blob:
    """A small, unique image configuration."""
    document = {
        "architecture": "amd64",
        "os": "linux",
        "rootfs": {"type": "layers", "diff_ids": []},
        "author": uuid.uuid4().hex,
    }
    return Blob(encode(document), media_type)


def image_manifest(
    config: Blob,
    layers: list[Blob],
    *,
    media_type: str = OCI_MANIFEST,
    subject: Manifest | None = None,
    artifact_type: str | None = None,
    annotations: dict[str, str] | None = None,
) -> Manifest:
    document: dict[str, Any] = {
        "schemaVersion": 2,
        "mediaType": media_type,
        "config": config.descriptor(),
        "layers": [layer.descriptor() for layer in layers],
    }
    if artifact_type is not None:
        document["artifactType"] = artifact_type
    if subject is not None:
        document["subject"] = subject.descriptor()
    if annotations is not None:
        document["annotations"] = annotations
    return Manifest(encode(document), media_type)


def image_index(
    children: list[Manifest],
    *,
    media_type: str = OCI_INDEX,
    subject: Manifest | None = None,
    artifact_type: str | None = None,
    annotations: dict[str, str] | None = None,
) -> Manifest:
    entries = []
    for number, child in enumerate(children):
        platform = {"os": "linux", "architecture": f"arch{number}"}
        entries.append({**child.descriptor(), "platform": platform})
    document: dict[str, Any] = {
        "schemaVersion": 2,
        "mediaType": media_type,
        "manifests": entries,
    }
    if artifact_type is not None:
        document["artifactType"] = artifact_type
    if subject is not None:
        document["subject"] = subject.descriptor()
    if annotations is not None:
        document["annotations"] = annotations
    return Manifest(encode(document), media_type)


def error_codes(response: httpx.Response) -> list[str]:
    """The codes of an error answer, after checking the spec's envelope."""
    assert response.headers["content-type"].startswith("application/json")
    body = response.json()
    assert isinstance(body, dict), body
    assert isinstance(body.get("errors"), list), body
    assert body["errors"], body
    codes = []
    for entry in body["errors"]:
        assert isinstance(entry, dict), body
        assert isinstance(entry.get("code"), str), body
        assert isinstance(entry.get("message", ""), str), body
        codes.append(entry["code"])
    return codes


def assert_error(response: httpx.Response, status: int, *codes: str) -> None:
    """The answer has this status and its first error has one of these codes."""
    assert response.status_code == status, (response.status_code, response.text)
    assert response.headers.get(API_VERSION_HEADER) == "registry/2.0"
    found = error_codes(response)
    if codes:
        assert found[0] in codes, found


class RegistryClient:
    """The pushes most tests start from, each checked for success."""

    def __init__(self, http: httpx.Client) -> None:
        self.http = http

    def start_upload(self, repository: str, **params: str) -> httpx.Response:
        response = self.http.post(f"/v2/{repository}/blobs/uploads/", params=params)
        assert response.status_code == 202, response.text
        return response

    def push_blob(self, repository: str, blob: Blob) -> str:
        """Push a whole blob in one monolithic POST (the upload tests cover more)."""
        response = self.http.post(
            f"/v2/{repository}/blobs/uploads/",
            params={"digest": blob.digest},
            content=blob.data,
            headers={"Content-Type": "application/octet-stream"},
        )
        assert response.status_code == 201, response.text
        return blob.digest

    def push_manifest(
        self, repository: str, reference: str, manifest: Manifest
    ) -> httpx.Response:
        response = self.put_manifest(repository, reference, manifest)
        assert response.status_code == 201, response.text
        return response

    def put_manifest(
        self,
        repository: str,
        reference: str,
        manifest: Manifest,
        params: dict[str, Any] | None = None,
    ) -> httpx.Response:
        return self.http.put(
            f"/v2/{repository}/manifests/{reference}",
            content=manifest.content,
            headers={"Content-Type": manifest.media_type},
            params=params,
        )

    def push_image(
        self,
        repository: str,
        reference: str | None = None,
        *,
        media_type: str = OCI_MANIFEST,
        subject: Manifest | None = None,
        artifact_type: str | None = None,
        annotations: dict[str, str] | None = None,
    ) -> Manifest:
        """Push a config, one layer and their manifest (by digest if no tag)."""
        docker = media_type == DOCKER_MANIFEST
        config = config_blob(DOCKER_CONFIG if docker else OCI_CONFIG)
        layer = random_blob(512, DOCKER_LAYER if docker else OCI_LAYER)
        self.push_blob(repository, config)
        self.push_blob(repository, layer)
        manifest = image_manifest(
            config,
            [layer],
            media_type=media_type,
            subject=subject,
            artifact_type=artifact_type,
            annotations=annotations,
        )
        self.push_manifest(repository, reference or manifest.digest, manifest)
        return manifest

    def tags(self, repository: str) -> list[str]:
        response = self.http.get(f"/v2/{repository}/tags/list")
        assert response.status_code == 200, response.text
        tags: list[str] = response.json()["tags"]
        return tags
