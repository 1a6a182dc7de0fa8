"""Manifests and tags: `/v2/<name>/manifests/<reference>`."""

from __future__ import annotations

import json

import httpx
import pytest

from tests.support.registry_client import (
    DOCKER_CONFIG,
    DOCKER_LAYER,
    DOCKER_MANIFEST,
    DOCKER_MANIFEST_LIST,
    OCI_CONFIG,
    OCI_INDEX,
    OCI_LAYER,
    OCI_MANIFEST,
    Blob,
    Manifest,
    RegistryClient,
    assert_error,
    config_blob,
    digest_of,
    encode,
    image_index,
    image_manifest,
    random_blob,
    unique_repository,
)

MAX_MANIFEST_BYTES = 4 * 1024 * 1024
# The reference the conformance suite uses for a manifest that does not exist.
CONFORMANCE_MISSING_REFERENCE = ".INVALID_MANIFEST_NAME"


def _unpushed_manifest(oci: RegistryClient, repo: str, kind: str) -> Manifest:
    """Push everything a manifest of this kind needs, but not the manifest."""
    if kind in ("oci-image", "docker-image"):
        docker = kind == "docker-image"
        config = config_blob(DOCKER_CONFIG if docker else OCI_CONFIG)
        layer = random_blob(300, DOCKER_LAYER if docker else OCI_LAYER)
        oci.push_blob(repo, config)
        oci.push_blob(repo, layer)
        media_type = DOCKER_MANIFEST if docker else OCI_MANIFEST
        return image_manifest(config, [layer], media_type=media_type)
    child_type = OCI_MANIFEST if kind == "oci-index" else DOCKER_MANIFEST
    children = [oci.push_image(repo, media_type=child_type) for _ in range(2)]
    index_type = OCI_INDEX if kind == "oci-index" else DOCKER_MANIFEST_LIST
    return image_index(children, media_type=index_type)


def _pushed_config(oci: RegistryClient, repo: str) -> Blob:
    config = config_blob()
    oci.push_blob(repo, config)
    return config


def _assert_served(
    response: httpx.Response, manifest: Manifest, *, body: bool = True
) -> None:
    assert response.status_code == 200, response.text
    assert response.content == (manifest.content if body else b"")
    assert response.headers["content-type"] == manifest.media_type
    assert response.headers["docker-content-digest"] == manifest.digest
    assert response.headers["content-length"] == str(manifest.size)


def _raw(
    client: httpx.Client, method: str, target: str, content: bytes | None = None
) -> httpx.Response:
    """Send a request-target as written, without httpx resolving `..`."""
    return client.request(
        method, "/v2/", content=content, extensions={"target": target.encode()}
    )


KINDS = ["oci-image", "docker-image", "oci-index", "docker-list"]


@pytest.mark.parametrize("kind", KINDS)
def test_manifest_round_trips_byte_identical(
    client: httpx.Client, oci: RegistryClient, repo: str, kind: str
) -> None:
    manifest = _unpushed_manifest(oci, repo, kind)

    pushed = oci.push_manifest(repo, "v1", manifest)

    assert httpx.URL(pushed.headers["location"]).path == (
        f"/v2/{repo}/manifests/{manifest.digest}"
    )
    assert pushed.headers["docker-content-digest"] == manifest.digest
    _assert_served(client.get(f"/v2/{repo}/manifests/v1"), manifest)
    _assert_served(client.get(f"/v2/{repo}/manifests/{manifest.digest}"), manifest)


@pytest.mark.parametrize("kind", KINDS)
def test_head_manifest_returns_headers_without_body(
    client: httpx.Client, oci: RegistryClient, repo: str, kind: str
) -> None:
    manifest = _unpushed_manifest(oci, repo, kind)
    oci.push_manifest(repo, "v1", manifest)

    for reference in ("v1", manifest.digest):
        response = client.head(f"/v2/{repo}/manifests/{reference}")
        _assert_served(response, manifest, body=False)


@pytest.mark.parametrize("reference", ["missing", digest_of(b"no such manifest")])
def test_get_unknown_manifest_returns_404_manifest_unknown(
    client: httpx.Client, oci: RegistryClient, repo: str, reference: str
) -> None:
    oci.push_image(repo, "present")

    assert_error(
        client.get(f"/v2/{repo}/manifests/{reference}"), 404, "MANIFEST_UNKNOWN"
    )
    assert client.head(f"/v2/{repo}/manifests/{reference}").status_code == 404


