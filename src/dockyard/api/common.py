"""Small helpers every handler module shares."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from dockyard.api.errors import failed_request
from dockyard.oci.errcodes import RegistryError
from dockyard.oci.reference import validate_name
from dockyard.services.container import Services


def services(request: Request) -> Services:
    registry: Services = request.app.state.services
    return registry


def repository(request: Request) -> str:
    return validate_name(request.path_params["name"])


def blob_url(name: str, digest: str) -> str:
    return f"/v2/{name}/blobs/{digest}"


def manifest_url(name: str, digest: str) -> str:
    return f"/v2/{name}/manifests/{digest}"


def upload_url(name: str, upload_id: str) -> str:
    return f"/v2/{name}/blobs/uploads/{upload_id}"


def upload_range(size: int) -> str:
    """The spec's inclusive `Range` of bytes received so far (`0-0` when empty)."""
    return f"0-{max(size - 1, 0)}"


Handler = Callable[[Request], Awaitable[Response]]


def route(
    path: str, *, guard: Callable[[Request], object] | None = None, **handlers: Handler
) -> Route:
    """One route per path, dispatching on the method, so a 405 lists them all.

    `guard` runs before every handler of the route (it raises to refuse).
    Registry errors are answered here, the common case of a failed request,
    rather than unwound through the framework's exception middleware.
    """
    if "GET" in handlers:
        handlers.setdefault("HEAD", handlers["GET"])

    async def dispatch(request: Request) -> Response:
        try:
            if guard is not None:
                guard(request)
            return await handlers[request.method](request)
        except RegistryError as error:
            return failed_request(error, request.method)

    return Route(path, dispatch, methods=list(handlers))
