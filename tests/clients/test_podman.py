"""podman pushes images to the registry and pulls them back.

podman keeps layers uncompressed in its store and recompresses them on push, so
layer digests may differ from the source layout's. What must survive the trip
is the image id (the config digest) and the manifest digest podman pushed; and
every pushed layer must unpack to the diff id the config names.

podman runs as root here on a private vfs store; `podman run` is not exercised
(crun cannot raise RLIMIT_NOFILE on these machines), only the registry traffic.
"""

from __future__ import annotations

import gzip
import hashlib
from pathlib import Path

import httpx
import pytest

from tests.clients.tools import Podman, Registry
from tests.support.oci_layout import MEDIA_TYPE_MANIFEST, Image, write_image

pytestmark = pytest.mark.clients


def load_into_podman(podman: Podman, layout: Path, image: Image) -> str:
    """Pull an OCI layout into podman's store and return the image id."""
    image_id = podman("pull", "--quiet", f"oci:{layout}:v1")
    assert f"sha256:{image_id}" == image.config.digest
    return image_id


def push(podman: Podman, image_id: str, target: str, digest_file: Path) -> str:
    podman("tag", image_id, target)
    podman("push", "--tls-verify=false", "--digestfile", str(digest_file), target)
    return digest_file.read_text().strip()


def test_push_then_pull_keeps_image_id_and_digest(
    podman: Podman, registry: Registry, repository: str, tmp_path: Path
) -> None:
    image = write_image(tmp_path / "layout", "v1", seed=201)
    image_id = load_into_podman(podman, tmp_path / "layout", image)
    target = f"{registry.host}/{repository}:v1"
    pushed_digest = push(podman, image_id, target, tmp_path / "digest")

    podman("rmi", "--all", "--force")
    assert podman("images", "--quiet") == ""
    podman("pull", "--quiet", "--tls-verify=false", target)

    pulled = podman.inspect_image(target)
    assert pulled["Id"] == image_id
    assert pulled["Digest"] == pushed_digest
    assert f"{registry.host}/{repository}@{pushed_digest}" in pulled["RepoDigests"]


def test_pull_by_digest_gets_the_pushed_image(
    podman: Podman, registry: Registry, repository: str, tmp_path: Path
) -> None:
    image = write_image(tmp_path / "layout", "v1", seed=202, layer_count=2)
    image_id = load_into_podman(podman, tmp_path / "layout", image)
    pushed_digest = push(
        podman, image_id, f"{registry.host}/{repository}:v1", tmp_path / "digest"
    )
    podman("rmi", "--all", "--force")

    # No --tls-verify=false here: the registries.conf in CONTAINERS_REGISTRIES_CONF
    # is what marks the registry as plain HTTP.
    by_digest = f"{registry.host}/{repository}@{pushed_digest}"
    pulled_id = podman("pull", "--quiet", by_digest)

    assert pulled_id == image_id


def test_pushed_layers_unpack_to_the_config_diff_ids(
    podman: Podman,
    registry: Registry,
    repository: str,
    client: httpx.Client,
    tmp_path: Path,
) -> None:
    image = write_image(tmp_path / "layout", "v1", seed=203)
    image_id = load_into_podman(podman, tmp_path / "layout", image)
    pushed_digest = push(
        podman, image_id, f"{registry.host}/{repository}:v1", tmp_path / "digest"
    )

    response = client.get(
        f"/v2/{repository}/manifests/v1", headers={"Accept": MEDIA_TYPE_MANIFEST}
    )
    assert response.status_code == 200
    assert response.headers["Docker-Content-Digest"] == pushed_digest
    manifest = response.json()
    assert manifest["config"]["digest"] == image.config.digest

    unpacked = [
        blob_diff_id(client, repository, layer["digest"])
        for layer in manifest["layers"]
    ]
    assert unpacked == list(image.diff_ids)


def blob_diff_id(client: httpx.Client, repository: str, digest: str) -> str:
    response = client.get(f"/v2/{repository}/blobs/{digest}", follow_redirects=True)
    assert response.status_code == 200
    assert "sha256:" + hashlib.sha256(response.content).hexdigest() == digest
    return "sha256:" + hashlib.sha256(gzip.decompress(response.content)).hexdigest()