@pytest.mark.parametrize("method", ["GET", "HEAD"])
def test_get_nonexistent_manifest_with_conformance_reference_returns_404(
    client: httpx.Client, oci: RegistryClient, repo: str, method: str
) -> None:
    # The conformance suite probes a missing manifest with this reference,
    # which is not a valid tag, and requires 404 for GET and HEAD.
    oci.push_image(repo, "present")

    response = client.request(
        method, f"/v2/{repo}/manifests/{CONFORMANCE_MISSING_REFERENCE}"
    )

    assert response.status_code == 404, response.text


def test_manifest_is_not_visible_from_another_repository(
    client: httpx.Client, oci: RegistryClient, repo: str
) -> None:
    manifest = oci.push_image(repo, "v1")
    other = unique_repository()
    oci.push_image(other, "v1")

    response = client.get(f"/v2/{other}/manifests/{manifest.digest}")

    assert_error(response, 404, "MANIFEST_UNKNOWN")


def test_put_manifest_by_digest_returns_201(
    client: httpx.Client, oci: RegistryClient, repo: str
) -> None:
    manifest = _unpushed_manifest(oci, repo, "oci-image")

    pushed = oci.push_manifest(repo, manifest.digest, manifest)

    assert pushed.headers["docker-content-digest"] == manifest.digest
    assert httpx.URL(pushed.headers["location"]).path == (
        f"/v2/{repo}/manifests/{manifest.digest}"
    )
    _assert_served(client.get(f"/v2/{repo}/manifests/{manifest.digest}"), manifest)
    assert oci.tags(repo) == []


def test_put_manifest_by_sha512_digest_returns_201(
    client: httpx.Client, oci: RegistryClient, repo: str
) -> None:
    manifest = _unpushed_manifest(oci, repo, "oci-image")
    digest = digest_of(manifest.content, "sha512")

    pushed = oci.put_manifest(repo, digest, manifest)

    assert pushed.status_code == 201, pushed.text
    assert pushed.headers["docker-content-digest"] == digest
    response = client.get(f"/v2/{repo}/manifests/{digest}")
    assert response.status_code == 200
    assert response.content == manifest.content
    assert response.headers["docker-content-digest"] == digest


def test_put_manifest_digest_mismatch_returns_400_digest_invalid(
    client: httpx.Client, oci: RegistryClient, repo: str
) -> None:
    manifest = _unpushed_manifest(oci, repo, "oci-image")
    wrong = digest_of(manifest.content + b"\n")

    response = oci.put_manifest(repo, wrong, manifest)

    assert_error(response, 400, "DIGEST_INVALID")
    assert client.get(f"/v2/{repo}/manifests/{wrong}").status_code == 404


def test_put_manifest_with_malformed_digest_reference_returns_400(
    oci: RegistryClient, repo: str
) -> None:
    manifest = _unpushed_manifest(oci, repo, "oci-image")

    response = oci.put_manifest(repo, "sha256:totallywrong", manifest)

    assert_error(response, 400, "DIGEST_INVALID")


@pytest.mark.parametrize("missing", ["config", "layer"])
def test_put_manifest_with_unknown_blob_returns_400_manifest_blob_unknown(
    client: httpx.Client, oci: RegistryClient, repo: str, missing: str
) -> None:
    config, layer = config_blob(), random_blob(100)
    oci.push_blob(repo, layer if missing == "config" else config)
    manifest = image_manifest(config, [layer])

    response = oci.put_manifest(repo, "v1", manifest)

    assert_error(response, 400, "MANIFEST_BLOB_UNKNOWN")
    assert client.get(f"/v2/{repo}/manifests/v1").status_code == 404


def test_put_index_with_missing_child_is_rejected(
    client: httpx.Client, oci: RegistryClient, repo: str
) -> None:
    present = oci.push_image(repo)
    absent = image_manifest(config_blob(), [random_blob(10)])
    index = image_index([present, absent])

    response = oci.put_manifest(repo, "multi", index)

    assert response.status_code in (400, 404), response.text
    assert_error(response, response.status_code, "MANIFEST_UNKNOWN")
    assert client.get(f"/v2/{repo}/manifests/multi").status_code == 404


def test_put_manifest_with_no_layers_is_accepted(
    client: httpx.Client, oci: RegistryClient, repo: str
) -> None:
    manifest = image_manifest(_pushed_config(oci, repo), [])

    oci.push_manifest(repo, "emptylayer", manifest)

    _assert_served(client.get(f"/v2/{repo}/manifests/emptylayer"), manifest)


