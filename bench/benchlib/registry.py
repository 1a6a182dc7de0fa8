"""An OCI distribution client for loopback benchmarks (blob pulls: download.py).

Every call checks the answer the way a careful client would (status, digest,
size), so a server that cuts corners fails the benchmark instead of scoring.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any

import httpx
from httpcore._sync import http11 as _httpcore_http11

from benchlib import BenchError
from benchlib.blobs import MIB, BlobFile, blob_digest
from benchlib.download import download

HOST = "127.0.0.1"
BLOCK = MIB
TIMEOUT = 300.0
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER = "application/vnd.oci.image.layer.v1.tar+gzip"
MANIFEST_ACCEPT = ", ".join(
    [OCI_MANIFEST, "application/vnd.docker.distribution.manifest.v2+json"]
)

# httpcore reads responses 64 KiB at a time, which makes a download cost the
# client three times the CPU of 1 MiB reads: at loopback speeds the client, not
# the server, would set the pace. Small answers are unaffected.
_httpcore_http11.HTTP11Connection.READ_NUM_BYTES = BLOCK


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

    def check(self, blob: BlobFile) -> None:
        if self.size != blob.size or self.digest != blob.digest:
            raise BenchError(
                f"pulled {self.size} bytes with {self.digest}, expected "
                f"{blob.size} bytes with {blob.digest}"
            )


@dataclass(frozen=True)
class Page:
    """One page of a tag list or the catalog, and the next page's URL.

    ``content_length`` is None when the answer came in chunks without one.
    """

    names: list[str]
    next_url: str | None
    content_length: int | None


class RegistryClient:
    """One keep-alive connection to a registry on 127.0.0.1.

    ``authorization``, when given, goes with every request.
    Not thread-safe: give every thread its own client.
    """

    def __init__(self, port: int, authorization: str | None = None) -> None:
        self.port = port
        headers = {"Authorization": authorization} if authorization else {}
        self.http = httpx.Client(
            base_url=self.base_url, headers=headers, timeout=TIMEOUT
        )

    @property
    def base_url(self) -> str:
        return f"http://{HOST}:{self.port}"

    def __enter__(self) -> RegistryClient:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        self.http.close()

    # Blobs

    def start_upload(self, repo: str) -> str:
        """POST an upload session; returns its Location."""
        response = self.http.post(f"/v2/{repo}/blobs/uploads/")
        location = response.headers.get("Location")
        if response.status_code != 202 or not location:
            raise BenchError(f"upload POST answered {response.status_code}")
        return str(location)

    def push_blob_file(self, repo: str, blob: BlobFile) -> None:
        """Monolithic upload: POST, then one PUT carrying the whole blob.

        Not ``POST ?digest=`` with a body: Distribution 2.8.2 ignores such a
        body and opens an empty session, so both servers get POST then PUT.
        """
        location = self.start_upload(repo)
        response = self.http.put(
            with_digest(location, blob.digest),
            content=read_file(blob.path, 0, blob.size),
            headers=_octets(blob.size),
        )
        expect_created(response, blob.digest, "blob PUT")

    def push_blob_chunked(self, repo: str, blob: BlobFile, chunk: int) -> int:
        """Chunked upload: POST, a PATCH per ``chunk`` bytes, an empty PUT.

        Follows the newest Location after every answer and checks its Range.
        Returns the number of PATCH requests.
        """
        location = self.start_upload(repo)
        patches = 0
        for offset in range(0, blob.size, chunk):
            length = min(chunk, blob.size - offset)
            headers = _octets(length)
            headers["Content-Range"] = f"{offset}-{offset + length - 1}"
            response = self.http.patch(
                location, content=read_file(blob.path, offset, length), headers=headers
            )
            location = _check_patch(response, offset + length)
            patches += 1
        response = self.http.put(with_digest(location, blob.digest), content=b"")
        expect_created(response, blob.digest, "final PUT of a chunked upload")
        return patches

    def push_blob_bytes(self, repo: str, data: bytes) -> str:
        """Upload a small blob held in memory (POST then PUT); returns its digest."""
        digest = blob_digest(data)
        location = self.start_upload(repo)
        response = self.http.put(
            with_digest(location, digest), content=data, headers=_octets(len(data))
        )
        expect_created(response, digest, "blob PUT")
        return digest

    def mount_blob(self, repo: str, digest: str, source: str) -> None:
        """Link an existing blob of ``source`` into ``repo`` (cross-repo mount)."""
        response = self.http.post(
            f"/v2/{repo}/blobs/uploads/", params={"mount": digest, "from": source}
        )
        expect_created(response, digest, "blob mount")

    def pull_blob(self, repo: str, digest: str) -> Pulled:
        """Download a blob, hashing the bytes as they arrive (see download.py)."""
        headers = {}
        if "Authorization" in self.http.headers:
            headers["Authorization"] = self.http.headers["Authorization"]
        size, pulled = download(
            HOST, self.port, f"/v2/{repo}/blobs/{digest}", headers, TIMEOUT
        )
        return Pulled(size=size, digest=pulled)

    def head_blob(self, repo: str, digest: str) -> int:
        """Status of a blob HEAD."""
        return self.http.head(f"/v2/{repo}/blobs/{digest}").status_code

    def check_blob(self, repo: str, digest: str, size: int) -> None:
        """HEAD a blob: it must be there with the right size and digest."""
        response = self.http.head(f"/v2/{repo}/blobs/{digest}")
        length = response.headers.get("Content-Length")
        answered = response.headers.get("Docker-Content-Digest")
        if response.status_code != 200 or length != str(size) or answered != digest:
            raise BenchError(
                f"blob HEAD of {digest} gave {response.status_code}, "
                f"length {length}, digest {answered}"
            )

    # Manifests and tags

    def put_manifest(
        self,
        repo: str,
        reference: str,
        body: bytes,
        tags: Sequence[str] = (),
    ) -> str:
        """PUT an OCI manifest under a tag or digest; returns its digest.

        ``tags`` go as ``?tag=`` parameters (distribution-spec main branch),
        which tag a manifest pushed by digest several times in one request.
        """
        digest = blob_digest(body)
        response = self.http.put(
            f"/v2/{repo}/manifests/{reference}",
            params=[("tag", tag) for tag in tags],
            content=body,
            headers={"Content-Type": OCI_MANIFEST},
        )
        expect_created(response, digest, "manifest PUT")
        return digest

    def get_manifest(self, repo: str, reference: str) -> bytes:
        """GET a manifest; its bytes must hash to the digest the server gives."""
        response = self.http.get(
            f"/v2/{repo}/manifests/{reference}", headers={"Accept": MANIFEST_ACCEPT}
        )
        if response.status_code != 200:
            raise BenchError(f"manifest GET answered {response.status_code}")
        body = response.content
        answered = response.headers.get("Docker-Content-Digest")
        if answered != blob_digest(body):
            raise BenchError(f"manifest GET gave digest {answered!r} for its bytes")
        return body

    def head_manifest(self, repo: str, reference: str) -> tuple[int, str | None]:
        """HEAD a manifest: status and Docker-Content-Digest."""
        response = self.http.head(
            f"/v2/{repo}/manifests/{reference}", headers={"Accept": MANIFEST_ACCEPT}
        )
        return response.status_code, response.headers.get("Docker-Content-Digest")

    def tags_page(
        self, repo: str, url: str | None = None, n: int | None = None
    ) -> Page:
        """One page of ``repo``'s tags: the first (``n`` per page) or ``url``."""
        first = f"/v2/{repo}/tags/list" + (f"?n={n}" if n is not None else "")
        return self._page(url or first, "tags")

    def catalog_page(self, url: str | None = None, n: int | None = None) -> Page:
        """One page of the catalog: the first (``n`` per page) or ``url``."""
        first = "/v2/_catalog" + (f"?n={n}" if n is not None else "")
        return self._page(url or first, "repositories")

    def _page(self, url: str, key: str) -> Page:
        response = self.http.get(url)
        if response.status_code != 200:
            raise BenchError(f"GET {url} answered {response.status_code}")
        document = _json_object(response.content)
        names = document.get(key)
        if names is None:
            names = []
        if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
            raise BenchError(f"GET {url}: {key!r} is not a list of names")
        return Page(
            names=names,
            next_url=next_link(response.headers.get("Link")),
            content_length=_declared_length(response),
        )

    def fetch_token(self, service: str, scope: str) -> Token:
        """GET /auth/token for ``scope``, authenticated as this client."""
        response = self.http.get(
            "/auth/token", params={"service": service, "scope": scope}
        )
        if response.status_code != 200:
            raise BenchError(f"token GET answered {response.status_code}")
        document = _json_object(response.content)
        token = document.get("token")
        if not isinstance(token, str) or not token:
            raise BenchError("token answer has no token")
        expires_in = document.get("expires_in", 60)
        if not isinstance(expires_in, int | float):
            raise BenchError(f"token answer has expires_in {expires_in!r}")
        return Token(value=token, expires_in=float(expires_in))

    def push_small_image(self, repo: str, tag: str, layer: bytes) -> bytes:
        """Push a config blob, one layer and a manifest; returns the manifest."""
        layer_digest = self.push_blob_bytes(repo, layer)
        config = image_config([layer_digest])
        config_digest = self.push_blob_bytes(repo, config)
        manifest = image_manifest(
            descriptor(OCI_CONFIG, config_digest, len(config)),
            [descriptor(OCI_LAYER, layer_digest, len(layer))],
        )
        self.put_manifest(repo, tag, manifest)
        return manifest


