"""Blob downloads, ranges and deletes: `/v2/<name>/blobs/<digest>`."""

from __future__ import annotations

import httpx
import pytest

from tests.support.registry_client import (
    Blob,
    RegistryClient,
    assert_error,
    digest_of,
    random_blob,
    unique_repository,
)

BLOB_SIZE = 2048
UNKNOWN_DIGEST = digest_of(b"never pushed anywhere")


@pytest.fixture
def pushed(oci: RegistryClient, repo: str) -> Blob:
    blob = random_blob(BLOB_SIZE)
    oci.push_blob(repo, blob)
    return blob


def test_get_blob_returns_bytes_with_digest_and_length(
    client: httpx.Client, repo: str, pushed: Blob
) -> None:
    response = client.get(f"/v2/{repo}/blobs/{pushed.digest}")

    assert response.status_code == 200
    assert response.content == pushed.data
    assert response.headers["docker-content-digest"] == pushed.digest
    assert response.headers["content-length"] == str(BLOB_SIZE)


def test_head_blob_returns_headers_without_body(
    client: httpx.Client, repo: str, pushed: Blob
) -> None:
    response = client.head(f"/v2/{repo}/blobs/{pushed.digest}")

    assert response.status_code == 200
    assert response.content == b""
    assert response.headers["docker-content-digest"] == pushed.digest
    assert response.headers["content-length"] == str(BLOB_SIZE)
    assert response.headers["content-type"]
    assert response.headers["accept-ranges"] == "bytes"


def test_get_unknown_blob_returns_404_blob_unknown(
    client: httpx.Client, repo: str, pushed: Blob
) -> None:
    response = client.get(f"/v2/{repo}/blobs/{UNKNOWN_DIGEST}")

    assert_error(response, 404, "BLOB_UNKNOWN")


def test_head_unknown_blob_returns_404_without_body(
    client: httpx.Client, repo: str, pushed: Blob
) -> None:
    response = client.head(f"/v2/{repo}/blobs/{UNKNOWN_DIGEST}")

    assert response.status_code == 404
    assert response.content == b""


def test_blob_is_not_visible_from_another_repository(
    client: httpx.Client, pushed: Blob
) -> None:
    other = unique_repository()

    response = client.get(f"/v2/{other}/blobs/{pushed.digest}")

    assert_error(response, 404, "BLOB_UNKNOWN")


@pytest.mark.parametrize(
    ("header", "first", "last"),
    [
        ("bytes=500-999", 500, 999),
        ("bytes=500-", 500, BLOB_SIZE - 1),
        ("bytes=-500", BLOB_SIZE - 500, BLOB_SIZE - 1),
        ("bytes=0-0", 0, 0),
        # A last position past the end is clamped to the last byte (RFC 9110).
        ("bytes=2000-9999", 2000, BLOB_SIZE - 1),
    ],
)
def test_range_request_returns_206_with_the_slice(
    client: httpx.Client, repo: str, pushed: Blob, header: str, first: int, last: int
) -> None:
    response = client.get(
        f"/v2/{repo}/blobs/{pushed.digest}", headers={"Range": header}
    )

    assert response.status_code == 206
    assert response.content == pushed.data[first : last + 1]
    assert response.headers["content-range"] == f"bytes {first}-{last}/{BLOB_SIZE}"
    assert response.headers["content-length"] == str(last - first + 1)
    assert response.headers["docker-content-digest"] == pushed.digest


@pytest.mark.parametrize("header", [f"bytes={BLOB_SIZE}-", "bytes=5000-6000"])
def test_unsatisfiable_range_returns_416(
    client: httpx.Client, repo: str, pushed: Blob, header: str
) -> None:
    response = client.get(
        f"/v2/{repo}/blobs/{pushed.digest}", headers={"Range": header}
    )

    assert response.status_code == 416
    assert response.headers["content-range"] == f"bytes */{BLOB_SIZE}"


@pytest.mark.parametrize(
    "digest",
    [
        "sha256:abc",
        "notadigest",
        "sha256:" + "A" * 64,
        "sha256:" + "g" * 64,
        "sha256:" + "0" * 63,
        "sha512:" + "0" * 64,
    ],
)
@pytest.mark.parametrize("method", ["GET", "DELETE"])
def test_malformed_digest_returns_400_digest_invalid(
    client: httpx.Client, repo: str, pushed: Blob, method: str, digest: str
) -> None:
    response = client.request(method, f"/v2/{repo}/blobs/{digest}")

    assert_error(response, 400, "DIGEST_INVALID")


def test_head_with_malformed_digest_returns_400(
    client: httpx.Client, repo: str, pushed: Blob
) -> None:
    response = client.head(f"/v2/{repo}/blobs/sha256:abc")

    assert response.status_code == 400


@pytest.mark.parametrize(
    "digest", ["md5:d41d8cd98f00b204e9800998ecf8427e", "blake9:" + "0" * 64]
)
def test_unknown_digest_algorithm_returns_400(
    client: httpx.Client, repo: str, pushed: Blob, digest: str
) -> None:
    response = client.get(f"/v2/{repo}/blobs/{digest}")

    assert_error(response, 400, "UNSUPPORTED", "DIGEST_INVALID")


def test_delete_blob_returns_202_then_404(
    client: httpx.Client, repo: str, pushed: Blob
) -> None:
    url = f"/v2/{repo}/blobs/{pushed.digest}"

    deleted = client.delete(url)
    assert deleted.status_code == 202

    assert_error(client.get(url), 404, "BLOB_UNKNOWN")
    assert client.head(url).status_code == 404
    assert_error(client.delete(url), 404, "BLOB_UNKNOWN")


def test_delete_unknown_blob_returns_404(
    client: httpx.Client, repo: str, pushed: Blob
) -> None:
    response = client.delete(f"/v2/{repo}/blobs/{UNKNOWN_DIGEST}")

    assert_error(response, 404, "BLOB_UNKNOWN")


def test_delete_blob_leaves_other_repositories_alone(
    client: httpx.Client, oci: RegistryClient, repo: str, pushed: Blob
) -> None:
    other = unique_repository()
    oci.push_blob(other, pushed)

    assert client.delete(f"/v2/{repo}/blobs/{pushed.digest}").status_code == 202

    response = client.get(f"/v2/{other}/blobs/{pushed.digest}")
    assert response.status_code == 200
    assert response.content == pushed.data


def test_sha512_blob_is_served_under_its_digest(
    client: httpx.Client, repo: str
) -> None:
    data = random_blob(777).data
    digest = digest_of(data, "sha512")
    pushed = client.post(
        f"/v2/{repo}/blobs/uploads/", params={"digest": digest}, content=data
    )
    assert pushed.status_code == 201, pushed.text

    response = client.get(f"/v2/{repo}/blobs/{digest}")

    assert response.status_code == 200
    assert response.content == data
    assert response.headers["docker-content-digest"] == digest
    assert response.headers["content-length"] == str(len(data))


def test_empty_blob_round_trips(
    client: httpx.Client, oci: RegistryClient, repo: str
) -> None:
    empty = Blob(b"")
    oci.push_blob(repo, empty)

    response = client.get(f"/v2/{repo}/blobs/{empty.digest}")

    assert response.status_code == 200
    assert response.content == b""
    assert response.headers["content-length"] == "0"
    assert response.headers["docker-content-digest"] == empty.digest
