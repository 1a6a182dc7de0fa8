"""Blob uploads: `/v2/<name>/blobs/uploads/` and the session URLs it hands out."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from starlette.requests import Request
from starlette.responses import Response

from dockyard.api.access import allowed, require
from dockyard.api.byteranges import parse_content_range
from dockyard.api.common import (
    blob_url,
    repository,
    services,
    upload_range,
    upload_url,
)
from dockyard.auth.identity import PULL, PUSH
from dockyard.metadata import UploadRecord
from dockyard.oci import errcodes
from dockyard.oci.digest import DEFAULT_ALGORITHM, Digest, check_algorithm
from dockyard.oci.errcodes import RegistryError
from dockyard.oci.reference import validate_name
from dockyard.services.uploads import RangeMismatch


def _created(name: str, digest: str) -> Response:
    return Response(
        status_code=201,
        headers={
            "Location": blob_url(name, digest),
            "Docker-Content-Digest": digest,
            "Content-Length": "0",
        },
    )


def _session_headers(name: str, upload: UploadRecord) -> dict[str, str]:
    return {
        "Location": upload_url(name, upload.id),
        "Range": upload_range(upload.size),
        "Docker-Upload-UUID": upload.id,
        "Content-Length": "0",
    }


async def start_upload(request: Request) -> Response:
    name = repository(request)
    await require(request, name, PUSH)
    registry = services(request)
    query = request.query_params

    if "mount" in query:
        mounted = await _try_mount(request, name, query["mount"], query.get("from"))
        if mounted is not None:
            return mounted
    elif "digest" in query:
        digest = Digest.parse(query["digest"])
        blob = await registry.uploads.put_monolithic(name, digest, request.stream())
        return _created(name, blob.digest)

    algorithm = check_algorithm(query.get("digest-algorithm", DEFAULT_ALGORITHM))
    upload = await registry.uploads.start(name, algorithm)
    headers = _session_headers(name, upload)
    if registry.storage.chunk_min_length:
        headers["OCI-Chunk-Min-Length"] = str(registry.storage.chunk_min_length)
    return Response(status_code=202, headers=headers)


async def _try_mount(
    request: Request, name: str, mount: str, source: str | None
) -> Response | None:
    """Mount a blob from another repository; None means "open a session instead".

    The spec lets a registry answer any mount it cannot or will not do with a
    plain upload session, so unusable arguments are not errors here.
    """
    if not source:
        return None
    try:
        digest = Digest.parse(mount)
        source = validate_name(source)
    except RegistryError:
        return None
    # Mounting reads the source: without pull there, upload the blob instead.
    if not await allowed(request, source, PULL):
        return None
    if await services(request).blobs.mount(name, source, digest):
        return _created(name, str(digest))
    return None


async def upload_status(request: Request) -> Response:
    name = repository(request)
    await require(request, name, PUSH)
    upload = await services(request).uploads.status(
        name, request.path_params["upload_id"]
    )
    return Response(status_code=204, headers=_session_headers(name, upload))


async def patch_upload(request: Request) -> Response:
    name = repository(request)
    await require(request, name, PUSH)
    upload_id = request.path_params["upload_id"]
    async with _resume_hint(request, name, upload_id):
        content_range = parse_content_range(request.headers.get("content-range"))
        start, length = None, None
        if content_range is not None:
            start, length = content_range[0], content_range[1] - content_range[0] + 1
        upload = await services(request).uploads.append(
            name, upload_id, request.stream(), start, length
        )
    return Response(status_code=202, headers=_session_headers(name, upload))


async def finish_upload(request: Request) -> Response:
    name = repository(request)
    await require(request, name, PUSH)
    upload_id = request.path_params["upload_id"]
    if "digest" not in request.query_params:
        raise RegistryError(errcodes.DIGEST_INVALID, "the digest parameter is missing")
    digest = Digest.parse(request.query_params["digest"])
    async with _resume_hint(request, name, upload_id):
        content_range = parse_content_range(request.headers.get("content-range"))
        start = content_range[0] if content_range else None
        blob = await services(request).uploads.finish(
            name, upload_id, digest, request.stream(), start
        )
    return _created(name, blob.digest)


@asynccontextmanager
async def _resume_hint(
    request: Request, name: str, upload_id: str
) -> AsyncIterator[None]:
    """On a 416, tell the client where the upload stands so it can resume."""
    try:
        yield
    except RegistryError as exc:
        if exc.status != 416:
            raise
        if isinstance(exc, RangeMismatch):
            upload = exc.upload
        else:
            upload = await services(request).uploads.status(name, upload_id)
        headers = _session_headers(name, upload)
        del headers["Content-Length"]
        exc.headers.update(headers)
        raise


async def cancel_upload(request: Request) -> Response:
    name = repository(request)
    await require(request, name, PUSH)
    await services(request).uploads.cancel(name, request.path_params["upload_id"])
    return Response(status_code=204)