def ping(port: int) -> int:
    """Status of an anonymous GET /v2/; raises while nothing listens."""
    return httpx.get(f"http://{HOST}:{port}/v2/", timeout=5.0).status_code


def read_file(path: Path, offset: int, length: int) -> Iterator[bytes]:
    """``length`` bytes of ``path`` from ``offset``, in 1 MiB pieces."""
    with path.open("rb") as source:
        source.seek(offset)
        left = length
        while left > 0:
            piece = source.read(min(BLOCK, left))
            if not piece:
                raise BenchError(f"{path} ended {left} bytes early")
            left -= len(piece)
            yield piece


def with_digest(location: str, digest: str) -> str:
    """The upload URL with ``digest=`` added to the query it already has."""
    # Not httpx's params=: they would replace the query, and Distribution keeps
    # its upload state there.
    separator = "&" if "?" in location else "?"
    return f"{location}{separator}digest={digest}"


def expect_created(response: httpx.Response, digest: str, what: str) -> None:
    """A 201 carrying ``digest`` as Docker-Content-Digest."""
    if response.status_code != 201:
        raise BenchError(f"{what} answered {response.status_code}, expected 201")
    answered = response.headers.get("Docker-Content-Digest")
    if answered != digest:
        raise BenchError(f"{what} gave Docker-Content-Digest {answered!r}")


