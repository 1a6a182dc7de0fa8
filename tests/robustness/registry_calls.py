"""Registry calls that the robustness tests share, spoken over plain HTTP.

Helpers return the raw response wherever a test has to judge the outcome itself,
and assert only on steps that must succeed for the scenario to mean anything.
"""

from __future__ import annotations

import hashlib
import json
import ssl
import time
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

import httpx

MIB = 1024 * 1024
TIMEOUT = 30.0
MANIFEST_TYPE = "application/vnd.oci.image.manifest.v1+json"
CONFIG_TYPE = "application/vnd.oci.image.config.v1+json"
LAYER_TYPE = "application/vnd.oci.image.layer.v1.tar"


def sha256_digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


# Every new client would otherwise load the CA bundle again (about 60 ms); the
# tests speak plain HTTP on loopback, and some open a client per request.
_TLS_CONTEXT = ssl.create_default_context()


def connect(url: str) -> httpx.Client:
    return httpx.Client(base_url=url, timeout=TIMEOUT, verify=_TLS_CONTEXT)


def describe(response: httpx.Response) -> str:
    """One line that says what was asked and what came back, for assertions."""
    request = response.request
    body = response.content[:400].decode(errors="replace")
    return f"{request.method} {request.url} -> {response.status_code} {body!r}"


def error_codes(response: httpx.Response) -> list[str]:
    """The codes of a spec error envelope; fails when the body is not one."""
    assert response.headers.get("content-type", "").startswith("application/json"), (
        describe(response)
    )
    envelope = response.json()
    assert isinstance(envelope, dict), describe(response)
    errors = envelope.get("errors")
    assert isinstance(errors, list) and errors, describe(response)
    for error in errors:
        assert isinstance(error, dict), describe(response)
        assert isinstance(error.get("code"), str), describe(response)
        assert isinstance(error.get("message"), str), describe(response)
    return [str(error["code"]) for error in errors]


def assert_outcome(
    response: httpx.Response, success: Iterable[int], errors: dict[int, str]
) -> None:
    """A success status, or a clean envelope whose status and code are expected."""
    if response.status_code in set(success):
        return
    assert response.status_code in errors, describe(response)
    assert errors[response.status_code] in error_codes(response), describe(response)


# -- blobs -------------------------------------------------------------------


def push_monolithic(
    client: httpx.Client, repository: str, data: bytes
) -> httpx.Response:
    return client.post(
        f"/v2/{repository}/blobs/uploads/",
        params={"digest": sha256_digest(data)},
        content=data,
        headers={"Content-Type": "application/octet-stream"},
    )


def start_upload(client: httpx.Client, repository: str) -> httpx.Response:
    response = client.post(f"/v2/{repository}/blobs/uploads/")
    assert response.status_code == 202, describe(response)
    assert response.headers.get("location"), describe(response)
    return response


def patch_chunk(
    client: httpx.Client, location: str, chunk: bytes, offset: int
) -> httpx.Response:
    return client.patch(
        location,
        content=chunk,
        headers={
            "Content-Range": f"{offset}-{offset + len(chunk) - 1}",
            "Content-Type": "application/octet-stream",
        },
    )


def finish_upload(
    client: httpx.Client, location: str, digest: str, last: bytes = b"", offset: int = 0
) -> httpx.Response:
    headers = {"Content-Type": "application/octet-stream"}
    if last:
        headers["Content-Range"] = f"{offset}-{offset + len(last) - 1}"
    return client.put(
        location, params={"digest": digest}, content=last, headers=headers
    )


def push_chunked(
    client: httpx.Client, repository: str, data: bytes, chunk_size: int
) -> httpx.Response:
    """Every chunk by PATCH, then an empty PUT; each PATCH must be accepted."""
    location = start_upload(client, repository).headers["location"]
    for offset in range(0, len(data), chunk_size):
        response = patch_chunk(
            client, location, data[offset : offset + chunk_size], offset
        )
        assert response.status_code == 202, describe(response)
        location = response.headers["location"]
    return finish_upload(client, location, sha256_digest(data))


def fetch_blob(client: httpx.Client, repository: str, digest: str) -> bytes | None:
    """The blob's bytes, or None on a clean BLOB_UNKNOWN."""
    response = client.get(f"/v2/{repository}/blobs/{digest}")
    if response.status_code == 404:
        assert "BLOB_UNKNOWN" in error_codes(response), describe(response)
        return None
    assert response.status_code == 200, describe(response)
    return response.content


def blob_files(data_dir: Path, digest: str) -> list[Path]:
    """Every file under blobs/ named after the digest's hex."""
    hex_part = digest.split(":", 1)[1]
    return sorted((data_dir / "blobs").rglob(hex_part))


def upload_files(data_dir: Path) -> list[Path]:
    uploads = data_dir / "uploads"
    return (
        sorted(p for p in uploads.rglob("*") if p.is_file()) if uploads.exists() else []
    )


# -- manifests ---------------------------------------------------------------


def image_manifest(
    config: bytes, layers: Sequence[bytes], annotations: dict[str, str] | None = None
) -> bytes:
    document: dict[str, Any] = {
        "schemaVersion": 2,
        "mediaType": MANIFEST_TYPE,
        "config": _descriptor(CONFIG_TYPE, config),
        "layers": [_descriptor(LAYER_TYPE, layer) for layer in layers],
    }
    if annotations:
        document["annotations"] = annotations
    return json.dumps(document, sort_keys=True).encode()


def _descriptor(media_type: str, data: bytes) -> dict[str, Any]:
    return {"mediaType": media_type, "digest": sha256_digest(data), "size": len(data)}


def put_manifest(
    client: httpx.Client, repository: str, reference: str, body: bytes
) -> httpx.Response:
    return client.put(
        f"/v2/{repository}/manifests/{reference}",
        content=body,
        headers={"Content-Type": MANIFEST_TYPE},
    )


def fetch_manifest(
    client: httpx.Client, repository: str, reference: str
) -> bytes | None:
    """The manifest's bytes, or None on a clean MANIFEST_UNKNOWN."""
    response = client.get(
        f"/v2/{repository}/manifests/{reference}", headers={"Accept": MANIFEST_TYPE}
    )
    if response.status_code == 404:
        assert "MANIFEST_UNKNOWN" in error_codes(response), describe(response)
        return None
    assert response.status_code == 200, describe(response)
    assert response.headers["docker-content-digest"] == sha256_digest(
        response.content
    ), describe(response)
    return response.content


# -- waiting -----------------------------------------------------------------


def wait_until(condition: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.01)
