"""skopeo copies, inspects, lists and deletes images in the registry.

skopeo moves manifests byte for byte when no conversion is asked for, so an
image that goes in from an OCI layout and comes back out must keep every digest.
"""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest

from tests.clients.tools import Registry, Skopeo
from tests.support.oci_layout import (
    MEDIA_TYPE_INDEX,
    MEDIA_TYPE_MANIFEST,
    OciLayout,
    write_image,
    write_multiarch_index,
)

pytestmark = pytest.mark.clients

MANIFEST_ACCEPT = f"{MEDIA_TYPE_MANIFEST}, {MEDIA_TYPE_INDEX}"


def remote(registry: Registry, repository: str, reference: str = "v1") -> str:
    separator = "@" if reference.startswith("sha256:") else ":"
    return f"docker://{registry.host}/{repository}{separator}{reference}"


def test_copy_in_and_out_keeps_manifest_and_layer_digests(
    skopeo: Skopeo, registry: Registry, repository: str, tmp_path: Path
) -> None:
    image = write_image(tmp_path / "source", "v1", seed=101)

    skopeo.copy(f"oci:{tmp_path / 'source'}:v1", remote(registry, repository))
    skopeo.copy(remote(registry, repository), f"oci:{tmp_path / 'copy'}:v1")

    copy = OciLayout(tmp_path / "copy")
    assert copy.resolve("v1")["digest"] == image.digest
    manifest = json.loads(copy.read_blob(image.digest))
    assert [layer["digest"] for layer in manifest["layers"]] == image.layer_digests
    assert manifest["config"]["digest"] == image.config.digest
    source = OciLayout(tmp_path / "source")
    for digest in [image.config.digest, *image.layer_digests]:
        assert copy.read_blob(digest) == source.read_blob(digest)


def test_copy_all_round_trips_multiarch_index(
    skopeo: Skopeo, registry: Registry, repository: str, tmp_path: Path
) -> None:
    index = write_multiarch_index(tmp_path / "source", "multi", seed=102)
    target = remote(registry, repository, "multi")

    skopeo.copy(f"oci:{tmp_path / 'source'}:multi", target, all_images=True)
    skopeo.copy(target, f"oci:{tmp_path / 'copy'}:multi", all_images=True)

    copy = OciLayout(tmp_path / "copy")
    assert copy.resolve("multi")["digest"] == index.digest
    assert copy.read_blob(index.digest) == index.index_bytes
    for image in index.images:
        assert copy.read_blob(image.digest) == image.manifest_bytes
        for digest in image.layer_digests:
            assert copy.read_blob(digest)


def test_copy_all_index_is_served_with_its_digest(
    skopeo: Skopeo,
    registry: Registry,
    repository: str,
    client: httpx.Client,
    tmp_path: Path,
) -> None:
    index = write_multiarch_index(tmp_path / "source", "multi", seed=103)
    target = remote(registry, repository, "multi")
    skopeo.copy(f"oci:{tmp_path / 'source'}:multi", target, all_images=True)

    response = client.get(
        f"/v2/{repository}/manifests/multi", headers={"Accept": MANIFEST_ACCEPT}
    )

    assert response.status_code == 200
    assert response.headers["Docker-Content-Digest"] == index.digest
    assert response.headers["Content-Type"] == MEDIA_TYPE_INDEX
    assert response.content == index.index_bytes
    arm64 = index.image_for("arm64")
    child = client.get(
        f"/v2/{repository}/manifests/{arm64.digest}",
        headers={"Accept": MANIFEST_ACCEPT},
    )
    assert child.status_code == 200
    assert child.content == arm64.manifest_bytes


def test_list_tags_returns_every_pushed_tag(
    skopeo: Skopeo, registry: Registry, repository: str, tmp_path: Path
) -> None:
    write_image(tmp_path / "source", "v1", seed=104)
    source = f"oci:{tmp_path / 'source'}:v1"
    for tag in ["v1", "v2", "latest"]:
        skopeo.copy(source, remote(registry, repository, tag))

    tags = skopeo.list_tags(f"docker://{registry.host}/{repository}")

    assert sorted(tags) == ["latest", "v1", "v2"]


def test_inspect_reports_digest_platform_and_layers(
    skopeo: Skopeo, registry: Registry, repository: str, tmp_path: Path
) -> None:
    image = write_image(tmp_path / "source", "v1", seed=105)
    skopeo.copy(f"oci:{tmp_path / 'source'}:v1", remote(registry, repository))

    report = skopeo.inspect(remote(registry, repository))

    assert report["Digest"] == image.digest
    assert report["Layers"] == image.layer_digests
    assert (report["Os"], report["Architecture"]) == image.platform
    assert report["RepoTags"] == ["v1"]


def test_inspect_raw_returns_pushed_manifest_bytes(
    skopeo: Skopeo, registry: Registry, repository: str, tmp_path: Path
) -> None:
    image = write_image(tmp_path / "source", "v1", seed=106)
    skopeo.copy(f"oci:{tmp_path / 'source'}:v1", remote(registry, repository))

    by_tag = skopeo.inspect_raw(remote(registry, repository))
    by_digest = skopeo.inspect_raw(remote(registry, repository, image.digest))

    assert by_tag == image.manifest_bytes
    assert by_digest == image.manifest_bytes


def test_delete_makes_manifest_unknown(
    skopeo: Skopeo,
    registry: Registry,
    repository: str,
    client: httpx.Client,
    tmp_path: Path,
) -> None:
    image = write_image(tmp_path / "source", "v1", seed=107)
    skopeo.copy(f"oci:{tmp_path / 'source'}:v1", remote(registry, repository))

    skopeo.delete(remote(registry, repository))

    headers = {"Accept": MANIFEST_ACCEPT}
    by_digest = client.get(
        f"/v2/{repository}/manifests/{image.digest}", headers=headers
    )
    assert by_digest.status_code == 404
    codes = [error["code"] for error in by_digest.json()["errors"]]
    assert codes == ["MANIFEST_UNKNOWN"]
    by_tag = client.get(f"/v2/{repository}/manifests/v1", headers=headers)
    assert by_tag.status_code == 404