def next_link(header: str | None) -> str | None:
    """The target of a ``Link: <url>; rel="next"`` header, if any."""
    for link in (header or "").split(","):
        target, *params = link.split(";")
        for param in params:
            name, _, value = param.strip().partition("=")
            rels = value.strip('"').split()
            if name.lower() == "rel" and "next" in rels:
                return target.strip().removeprefix("<").removesuffix(">")
    return None


def descriptor(media_type: str, digest: str, size: int) -> dict[str, object]:
    return {"mediaType": media_type, "digest": digest, "size": size}


def image_config(diff_ids: list[str]) -> bytes:
    """A minimal image config.

    Registries do not look inside layers, so random layers may stand in for
    tarballs and their digests for the uncompressed diff ids.
    """
    config = {
        "architecture": "amd64",
        "os": "linux",
        "rootfs": {"type": "layers", "diff_ids": diff_ids},
    }
    return compact_json(config)


def image_manifest(config: dict[str, object], layers: list[dict[str, object]]) -> bytes:
    """An OCI image manifest for ``config`` and ``layers``."""
    return compact_json(
        {
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": config,
            "layers": layers,
        }
    )


def compact_json(document: dict[str, Any]) -> bytes:
    return json.dumps(document, separators=(",", ":")).encode()


def _json_object(body: bytes) -> dict[str, Any]:
    try:
        document = json.loads(body)
    except ValueError as error:
        raise BenchError(f"answer is not JSON: {error}") from error
    if not isinstance(document, dict):
        raise BenchError("answer is not a JSON object")
    return document


def _declared_length(response: httpx.Response) -> int | None:
    declared = response.headers.get("Content-Length")
    return int(declared) if declared is not None else None


def _octets(length: int) -> dict[str, str]:
    return {"Content-Type": "application/octet-stream", "Content-Length": str(length)}


def _check_patch(response: httpx.Response, end: int) -> str:
    location = response.headers.get("Location")
    if response.status_code != 202 or not location:
        raise BenchError(f"upload PATCH answered {response.status_code}")
    committed = response.headers.get("Range")
    if committed != f"0-{end - 1}":
        raise BenchError(f"upload PATCH gave Range {committed!r}, expected 0-{end - 1}")
    return str(location)
