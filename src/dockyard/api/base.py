"""`/v2/`: the version check every client starts with."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from dockyard.api.access import require_login


async def version_check(request: Request) -> Response:
    await require_login(request)
    return Response(b"{}", media_type="application/json")
