"""Blob uploads: sessions, chunks, completion, cancel and cross-repository mounts."""

from __future__ import annotations

import re
import uuid

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

OCTETS = {"Content-Type": "application/octet-stream"}


def _upload_prefix(repo: str) -> str:
    return f"/v2/{repo}/blobs/uploads/"


def _path(location: str) -> str:
    """The path of a Location, which the spec allows to be absolute or relative."""
    return httpx.URL(location).path


def _patch(
    client: httpx.Client, location: str, data: bytes, start: int | None = None
) -> httpx.Response:
    headers = dict(OCTETS)
    if start is not None:
        headers["Content-Range"] = f"{start}-{start + len(data) - 1}"
    return client.patch(location, content=data, headers=headers)


def _assert_blob(client: httpx.Client, repo: str, blob: Blob) -> None:
    response = client.get(f"/v2/{repo}/blobs/{blob.digest}")
    assert response.status_code == 200
    assert response.content == blob.data


def test_post_returns_202_with_session_headers(client: httpx.Client, repo: str) -> None:
    response = client.post(f"/v2/{repo}/blobs/uploads/")

    assert response.status_code == 202
    assert _path(response.headers["location"]).startswith(_upload_prefix(repo))
    assert re.fullmatch(r"0-\d+", response.headers["range"])
    assert response.headers["docker-upload-uuid"]


def test_monolithic_post_with_digest_returns_201(
    client: httpx.Client, repo: str
) -> None:
    blob = random_blob(300)

    response = client.post(
        f"/v2/{repo}/blobs/uploads/",
        params={"digest": blob.digest},
        content=blob.data,
        headers=OCTETS,
    )

    assert response.status_code == 201
    assert _path(response.headers["location"]) == f"/v2/{repo}/blobs/{blob.digest}"
    assert response.headers["docker-content-digest"] == blob.digest
    _assert_blob(client, repo, blob)


def test_monolithic_post_with_wrong_digest_returns_400_digest_invalid(
    client: httpx.Client, repo: str
) -> None:
    blob = random_blob(300)
    claimed = digest_of(b"something else")

    response = client.post(
        f"/v2/{repo}/blobs/uploads/", params={"digest": claimed}, content=blob.data
    )

    assert_error(response, 400, "DIGEST_INVALID")
    assert client.head(f"/v2/{repo}/blobs/{claimed}").status_code == 404
    assert client.head(f"/v2/{repo}/blobs/{blob.digest}").status_code == 404


def test_post_then_put_with_body_returns_201(
    client: httpx.Client, oci: RegistryClient, repo: str
) -> None:
    blob = random_blob(1000)
    location = oci.start_upload(repo).headers["location"]

    response = client.put(
        location, params={"digest": blob.digest}, content=blob.data, headers=OCTETS
    )

    assert response.status_code == 201
    assert _path(response.headers["location"]) == f"/v2/{repo}/blobs/{blob.digest}"
    assert response.headers["docker-content-digest"] == blob.digest
    _assert_blob(client, repo, blob)


def test_streamed_patch_then_empty_put_returns_201(
    client: httpx.Client, oci: RegistryClient, repo: str
) -> None:
    blob = random_blob(4096)
    location = oci.start_upload(repo).headers["location"]

    patched = _patch(client, location, blob.data)
    assert patched.status_code == 202
    assert patched.headers["range"] == f"0-{len(blob.data) - 1}"

    done = client.put(patched.headers["location"], params={"digest": blob.digest})
    assert done.status_code == 201
    _assert_blob(client, repo, blob)


def test_chunked_upload_with_content_range(
    client: httpx.Client, oci: RegistryClient, repo: str
) -> None:
    blob = random_blob(3000)
    first, second = blob.data[:1200], blob.data[1200:]
    location = oci.start_upload(repo).headers["location"]

    response = _patch(client, location, first, start=0)
    assert response.status_code == 202
    assert response.headers["range"] == "0-1199"
    assert _path(response.headers["location"]).startswith(_upload_prefix(repo))

    response = _patch(client, response.headers["location"], second, start=1200)
    assert response.status_code == 202
    assert response.headers["range"] == "0-2999"

    done = client.put(response.headers["location"], params={"digest": blob.digest})
    assert done.status_code == 201
    assert done.headers["docker-content-digest"] == blob.digest
    _assert_blob(client, repo, blob)


def test_chunked_upload_without_content_range(
    client: httpx.Client, oci: RegistryClient, repo: str
) -> None:
    blob = random_blob(2500)
    location = oci.start_upload(repo).headers["location"]

    for start in range(0, len(blob.data), 1000):
        response = _patch(client, location, blob.data[start : start + 1000])
        assert response.status_code == 202
        assert response.headers["range"] == f"0-{min(start + 1000, 2500) - 1}"
        location = response.headers["location"]

    done = client.put(location, params={"digest": blob.digest})
    assert done.status_code == 201
    _assert_blob(client, repo, blob)


