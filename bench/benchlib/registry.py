"""A minimal OCI distribution client over http.client, for loopback only.

http.client keeps the client's own cost low and predictable: uploads are sent in
1 MiB blocks straight from the file, downloads are read into one reused buffer.
"""

from __future__ import annotations

import base64
import hashlib
import http.client
import json
from dataclasses import dataclass
from urllib.parse import urlencode, urlsplit

from benchlib import BenchError
from benchlib.blobs import MIB, BlobFile, blob_digest

HOST = "127.0.0.1"
BLOCK = MIB
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER = "application/vnd.oci.image.layer.v1.tar+gzip"
MANIFEST_ACCEPT = ", ".join(
    [OCI_MANIFEST, "application/vnd.docker.distribution.manifest.v2+json"]
)


@dataclass(frozen=True)
class Credentials:
    """A user name and password, sent as HTTP Basic."""

    username: str
    password: str

    def basic(self) -> str:
        pair = f"{self.username}:{self.password}".encode()
        return "Basic " + base64.b64encode(pair).decode("ascii")


@dataclass(frozen=True)
class Token:
    """A bearer token from the token endpoint and its lifetime in seconds."""

    value: str
    expires_in: float


@dataclass(frozen=True)
class Pulled:
    """What a blob download delivered."""

    size: int
    digest: str


class RegistryClient:
    """Talks to one registry on 127.0.0.1; a new connection per operation.

    ``authorization``, when given, is sent as the Authorization header of every
    request except ``ping``.
    """

    def __init__(
        self, port: int, timeout: float = 120.0, authorization: str | None = None
    ) -> None:
        self.port = port
        self.timeout = timeout
        self.authorization = authorization

    def base_url(self) -> str:
        return f"http://{HOST}:{self.port}"

    def _connect(self) -> http.client.HTTPConnection:
        return http.client.HTTPConnection(
            HOST, self.port, timeout=self.timeout, blocksize=BLOCK
        )

    def _headers(self, headers: dict[str, str] | None = None) -> dict[str, str]:
        merged = dict(headers or {})
        if self.authorization:
            merged["Authorization"] = self.authorization
        return merged

    def ping(self) -> int:
        """Status of GET /v2/; raises OSError while nothing listens."""
        conn = self._connect()
        try:
            conn.request("GET", "/v2/")
            response = conn.getresponse()
            response.read()
            return response.status
        finally:
            conn.close()

    def start_upload(self, repo: str) -> str:
        """POST an upload session and return its location as path and query."""
        conn = self._connect()
        try:
            conn.request(
                "POST", f"/v2/{repo}/blobs/uploads/", body=b"", headers=self._headers()
            )
            response = conn.getresponse()
            response.read()
            location = response.getheader("Location")
        finally:
            conn.close()
        if response.status != 202 or not location:
            raise BenchError(f"upload POST answered {response.status}, no session")
        parts = urlsplit(location)
        return parts.path + (f"?{parts.query}" if parts.query else "")

    def push_blob_file(self, repo: str, blob: BlobFile) -> None:
        """Upload a blob with POST then one PUT carrying the whole body."""
        target = _with_digest(self.start_upload(repo), blob.digest)
        headers = self._headers(
            {
                "Content-Type": "application/octet-stream",
                "Content-Length": str(blob.size),
            }
        )
        conn = self._connect()
        try:
            with blob.path.open("rb") as body:
                conn.request("PUT", target, body=body, headers=headers)
            response = conn.getresponse()
            response.read()
        finally:
            conn.close()
        _expect_created(response, blob.digest, "blob PUT")

    def push_blob_bytes(self, repo: str, data: bytes) -> str:
        """Upload a small blob held in memory; returns its digest."""
        digest = blob_digest(data)
        target = _with_digest(self.start_upload(repo), digest)
        headers = self._headers({"Content-Type": "application/octet-stream"})
        conn = self._connect()
        try:
            conn.request("PUT", target, body=data, headers=headers)
            response = conn.getresponse()
            response.read()
        finally:
            conn.close()
        _expect_created(response, digest, "blob PUT")
        return digest

    def pull_blob(self, repo: str, digest: str) -> Pulled:
        """Download a blob, hashing the bytes as they arrive."""
        conn = self._connect()
        try:
            conn.request("GET", f"/v2/{repo}/blobs/{digest}", headers=self._headers())
            response = conn.getresponse()
            if response.status != 200:
                response.read()
                raise BenchError(f"blob GET answered {response.status}")
            return _drain(response)
        finally:
            conn.close()

    def put_manifest(self, repo: str, tag: str, body: bytes) -> str:
        """PUT an OCI image manifest under ``tag``; returns its digest."""
        digest = blob_digest(body)
        conn = self._connect()
        try:
            conn.request(
                "PUT",
                f"/v2/{repo}/manifests/{tag}",
                body=body,
                headers=self._headers({"Content-Type": OCI_MANIFEST}),
            )
            response = conn.getresponse()
            response.read()
        finally:
            conn.close()
        _expect_created(response, digest, "manifest PUT")
        return digest

    def head_manifest(self, repo: str, tag: str) -> tuple[int, str | None]:
        """HEAD a manifest by tag: status and Docker-Content-Digest."""
        conn = self._connect()
        try:
            conn.request(
                "HEAD",
                f"/v2/{repo}/manifests/{tag}",
                headers=self._headers({"Accept": MANIFEST_ACCEPT}),
            )
            response = conn.getresponse()
            response.read()
            return response.status, response.getheader("Docker-Content-Digest")
        finally:
            conn.close()

    def fetch_token(self, service: str, scope: str) -> Token:
        """GET /auth/token for ``scope``, authenticated as this client."""
        query = urlencode({"service": service, "scope": scope})
        conn = self._connect()
        try:
            conn.request("GET", f"/auth/token?{query}", headers=self._headers())
            response = conn.getresponse()
            body = response.read()
        finally:
            conn.close()
        if response.status != 200:
            raise BenchError(f"token GET answered {response.status}")
        return _parse_token(body)

    def push_small_image(self, repo: str, tag: str, layer: bytes) -> str:
        """Push a config blob, one layer and the manifest tying them together."""
        layer_digest = self.push_blob_bytes(repo, layer)
        config = _image_config(layer_digest)
        config_digest = self.push_blob_bytes(repo, config)
        manifest = {
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": _descriptor(OCI_CONFIG, config_digest, len(config)),
            "layers": [_descriptor(OCI_LAYER, layer_digest, len(layer))],
        }
        body = json.dumps(manifest, separators=(",", ":")).encode()
        return self.put_manifest(repo, tag, body)