@pytest.mark.parametrize(
    "body",
    [
        b"blablabla",
        b"[]",
        b"{}",
        b"\xff\xfe not utf-8",
        json.dumps({"schemaVersion": 2, "mediaType": OCI_MANIFEST}).encode(),
        json.dumps(
            {
                "schemaVersion": 2,
                "mediaType": OCI_MANIFEST,
                "config": {"mediaType": "x/y", "digest": "sha256:nope", "size": 1},
                "layers": [],
            }
        ).encode(),
        json.dumps(
            {"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": 3}
        ).encode(),
    ],
    ids=[
        "not-json",
        "array",
        "empty-object",
        "not-utf8",
        "no-config",
        "bad-descriptor",
        "manifests-not-list",
    ],
)
def test_put_malformed_manifest_returns_400_manifest_invalid(
    oci: RegistryClient, repo: str, body: bytes
) -> None:
    manifest = Manifest(body, OCI_MANIFEST)

    response = oci.put_manifest(repo, "broken", manifest)

    assert_error(response, 400, "MANIFEST_INVALID")


def test_put_deeply_nested_manifest_returns_400_not_500(
    registry_url: str, repo: str
) -> None:
    # A fresh client: a server failure here may close the connection.
    with httpx.Client(base_url=registry_url, timeout=30.0) as http:
        response = http.put(
            f"/v2/{repo}/manifests/deep",
            content=b"[" * 100_000,
            headers={"Content-Type": OCI_MANIFEST},
        )

    assert_error(response, 400, "MANIFEST_INVALID")


def test_put_manifest_with_mismatched_content_type_returns_400_manifest_invalid(
    oci: RegistryClient, repo: str
) -> None:
    manifest = _unpushed_manifest(oci, repo, "oci-image")
    mislabelled = Manifest(manifest.content, DOCKER_MANIFEST)

    response = oci.put_manifest(repo, "v1", mislabelled)

    assert_error(response, 400, "MANIFEST_INVALID")


def _padded_manifest(oci: RegistryClient, repo: str, size: int) -> Manifest:
    config = _pushed_config(oci, repo)
    base = len(image_manifest(config, [], annotations={"pad": ""}).content)
    padding = "p" * (size - base)
    manifest = image_manifest(config, [], annotations={"pad": padding})
    assert manifest.size == size
    return manifest


def test_put_manifest_of_4_mib_is_accepted(
    client: httpx.Client, oci: RegistryClient, repo: str
) -> None:
    manifest = _padded_manifest(oci, repo, MAX_MANIFEST_BYTES)

    oci.push_manifest(repo, "big", manifest)

    _assert_served(client.get(f"/v2/{repo}/manifests/big"), manifest)


def test_put_manifest_over_4_mib_returns_413(
    client: httpx.Client, oci: RegistryClient, repo: str
) -> None:
    manifest = _padded_manifest(oci, repo, MAX_MANIFEST_BYTES + 1)

    response = oci.put_manifest(repo, "huge", manifest)

    assert_error(response, 413)
    assert client.get(f"/v2/{repo}/manifests/huge").status_code == 404


def test_put_by_digest_with_tag_parameters_creates_each_tag(
    client: httpx.Client, oci: RegistryClient, repo: str
) -> None:
    manifest = _unpushed_manifest(oci, repo, "oci-image")

    response = oci.put_manifest(
        repo, manifest.digest, manifest, params={"tag": ["alpha", "beta"]}
    )

    assert response.status_code == 201, response.text
    assert response.headers["docker-content-digest"] == manifest.digest
    for tag in ("alpha", "beta"):
        _assert_served(client.get(f"/v2/{repo}/manifests/{tag}"), manifest)
    assert oci.tags(repo) == ["alpha", "beta"]


def test_pushing_a_tag_again_moves_it(
    client: httpx.Client, oci: RegistryClient, repo: str
) -> None:
    oci.push_image(repo, "latest")
    newer = oci.push_image(repo, "latest")

    _assert_served(client.get(f"/v2/{repo}/manifests/latest"), newer)
    assert oci.tags(repo) == ["latest"]


def test_delete_manifest_by_digest_removes_its_tags(
    client: httpx.Client, oci: RegistryClient, repo: str
) -> None:
    manifest = oci.push_image(repo, "one")
    oci.push_manifest(repo, "two", manifest)
    keeper = oci.push_image(repo, "three")

    response = client.delete(f"/v2/{repo}/manifests/{manifest.digest}")

    assert response.status_code == 202
    assert_error(
        client.get(f"/v2/{repo}/manifests/{manifest.digest}"), 404, "MANIFEST_UNKNOWN"
    )
    assert client.head(f"/v2/{repo}/manifests/{manifest.digest}").status_code == 404
    assert_error(client.get(f"/v2/{repo}/manifests/one"), 404, "MANIFEST_UNKNOWN")
    assert_error(client.get(f"/v2/{repo}/manifests/two"), 404, "MANIFEST_UNKNOWN")
    assert oci.tags(repo) == ["three"]
    _assert_served(client.get(f"/v2/{repo}/manifests/three"), keeper)


