"""Error answers: the JSON envelope, the API version header, 404s and 405s."""

from __future__ import annotations

import uuid

import httpx
import pytest

from tests.support.registry_client import (
    API_VERSION_HEADER,
    CLIENT_KNOWN_ERROR_CODES,
    OCI_MANIFEST,
    digest_of,
    error_codes,
)

UNKNOWN_DIGEST = digest_of(b"errors suite: never pushed")

# (method, path with {repo}, expected status, body) for requests that fail.
FAILING_REQUESTS = [
    ("GET", "/v2/{repo}/blobs/" + UNKNOWN_DIGEST, 404, None),
    ("GET", "/v2/{repo}/blobs/sha256:short", 400, None),
    ("GET", "/v2/{repo}/manifests/missing", 404, None),
    ("GET", "/v2/{repo}/manifests/" + UNKNOWN_DIGEST, 404, None),
    ("PUT", "/v2/{repo}/manifests/v1", 400, b"blablabla"),
    ("GET", "/v2/{repo}/tags/list", 404, None),
    ("GET", "/v2/{repo}/tags/list?n=many", 400, None),
    ("GET", "/v2/{repo}/blobs/uploads/" + uuid.uuid4().hex, 404, None),
    ("DELETE", "/v2/{repo}/blobs/" + UNKNOWN_DIGEST, 404, None),
    ("GET", "/v2/Not_Valid/tags/list", 400, None),
    ("DELETE", "/v2/", 405, None),
    ("GET", "/v2/{repo}/no-such-endpoint", 404, None),
]
FAILING_IDS = [
    "unknown-blob",
    "malformed-digest",
    "unknown-tag",
    "unknown-manifest-digest",
    "invalid-manifest",
    "unknown-repository-tags",
    "invalid-page-size",
    "unknown-upload",
    "delete-unknown-blob",
    "invalid-name",
    "wrong-method",
    "unknown-route",
]


def _send(
    client: httpx.Client, method: str, path: str, repo: str, body: bytes | None
) -> httpx.Response:
    headers = {"Content-Type": OCI_MANIFEST} if body is not None else None
    return client.request(method, path.format(repo=repo), content=body, headers=headers)


@pytest.mark.parametrize(
    ("method", "path", "status", "body"), FAILING_REQUESTS, ids=FAILING_IDS
)
def test_error_answers_use_the_json_envelope(
    client: httpx.Client,
    repo: str,
    method: str,
    path: str,
    status: int,
    body: bytes | None,
) -> None:
    response = _send(client, method, path, repo, body)

    assert response.status_code == status, response.text
    assert error_codes(response)


@pytest.mark.parametrize(
    ("method", "path", "status", "body"), FAILING_REQUESTS, ids=FAILING_IDS
)
def test_error_codes_are_ones_clients_know(
    client: httpx.Client,
    repo: str,
    method: str,
    path: str,
    status: int,
    body: bytes | None,
) -> None:
    # The spec: the code of a JSON error body MUST be one of its listed codes.
    response = _send(client, method, path, repo, body)

    assert set(error_codes(response)) <= CLIENT_KNOWN_ERROR_CODES


@pytest.mark.parametrize(
    ("method", "path", "status", "body"), FAILING_REQUESTS, ids=FAILING_IDS
)
def test_error_answers_carry_the_api_version_header(
    client: httpx.Client,
    repo: str,
    method: str,
    path: str,
    status: int,
    body: bytes | None,
) -> None:
    response = _send(client, method, path, repo, body)

    assert response.headers[API_VERSION_HEADER] == "registry/2.0"


@pytest.mark.parametrize(
    ("method", "path", "status"),
    [
        ("GET", "/v2/", 200),
        ("GET", "/v2/_catalog", 200),
        ("POST", "/v2/{repo}/blobs/uploads/", 202),
        ("GET", "/v2/{repo}/referrers/" + UNKNOWN_DIGEST, 200),
        ("HEAD", "/v2/{repo}/blobs/" + UNKNOWN_DIGEST, 404),
        ("HEAD", "/v2/{repo}/manifests/missing", 404),
    ],
)
def test_successes_and_head_misses_carry_the_api_version_header(
    client: httpx.Client, repo: str, method: str, path: str, status: int
) -> None:
    response = client.request(method, path.format(repo=repo))

    assert response.status_code == status
    assert response.headers[API_VERSION_HEADER] == "registry/2.0"


def test_head_miss_has_no_body(client: httpx.Client, repo: str) -> None:
    response = client.head(f"/v2/{repo}/manifests/missing")

    assert response.status_code == 404
    assert response.content == b""


# (method, path with {repo}, methods the resource does allow)
WRONG_METHODS = [
    ("DELETE", "/v2/", {"GET"}),
    ("POST", "/v2/_catalog", {"GET"}),
    ("PUT", "/v2/{repo}/blobs/" + UNKNOWN_DIGEST, {"GET", "HEAD", "DELETE"}),
    ("POST", "/v2/{repo}/tags/list", {"GET"}),
    ("PATCH", "/v2/{repo}/manifests/v1", {"GET", "HEAD", "PUT", "DELETE"}),
    ("PUT", "/v2/{repo}/referrers/" + UNKNOWN_DIGEST, {"GET"}),
]
WRONG_METHOD_IDS = [
    "delete-base",
    "post-catalog",
    "put-blob",
    "post-tags",
    "patch-manifest",
    "put-referrers",
]


@pytest.mark.parametrize(
    ("method", "path", "allowed"), WRONG_METHODS, ids=WRONG_METHOD_IDS
)
def test_wrong_method_returns_405_with_envelope(
    client: httpx.Client, repo: str, method: str, path: str, allowed: set[str]
) -> None:
    response = client.request(method, path.format(repo=repo))

    assert response.status_code == 405
    assert response.headers[API_VERSION_HEADER] == "registry/2.0"
    assert error_codes(response) == ["UNSUPPORTED"]


@pytest.mark.parametrize(
    ("method", "path", "allowed"), WRONG_METHODS, ids=WRONG_METHOD_IDS
)
def test_wrong_method_405_lists_the_allowed_methods(
    client: httpx.Client, repo: str, method: str, path: str, allowed: set[str]
) -> None:
    # RFC 9110, 15.5.6: the origin server MUST send Allow with a 405.
    response = client.request(method, path.format(repo=repo))

    assert response.status_code == 405
    listed = {m.strip() for m in response.headers.get("allow", "").split(",")}
    assert allowed <= listed, dict(response.headers)


def test_pathological_manifest_answer_keeps_envelope_and_api_version(
    registry_url: str, repo: str
) -> None:
    # JSON nested deeper than the parser's recursion limit: whatever the
    # status, the answer is a /v2 answer with the envelope and the header.
    with httpx.Client(base_url=registry_url, timeout=30.0) as http:
        response = http.put(
            f"/v2/{repo}/manifests/deep",
            content=b"[" * 100_000,
            headers={"Content-Type": OCI_MANIFEST},
        )

    assert response.headers.get(API_VERSION_HEADER) == "registry/2.0", (
        response.status_code,
        dict(response.headers),
    )
    assert error_codes(response)
