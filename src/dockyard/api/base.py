"""`/v2/`: the version check every client starts with."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response


async def version_check(request: Request) -> Response:
    return Response(b"{}", media_type="application/json")
