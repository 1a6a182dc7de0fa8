"""Manifests by tag or digest: `/v2/<name>/manifests/<reference>`."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from dockyard.api.access import audit, require
from dockyard.api.common import manifest_url, repository, services
from dockyard.auth.identity import DELETE, PULL, PUSH
from dockyard.auth.policy import namespace_of
from dockyard.oci import errcodes
from dockyard.oci.errcodes import RegistryError
from dockyard.oci.manifest import MAX_MANIFEST_BYTES


async def get_manifest(request: Request) -> Response:
    name = repository(request)
    await require(request, name, PULL)
    head = request.method == "HEAD"
    record = await services(request).manifests.get(
        name, request.path_params["reference"], content=not head
    )
    if not head:
        services(request).pulls.record(
            name, record.digest, request.path_params["reference"]
        )
    headers = {
        "Docker-Content-Digest": record.digest,
        "ETag": f'"{record.digest}"',
        "Content-Length": str(record.size),
    }
    # Served exactly as pushed: never converted, whatever Accept asks for.
    body = b"" if head or record.content is None else record.content
    return Response(body, headers=headers, media_type=record.media_type)


async def _read_limited(request: Request) -> bytes:
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > MAX_MANIFEST_BYTES:
        raise _too_large()
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_MANIFEST_BYTES:
            raise _too_large()
    return bytes(body)


def _too_large() -> RegistryError:
    return RegistryError(
        errcodes.MANIFEST_TOO_LARGE,
        f"manifests are limited to {MAX_MANIFEST_BYTES} bytes",
    )


async def put_manifest(request: Request) -> Response:
    name = repository(request)
    await require(request, name, PUSH)
    body = await _read_limited(request)
    pushed = await services(request).manifests.put(
        name,
        request.path_params["reference"],
        body,
        request.headers.get("content-type"),
        request.query_params.getlist("tag"),
    )
    headers = {
        "Location": manifest_url(name, pushed.digest),
        "Docker-Content-Digest": pushed.digest,
        "Content-Length": "0",
    }
    if pushed.subject:
        headers["OCI-Subject"] = pushed.subject
    reference = request.path_params["reference"]
    await audit(
        request,
        "manifest.push",
        f"{name}:{reference}" if reference != pushed.digest else f"{name}@{reference}",
        namespace_of(name),
        {"digest": pushed.digest},
    )
    return Response(status_code=201, headers=headers)


async def delete_manifest(request: Request) -> Response:
    name = repository(request)
    registry = services(request)
    if not registry.settings.registry.delete_enabled:
        raise RegistryError(errcodes.UNSUPPORTED, "deletes are disabled")
    await require(request, name, DELETE)
    reference = request.path_params["reference"]
    await registry.manifests.delete(name, reference)
    await audit(request, "manifest.delete", f"{name}:{reference}", namespace_of(name))
    return Response(status_code=202, headers={"Content-Length": "0"})