def test_patch_out_of_order_returns_416(
    client: httpx.Client, oci: RegistryClient, repo: str
) -> None:
    location = oci.start_upload(repo).headers["location"]

    response = _patch(client, location, b"x" * 10, start=100)

    assert response.status_code == 416
    assert "range" in response.headers
    assert "location" in response.headers


def test_patch_retrying_an_accepted_chunk_returns_416_with_current_range(
    client: httpx.Client, oci: RegistryClient, repo: str
) -> None:
    blob = random_blob(2000)
    location = oci.start_upload(repo).headers["location"]
    assert _patch(client, location, blob.data[:800], start=0).status_code == 202

    retried = _patch(client, location, blob.data[:800], start=0)
    assert retried.status_code == 416
    assert retried.headers["range"] == "0-799"
    assert _path(retried.headers["location"]).startswith(_upload_prefix(repo))

    gap = _patch(client, location, blob.data[900:], start=900)
    assert gap.status_code == 416
    assert gap.headers["range"] == "0-799"

    # The rejected chunks left the session as it was: it still completes.
    rest = _patch(client, location, blob.data[800:], start=800)
    assert rest.status_code == 202
    done = client.put(rest.headers["location"], params={"digest": blob.digest})
    assert done.status_code == 201
    _assert_blob(client, repo, blob)


def test_patch_with_malformed_content_range_returns_416_with_range(
    client: httpx.Client, oci: RegistryClient, repo: str
) -> None:
    location = oci.start_upload(repo).headers["location"]

    response = client.patch(
        location, content=b"abc", headers={**OCTETS, "Content-Range": "garbage"}
    )

    # The spec lists an invalid Content-Range among the 416 cases, and every
    # 416 on an upload carries the Range the client must resume from.
    assert response.status_code == 416
    assert response.headers.get("range") == "0-0"
    assert "location" in response.headers


def test_put_with_last_chunk_returns_201(
    client: httpx.Client, oci: RegistryClient, repo: str
) -> None:
    blob = random_blob(1500)
    location = oci.start_upload(repo).headers["location"]
    response = _patch(client, location, blob.data[:1000], start=0)
    assert response.status_code == 202

    done = client.put(
        response.headers["location"],
        params={"digest": blob.digest},
        content=blob.data[1000:],
        headers={**OCTETS, "Content-Range": "1000-1499"},
    )

    assert done.status_code == 201
    assert _path(done.headers["location"]) == f"/v2/{repo}/blobs/{blob.digest}"
    _assert_blob(client, repo, blob)


def test_put_with_out_of_order_last_chunk_returns_416(
    client: httpx.Client, oci: RegistryClient, repo: str
) -> None:
    blob = random_blob(1500)
    location = oci.start_upload(repo).headers["location"]
    assert _patch(client, location, blob.data[:1000], start=0).status_code == 202

    response = client.put(
        location,
        params={"digest": blob.digest},
        content=blob.data[1200:],
        headers={**OCTETS, "Content-Range": "1200-1499"},
    )

    assert response.status_code == 416
    assert response.headers["range"] == "0-999"
    assert client.head(f"/v2/{repo}/blobs/{blob.digest}").status_code == 404


def test_put_with_wrong_digest_returns_400_digest_invalid(
    client: httpx.Client, oci: RegistryClient, repo: str
) -> None:
    blob = random_blob(700)
    claimed = digest_of(b"not these bytes")
    location = oci.start_upload(repo).headers["location"]

    response = client.put(
        location, params={"digest": claimed}, content=blob.data, headers=OCTETS
    )

    assert_error(response, 400, "DIGEST_INVALID")
    assert client.head(f"/v2/{repo}/blobs/{claimed}").status_code == 404


def test_put_without_digest_does_not_complete_the_upload(
    client: httpx.Client, oci: RegistryClient, repo: str
) -> None:
    blob = random_blob(700)
    location = oci.start_upload(repo).headers["location"]

    response = client.put(location, content=blob.data, headers=OCTETS)

    assert_error(response, 400, "DIGEST_INVALID", "BLOB_UPLOAD_INVALID")
    assert client.head(f"/v2/{repo}/blobs/{blob.digest}").status_code == 404


def test_upload_status_returns_204_with_range(
    client: httpx.Client, oci: RegistryClient, repo: str
) -> None:
    location = oci.start_upload(repo).headers["location"]
    assert _patch(client, location, b"y" * 321, start=0).status_code == 202

    response = client.get(location)

    assert response.status_code == 204
    assert response.headers["range"] == "0-320"
    assert _path(response.headers["location"]).startswith(_upload_prefix(repo))
    assert response.headers["docker-upload-uuid"]


def test_cancel_upload_returns_204_then_404(
    client: httpx.Client, oci: RegistryClient, repo: str
) -> None:
    location = oci.start_upload(repo).headers["location"]
    assert _patch(client, location, b"z" * 64).status_code == 202

    assert client.delete(location).status_code == 204

    assert_error(client.get(location), 404, "BLOB_UPLOAD_UNKNOWN")
    assert_error(_patch(client, location, b"more"), 404, "BLOB_UPLOAD_UNKNOWN")
    assert_error(client.delete(location), 404, "BLOB_UPLOAD_UNKNOWN")


