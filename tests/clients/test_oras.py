"""The ORAS Python SDK pushes and pulls artifacts; referrers find them.

ORAS pushes arbitrary files as OCI artifacts: the manifest's layers are the
files, its config an empty JSON object or a typed config blob. Referrers are
artifacts whose manifest has a `subject`; the OCI 1.1 referrers API lists them.
The SDK can set `subject` but not `artifactType`, so one referrer is pushed
with the SDK (its artifact type falls back to the config media type) and one
with plain HTTP requests (explicit `artifactType`, empty config).

The referrers assertions need an OCI 1.1 registry: CNCF Distribution 2.8 has
no referrers API, so they fail there by design.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.clients.tools import Registry, require_module
from tests.support.oci_layout import MEDIA_TYPE_INDEX, MEDIA_TYPE_MANIFEST

pytestmark = pytest.mark.clients

SBOM_TYPE = "application/vnd.dockyard.test.sbom.v1+json"
SIGNATURE_TYPE = "application/vnd.dockyard.test.signature.v1"
SIGNATURE_LAYER_TYPE = "application/vnd.dockyard.test.signature.v1+bin"
EMPTY_TYPE = "application/vnd.oci.empty.v1+json"
EMPTY_JSON = b"{}"
KIND_ANNOTATION = "org.dockyard.test.kind"


def sha256_digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def write_random_file(path: Path, size: int) -> Path:
    # Fresh bytes every run: ORAS skips blobs the registry already has, and
    # these tests want the upload path exercised.
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(os.urandom(size))
    return path


def oras_push(oras_client: Any, target: str, files: list[Path], **options: Any) -> str:
    """Push files with the SDK; return the manifest digest the registry reports."""
    response = oras_client.push(
        target=target,
        files=[str(path) for path in files],
        disable_path_validation=True,
        quiet=True,
        **options,
    )
    assert response.status_code == 201, response.text
    digest: str = response.headers["Docker-Content-Digest"]
    return digest


def test_push_then_pull_returns_the_same_files(
    oras_client: Any, registry: Registry, repository: str, tmp_path: Path
) -> None:
    files = [
        write_random_file(tmp_path / "in" / "payload.bin", 200 * 1024),
        write_random_file(tmp_path / "in" / "notes.txt", 300),
    ]
    target = f"{registry.host}/{repository}:v1"
    oras_push(oras_client, target, files)

    pulled = oras_client.pull(target=target, outdir=str(tmp_path / "out"))

    assert sorted(Path(path).name for path in pulled) == ["notes.txt", "payload.bin"]
    for source in files:
        assert (tmp_path / "out" / source.name).read_bytes() == source.read_bytes()
    assert oras_client.get_tags(f"{registry.host}/{repository}") == ["v1"]


def test_chunked_push_stores_the_whole_blob(
    oras_client: Any,
    registry: Registry,
    repository: str,
    client: httpx.Client,
    tmp_path: Path,
) -> None:
    payload = write_random_file(tmp_path / "in" / "chunked.bin", 300 * 1024 + 17)
    target = f"{registry.host}/{repository}:v1"

    # 64 KiB chunks: one POST, five PATCHes, then the closing PUT.
    oras_push(oras_client, target, [payload], do_chunked=True, chunk_size=64 * 1024)

    digest = sha256_digest(payload.read_bytes())
    blob = client.get(f"/v2/{repository}/blobs/{digest}", follow_redirects=True)
    assert blob.status_code == 200
    assert blob.content == payload.read_bytes()
    pulled = oras_client.pull(target=target, outdir=str(tmp_path / "out"))
    assert Path(pulled[0]).read_bytes() == payload.read_bytes()


# --- referrers -----------------------------------------------------------------


def get_manifest(client: httpx.Client, repository: str, reference: str) -> bytes:
    response = client.get(
        f"/v2/{repository}/manifests/{reference}",
        headers={"Accept": MEDIA_TYPE_MANIFEST},
    )
    assert response.status_code == 200, response.text
    return response.content


def push_subject(
    oras_client: Any,
    client: httpx.Client,
    registry: Registry,
    repository: str,
    tmp_path: Path,
) -> dict[str, Any]:
    """Push a plain artifact and return its descriptor, for use as a subject."""
    files = [write_random_file(tmp_path / "subject" / "image.bin", 4096)]
    digest = oras_push(oras_client, f"{registry.host}/{repository}:v1", files)
    size = len(get_manifest(client, repository, digest))
    return {"mediaType": MEDIA_TYPE_MANIFEST, "digest": digest, "size": size}


def push_sbom_with_oras(
    oras_client: Any,
    registry: Registry,
    repository: str,
    subject: dict[str, Any],
    tmp_path: Path,
) -> str:
    oras_oci = require_module("oras.oci")
    config = tmp_path / "sbom" / "config.json"
    config.parent.mkdir(parents=True, exist_ok=True)
    config.write_text('{"format": "test-sbom"}')
    return oras_push(
        oras_client,
        f"{registry.host}/{repository}:sbom",
        [write_random_file(tmp_path / "sbom" / "sbom.json", 1024)],
        subject=oras_oci.Subject(**subject),
        manifest_config=f"{config}:{SBOM_TYPE}",
        manifest_annotations={KIND_ANNOTATION: "sbom"},
    )


def upload_blob(client: httpx.Client, repository: str, data: bytes) -> str:
    """POST then PUT: the two-step monolithic upload every registry supports."""
    digest = sha256_digest(data)
    started = client.post(f"/v2/{repository}/blobs/uploads/")
    assert started.status_code == 202, started.text
    location = httpx.URL(started.headers["Location"])
    finished = client.put(
        location.copy_merge_params({"digest": digest}),
        content=data,
        headers={"Content-Type": "application/octet-stream"},
    )
    assert finished.status_code == 201, finished.text
    return digest


def push_signature_with_http(
    client: httpx.Client, repository: str, subject: dict[str, Any]
) -> httpx.Response:
    """Push an artifact manifest with artifactType and subject, by digest."""
    signature = os.urandom(256)
    layer_digest = upload_blob(client, repository, signature)
    upload_blob(client, repository, EMPTY_JSON)
    manifest = {
        "schemaVersion": 2,
        "mediaType": MEDIA_TYPE_MANIFEST,
        "artifactType": SIGNATURE_TYPE,
        "config": {
            "mediaType": EMPTY_TYPE,
            "digest": sha256_digest(EMPTY_JSON),
            "size": len(EMPTY_JSON),
        },
        "layers": [
            {
                "mediaType": SIGNATURE_LAYER_TYPE,
                "digest": layer_digest,
                "size": len(signature),
            }
        ],
        "subject": subject,
        "annotations": {KIND_ANNOTATION: "signature"},
    }
    body = json.dumps(manifest).encode()
    response = client.put(
        f"/v2/{repository}/manifests/{sha256_digest(body)}",
        content=body,
        headers={"Content-Type": MEDIA_TYPE_MANIFEST},
    )
    assert response.status_code == 201, response.text
    return response


@dataclass(frozen=True)
class Referred:
    """A subject artifact and the digests of the two artifacts that refer to it."""

    subject: dict[str, Any]
    sbom: str
    signature: str
    signature_push: httpx.Response


@pytest.fixture
def referred(
    oras_client: Any,
    registry: Registry,
    repository: str,
    client: httpx.Client,
    tmp_path: Path,
) -> Referred:
    subject = push_subject(oras_client, client, registry, repository, tmp_path)
    sbom = push_sbom_with_oras(oras_client, registry, repository, subject, tmp_path)
    signature = push_signature_with_http(client, repository, subject)
    return Referred(
        subject=subject,
        sbom=sbom,
        signature=signature.headers["Docker-Content-Digest"],
        signature_push=signature,
    )


def referrers(
    client: httpx.Client, repository: str, digest: str, **params: str
) -> httpx.Response:
    response = client.get(f"/v2/{repository}/referrers/{digest}", params=params)
    assert response.status_code == 200, response.text
    assert response.headers["Content-Type"].startswith(MEDIA_TYPE_INDEX)
    document = response.json()
    assert document["schemaVersion"] == 2
    assert document["mediaType"] == MEDIA_TYPE_INDEX
    return response


def test_manifest_push_with_subject_returns_oci_subject_header(
    referred: Referred,
) -> None:
    headers = referred.signature_push.headers

    assert headers.get("OCI-Subject") == referred.subject["digest"]


def test_referrers_lists_every_artifact_with_its_type(
    referred: Referred, repository: str, client: httpx.Client
) -> None:
    response = referrers(client, repository, referred.subject["digest"])

    listed = {entry["digest"]: entry for entry in response.json()["manifests"]}
    assert set(listed) == {referred.sbom, referred.signature}
    sbom = listed[referred.sbom]
    assert sbom["mediaType"] == MEDIA_TYPE_MANIFEST
    assert sbom["size"] == len(get_manifest(client, repository, referred.sbom))
    # No artifactType in the ORAS manifest: the config media type stands in.
    assert sbom["artifactType"] == SBOM_TYPE
    assert sbom["annotations"][KIND_ANNOTATION] == "sbom"
    signature = listed[referred.signature]
    assert signature["artifactType"] == SIGNATURE_TYPE
    assert signature["annotations"][KIND_ANNOTATION] == "signature"


def test_referrers_filter_by_artifact_type(
    referred: Referred, repository: str, client: httpx.Client
) -> None:
    subject = referred.subject["digest"]

    response = referrers(client, repository, subject, artifactType=SIGNATURE_TYPE)

    assert response.headers.get("OCI-Filters-Applied") == "artifactType"
    listed = [entry["digest"] for entry in response.json()["manifests"]]
    assert listed == [referred.signature]


def test_referrers_of_manifest_without_referrers_is_empty_index(
    oras_client: Any,
    registry: Registry,
    repository: str,
    client: httpx.Client,
    tmp_path: Path,
) -> None:
    subject = push_subject(oras_client, client, registry, repository, tmp_path)

    response = referrers(client, repository, subject["digest"])

    assert response.json()["manifests"] == []


def test_referrers_of_unknown_digest_is_empty_index_not_404(
    oras_client: Any,
    registry: Registry,
    repository: str,
    client: httpx.Client,
    tmp_path: Path,
) -> None:
    push_subject(oras_client, client, registry, repository, tmp_path)
    unknown = sha256_digest(os.urandom(32))

    response = referrers(client, repository, unknown)

    assert response.json()["manifests"] == []