def _with_digest(location: str, digest: str) -> str:
    separator = "&" if "?" in location else "?"
    return f"{location}{separator}digest={digest}"


def _expect_created(response: http.client.HTTPResponse, digest: str, what: str) -> None:
    if response.status != 201:
        raise BenchError(f"{what} answered {response.status}, expected 201")
    answered = response.getheader("Docker-Content-Digest")
    if answered != digest:
        raise BenchError(f"{what} gave Docker-Content-Digest {answered!r}")


def _parse_token(body: bytes) -> Token:
    try:
        document = json.loads(body)
    except ValueError as error:
        raise BenchError(f"token answer is not JSON: {error}") from error
    token = document.get("token") if isinstance(document, dict) else None
    if not isinstance(token, str) or not token:
        raise BenchError("token answer has no token")
    expires_in = document.get("expires_in", 60)
    if not isinstance(expires_in, int | float):
        raise BenchError(f"token answer has expires_in {expires_in!r}")
    return Token(value=token, expires_in=float(expires_in))


def _drain(response: http.client.HTTPResponse) -> Pulled:
    sha = hashlib.sha256()
    buffer = bytearray(BLOCK)
    view = memoryview(buffer)
    total = 0
    while True:
        count = response.readinto(view)
        if not count:
            break
        sha.update(view[:count])
        total += count
    return Pulled(size=total, digest="sha256:" + sha.hexdigest())


def _descriptor(media_type: str, digest: str, size: int) -> dict[str, object]:
    return {"mediaType": media_type, "digest": digest, "size": size}


def _image_config(layer_digest: str) -> bytes:
    # The layer is random bytes, not a real tarball; registries do not look
    # inside layers, so its digest stands in for the uncompressed diff id.
    config = {
        "architecture": "amd64",
        "os": "linux",
        "rootfs": {"type": "layers", "diff_ids": [layer_digest]},
    }
    return json.dumps(config, separators=(",", ":")).encode()