def test_delete_manifest_by_tag_keeps_the_manifest(
    client: httpx.Client, oci: RegistryClient, repo: str
) -> None:
    manifest = oci.push_image(repo, "gone")
    oci.push_manifest(repo, "kept", manifest)

    response = client.delete(f"/v2/{repo}/manifests/gone")

    assert response.status_code == 202
    assert_error(client.get(f"/v2/{repo}/manifests/gone"), 404, "MANIFEST_UNKNOWN")
    _assert_served(client.get(f"/v2/{repo}/manifests/kept"), manifest)
    _assert_served(client.get(f"/v2/{repo}/manifests/{manifest.digest}"), manifest)
    assert oci.tags(repo) == ["kept"]


@pytest.mark.parametrize("reference", ["never", digest_of(b"never pushed")])
def test_delete_unknown_manifest_returns_404(
    client: httpx.Client, oci: RegistryClient, repo: str, reference: str
) -> None:
    oci.push_image(repo, "present")

    response = client.delete(f"/v2/{repo}/manifests/{reference}")

    assert_error(response, 404, "MANIFEST_UNKNOWN")


@pytest.mark.parametrize("tag", ["-leading-dash", ".leading-dot", "x" * 129, "a+b"])
def test_put_invalid_tag_returns_400_tag_invalid(
    client: httpx.Client, oci: RegistryClient, repo: str, tag: str
) -> None:
    manifest = _unpushed_manifest(oci, repo, "oci-image")

    response = oci.put_manifest(repo, tag, manifest)

    assert_error(response, 400, "TAG_INVALID")
    assert oci.tags(repo) == []


def test_put_invalid_tag_parameter_returns_400_tag_invalid(
    oci: RegistryClient, repo: str
) -> None:
    manifest = _unpushed_manifest(oci, repo, "oci-image")

    response = oci.put_manifest(
        repo, manifest.digest, manifest, params={"tag": ["good", "-bad"]}
    )

    assert_error(response, 400, "TAG_INVALID")
    assert oci.tags(repo) == []


def test_longest_valid_tag_is_accepted(
    client: httpx.Client, oci: RegistryClient, repo: str
) -> None:
    tag = "_" + "Tag.9-x" * 18 + "a"
    assert len(tag) == 128

    manifest = oci.push_image(repo, tag)

    _assert_served(client.get(f"/v2/{repo}/manifests/{tag}"), manifest)


INVALID_NAMES = [
    "Upper/case",
    "-leading",
    "trailing-",
    "double//slash",
    "under_score_",
    "a/../b",
    "a/%2e%2e/b",
    "%2e%2e/etc",
    "a/./b",
    "a" * 300,
]


@pytest.mark.parametrize("name", INVALID_NAMES)
@pytest.mark.parametrize(
    ("method", "suffix"),
    [
        ("GET", "tags/list"),
        ("GET", "manifests/latest"),
        ("PUT", "manifests/latest"),
        ("POST", "blobs/uploads/"),
        ("GET", f"blobs/{digest_of(b'x')}"),
        ("GET", f"referrers/{digest_of(b'x')}"),
    ],
)
def test_invalid_repository_name_returns_400_name_invalid(
    client: httpx.Client, name: str, method: str, suffix: str
) -> None:
    content = encode({"schemaVersion": 2}) if method == "PUT" else None

    response = _raw(client, method, f"/v2/{name}/{suffix}", content=content)

    assert_error(response, 400, "NAME_INVALID")


@pytest.mark.parametrize("suffix", ["a/b/c", "blobs/manifests/tags/referrers"])
def test_nested_repository_names_work_everywhere(
    client: httpx.Client, oci: RegistryClient, suffix: str
) -> None:
    repo = f"{unique_repository()}/{suffix}"
    subject = oci.push_image(repo, "v1")
    referrer = oci.push_image(repo, subject=subject, artifact_type="x/nested")

    _assert_served(client.get(f"/v2/{repo}/manifests/v1"), subject)
    listing = client.get(f"/v2/{repo}/tags/list").json()
    assert listing == {"name": repo, "tags": ["v1"]}
    referrers = client.get(f"/v2/{repo}/referrers/{subject.digest}").json()
    assert [d["digest"] for d in referrers["manifests"]] == [referrer.digest]

    config_digest = json.loads(subject.content)["config"]["digest"]
    assert client.head(f"/v2/{repo}/blobs/{config_digest}").status_code == 200
    assert client.delete(f"/v2/{repo}/manifests/v1").status_code == 202
    assert client.delete(f"/v2/{repo}/blobs/{config_digest}").status_code == 202