@pytest.mark.parametrize("method", ["GET", "PATCH", "PUT", "DELETE"])
def test_unknown_upload_returns_404_blob_upload_unknown(
    client: httpx.Client, repo: str, method: str
) -> None:
    url = f"/v2/{repo}/blobs/uploads/{uuid.uuid4().hex}"
    params = {"digest": digest_of(b"")} if method == "PUT" else None

    response = client.request(method, url, params=params)

    assert_error(response, 404, "BLOB_UPLOAD_UNKNOWN")


def test_upload_session_belongs_to_its_repository(
    client: httpx.Client, oci: RegistryClient, repo: str
) -> None:
    upload_id = oci.start_upload(repo).headers["docker-upload-uuid"]
    other = unique_repository()

    response = client.get(f"/v2/{other}/blobs/uploads/{upload_id}")

    assert_error(response, 404, "BLOB_UPLOAD_UNKNOWN")


def test_cross_repository_mount_returns_201(
    client: httpx.Client, oci: RegistryClient, repo: str
) -> None:
    blob = random_blob(900)
    source = unique_repository()
    oci.push_blob(source, blob)

    response = client.post(
        f"/v2/{repo}/blobs/uploads/", params={"mount": blob.digest, "from": source}
    )

    assert response.status_code == 201
    assert _path(response.headers["location"]) == f"/v2/{repo}/blobs/{blob.digest}"
    assert response.headers["docker-content-digest"] == blob.digest
    _assert_blob(client, repo, blob)


def test_mount_from_repository_without_the_blob_falls_back_to_202(
    client: httpx.Client, oci: RegistryClient, repo: str
) -> None:
    blob = random_blob(900)
    source = unique_repository()
    oci.push_blob(source, random_blob(10))

    response = client.post(
        f"/v2/{repo}/blobs/uploads/", params={"mount": blob.digest, "from": source}
    )

    assert response.status_code == 202
    location = response.headers["location"]
    assert _path(location).startswith(_upload_prefix(repo))
    # The fallback is an ordinary session that takes the blob.
    done = client.put(location, params={"digest": blob.digest}, content=blob.data)
    assert done.status_code == 201
    _assert_blob(client, repo, blob)


def test_mount_without_from_returns_202_session(
    client: httpx.Client, oci: RegistryClient, repo: str
) -> None:
    blob = random_blob(100)
    oci.push_blob(unique_repository(), blob)

    response = client.post(f"/v2/{repo}/blobs/uploads/", params={"mount": blob.digest})

    assert response.status_code == 202
    assert _path(response.headers["location"]).startswith(_upload_prefix(repo))


@pytest.mark.parametrize(
    ("mount", "source"),
    [
        (digest_of(b"anything"), "Not-A/Valid_Name/"),
        ("sha256:nope", "functional/some-repo"),
    ],
    ids=["invalid-from", "invalid-mount-digest"],
)
def test_mount_with_invalid_arguments_falls_back_to_202(
    client: httpx.Client, repo: str, mount: str, source: str
) -> None:
    # The spec: "If a mount fails due to invalid repository or digest
    # arguments, the registry will fall back to the standard upload behavior".
    response = client.post(
        f"/v2/{repo}/blobs/uploads/", params={"mount": mount, "from": source}
    )

    assert response.status_code == 202, response.text
    assert _path(response.headers["location"]).startswith(_upload_prefix(repo))


def test_sha512_upload_is_verified_with_sha512_digest(
    client: httpx.Client, oci: RegistryClient, repo: str
) -> None:
    data = random_blob(5000).data
    digest = digest_of(data, "sha512")
    location = oci.start_upload(repo, **{"digest-algorithm": "sha512"}).headers[
        "location"
    ]

    response = _patch(client, location, data[:2000], start=0)
    assert response.status_code == 202
    response = _patch(client, response.headers["location"], data[2000:], start=2000)
    assert response.status_code == 202
    done = client.put(response.headers["location"], params={"digest": digest})

    assert done.status_code == 201, done.text
    assert done.headers["docker-content-digest"] == digest
    fetched = client.get(f"/v2/{repo}/blobs/{digest}")
    assert fetched.status_code == 200
    assert fetched.content == data
    assert fetched.headers["docker-content-digest"] == digest


def test_sha512_upload_rejects_a_wrong_sha512_digest(
    client: httpx.Client, oci: RegistryClient, repo: str
) -> None:
    location = oci.start_upload(repo, **{"digest-algorithm": "sha512"}).headers[
        "location"
    ]
    claimed = digest_of(b"other bytes", "sha512")

    response = client.put(location, params={"digest": claimed}, content=b"payload")

    assert_error(response, 400, "DIGEST_INVALID")


def test_unsupported_digest_algorithm_parameter_returns_400(
    client: httpx.Client, repo: str
) -> None:
    response = client.post(
        f"/v2/{repo}/blobs/uploads/", params={"digest-algorithm": "md5"}
    )

    assert_error(response, 400, "UNSUPPORTED", "DIGEST_INVALID")
