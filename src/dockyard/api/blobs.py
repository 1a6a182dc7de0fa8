"""Blob downloads (with Range) and deletes: `/v2/<name>/blobs/<digest>`."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import FileResponse, Response, StreamingResponse
from starlette.types import Receive, Scope, Send

from dockyard.api.access import audit, require
from dockyard.api.byteranges import parse_range
from dockyard.api.common import repository, services
from dockyard.auth.identity import DELETE, PULL
from dockyard.auth.policy import namespace_of
from dockyard.oci import errcodes
from dockyard.oci.digest import Digest
from dockyard.oci.errcodes import RegistryError
from dockyard.services.blobs import BlobContent
from dockyard.storage import StorageDriver

# Content-addressed bytes never change, so caches may keep them for good.
IMMUTABLE = "max-age=31536000, immutable"


async def get_blob(request: Request) -> Response:
    name = repository(request)
    digest = Digest.parse(request.path_params["digest"])
    await require(request, name, PULL)
    registry = services(request)
    blob = await registry.blobs.locate(name, digest)
    byte_range = parse_range(request.headers.get("range"), blob.size)
    headers = {
        "Docker-Content-Digest": blob.digest,
        "Accept-Ranges": "bytes",
        "Cache-Control": IMMUTABLE,
        "ETag": f'"{blob.digest}"',
    }
    head = request.method == "HEAD"
    if blob.inline is not None:
        return _inline(blob, byte_range, headers, head)
    if blob.local_file is not None and byte_range is None:
        return WholeFileResponse(
            blob.local_file, headers=headers, media_type=blob.media_type
        )
    assert blob.path is not None
    redirect = await registry.storage.redirect_url(blob.path)
    if redirect is not None and not head:
        return Response(status_code=307, headers={**headers, "Location": redirect})
    return _streamed(registry.storage, blob, byte_range, headers, head)


class WholeFileResponse(FileResponse):
    """A whole file, sent by the ASGI server itself (`pathsend`) when it can.

    Ranges are answered elsewhere (`_streamed`); a Range header that reaches this
    response is one that `parse_range` chose to ignore, so it must not be acted
    on here either.
    """

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        headers = [(k, v) for k, v in scope["headers"] if k != b"range"]
        await super().__call__({**scope, "headers": headers}, receive, send)


def _inline(
    blob: BlobContent,
    byte_range: tuple[int, int] | None,
    headers: dict[str, str],
    head: bool,
) -> Response:
    assert blob.inline is not None
    body, status = blob.inline, 200
    if byte_range is not None:
        start, end = byte_range
        body, status = body[start : end + 1], 206
        headers["Content-Range"] = f"bytes {start}-{end}/{blob.size}"
    headers["Content-Length"] = str(len(body))
    return Response(
        b"" if head else body, status, headers=headers, media_type=blob.media_type
    )


def _streamed(
    storage: StorageDriver,
    blob: BlobContent,
    byte_range: tuple[int, int] | None,
    headers: dict[str, str],
    head: bool,
) -> Response:
    assert blob.path is not None
    start, end, status = 0, blob.size - 1, 200
    if byte_range is not None:
        (start, end), status = byte_range, 206
        headers["Content-Range"] = f"bytes {start}-{end}/{blob.size}"
    headers["Content-Length"] = str(end - start + 1)
    if head:
        return Response(b"", status, headers=headers, media_type=blob.media_type)
    return StreamingResponse(
        storage.read(blob.path, start, end - start + 1),
        status,
        headers=headers,
        media_type=blob.media_type,
    )


async def delete_blob(request: Request) -> Response:
    name = repository(request)
    digest = Digest.parse(request.path_params["digest"])
    registry = services(request)
    if not registry.settings.registry.delete_enabled:
        raise RegistryError(errcodes.UNSUPPORTED, "deletes are disabled")
    await require(request, name, DELETE)
    await registry.blobs.delete(name, digest)
    await audit(request, "blob.delete", f"{name}@{digest}", namespace_of(name))
    return Response(status_code=202, headers={"Content-Length": "0"})
