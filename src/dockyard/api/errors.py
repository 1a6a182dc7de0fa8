"""The one place that turns failures into the spec's JSON error envelope."""

from __future__ import annotations

import json
import logging

import sqlalchemy as sa
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response

from dockyard.oci import errcodes
from dockyard.oci.errcodes import RegistryError
from dockyard.storage import StorageError

logger = logging.getLogger(__name__)

_HTTP_STATUS_CODES = {
    404: errcodes.NOT_FOUND,
    405: errcodes.METHOD_NOT_ALLOWED,
}


def error_response(error: RegistryError, method: str = "GET") -> Response:
    body = json.dumps(error.envelope()).encode()
    # A HEAD answer says how long the GET's envelope would be, and sends none.
    headers = {
        "Content-Type": "application/json",
        "Content-Length": str(len(body)),
        **error.headers,
    }
    if method == "HEAD":
        body = b""
    return Response(body, status_code=error.status, headers=headers)


def failed_request(error: RegistryError, method: str) -> Response:
    """The answer to a handler that raised a registry error."""
    if error.status >= 500:
        logger.error("request failed", extra={"code": error.error.code})
    return error_response(error, method)


async def registry_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, RegistryError)
    return failed_request(exc, request.method)


async def http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    code = _HTTP_STATUS_CODES.get(exc.status_code, errcodes.UNKNOWN)
    error = RegistryError(code, headers=dict(exc.headers or {}))
    return error_response(error, request.method)


async def storage_error(request: Request, exc: Exception) -> Response:
    logger.error(
        "failed to access storage",
        exc_info=exc,
        extra={"path": request.url.path, "method": request.method},
    )
    return error_response(
        RegistryError(errcodes.UNAVAILABLE, "storage backend failed"), request.method
    )


async def database_unavailable(request: Request, exc: Exception) -> Response:
    """The metadata database cannot be reached or is too busy: try again."""
    assert isinstance(exc, sa.exc.OperationalError)
    logger.error(
        "failed to query the metadata database",
        extra={
            "path": request.url.path,
            "method": request.method,
            "error": str(exc.orig),
            "connection_lost": exc.connection_invalidated,
        },
    )
    return error_response(
        RegistryError(errcodes.UNAVAILABLE, "metadata database unavailable"),
        request.method,
    )


def unexpected_error_body() -> bytes:
    """The envelope for a failure nobody anticipated (the middleware sends it)."""
    return json.dumps(RegistryError(errcodes.UNKNOWN).envelope()).encode()


# Anything else is caught by RegistryMiddleware, which sits inside Starlette's
# own error middleware, so even a 500 carries the registry's headers.
EXCEPTION_HANDLERS = {
    RegistryError: registry_error,
    HTTPException: http_error,
    StorageError: storage_error,
    sa.exc.OperationalError: database_unavailable,
}
