"""The route table: every endpoint of the distribution spec, by area."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from dockyard.api import base, blobs, discovery, management, manifests, token, uploads

Handler = Callable[[Request], Awaitable[Response]]

_NAME = "/v2/{name:path}"


def _route(path: str, **handlers: Handler) -> Route:
    """One route per path, dispatching on the method, so a 405 lists them all."""
    if "GET" in handlers:
        handlers.setdefault("HEAD", handlers["GET"])

    async def dispatch(request: Request) -> Response:
        return await handlers[request.method](request)

    return Route(path, dispatch, methods=list(handlers))


# Order matters where patterns overlap: upload URLs before blob URLs.
ROUTES = [
    _route("/auth/token", GET=token.token, POST=token.token),
    _route("/v2/", GET=base.version_check),
    _route("/v2/_catalog", GET=discovery.catalog),
    _route(f"{_NAME}/blobs/uploads/", POST=uploads.start_upload),
    _route(f"{_NAME}/blobs/uploads", POST=uploads.start_upload),
    _route(
        f"{_NAME}/blobs/uploads/{{upload_id}}",
        GET=uploads.upload_status,
        PATCH=uploads.patch_upload,
        PUT=uploads.finish_upload,
        DELETE=uploads.cancel_upload,
    ),
    _route(f"{_NAME}/blobs/{{digest}}", GET=blobs.get_blob, DELETE=blobs.delete_blob),
    _route(
        f"{_NAME}/manifests/{{reference}}",
        GET=manifests.get_manifest,
        PUT=manifests.put_manifest,
        DELETE=manifests.delete_manifest,
    ),
    _route(f"{_NAME}/tags/list", GET=discovery.list_tags),
    _route(f"{_NAME}/referrers/{{digest}}", GET=discovery.list_referrers),
    *management.ROUTES,
]
