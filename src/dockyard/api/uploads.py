"""Blob uploads: `/v2/<name>/blobs/uploads/` and the session URLs it hands out."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from dockyard.api.byteranges import parse_content_range
from dockyard.api.common import (
    blob_url,
    repository,
    services,
    upload_range,
    upload_url,
)
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
    registry = services(request)
    query = request.query_params

    if "mount" in query:
        digest = Digest.parse(query["mount"])
        source = query.get("from")
        if source and await registry.blobs.mount(name, validate_name(source), digest):
            return _created(name, str(digest))
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


async def upload_status(request: Request) -> Response:
    name = repository(request)
    upload = await services(request).uploads.status(
        name, request.path_params["upload_id"]
    )
    return Response(status_code=204, headers=_session_headers(name, upload))


async def patch_upload(request: Request) -> Response:
    name = repository(request)
    upload_id = request.path_params["upload_id"]
    content_range = parse_content_range(request.headers.get("content-range"))
    start, length = None, None
    if content_range is not None:
        start, length = content_range[0], content_range[1] - content_range[0] + 1
    try:
        upload = await services(request).uploads.append(
            name, upload_id, request.stream(), start, length
        )
    except RangeMismatch as exc:
        exc.headers.update(_session_headers(name, exc.upload))
        del exc.headers["Content-Length"]
        raise
    return Response(status_code=202, headers=_session_headers(name, upload))


async def finish_upload(request: Request) -> Response:
    name = repository(request)
    upload_id = request.path_params["upload_id"]
    if "digest" not in request.query_params:
        raise RegistryError(errcodes.DIGEST_INVALID, "the digest parameter is missing")
    digest = Digest.parse(request.query_params["digest"])
    content_range = parse_content_range(request.headers.get("content-range"))
    start = content_range[0] if content_range else None
    try:
        blob = await services(request).uploads.finish(
            name, upload_id, digest, request.stream(), start
        )
    except RangeMismatch as exc:
        exc.headers.update(_session_headers(name, exc.upload))
        del exc.headers["Content-Length"]
        raise
    return _created(name, blob.digest)


async def cancel_upload(request: Request) -> Response:
    name = repository(request)
    await services(request).uploads.cancel(name, request.path_params["upload_id"])
    return Response(status_code=204)
