"""`/api/v1/namespaces/{name}/quota`: storage used and the namespace's limit.

Everyone who sees the namespace may read its usage; administrators set quotas.
"""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from dockyard.api.access import audit
from dockyard.api.management.common import Body, admin, caller, read, reply, write
from dockyard.api.management.errors import invalid
from dockyard.api.management.namespaces import visible
from dockyard.metadata import quotas
from dockyard.metadata.quotas import Usage


def usage_document(usage: Usage) -> dict[str, Any]:
    return {
        "namespace": usage.namespace,
        "used_bytes": usage.used_bytes,
        "quota_bytes": usage.quota_bytes,
    }


async def get_quota(request: Request) -> Response:
    identity = await caller(request)
    name = request.path_params["name"]
    await visible(request, identity, name)
    found = await read(request, quotas.usage, namespace=name)
    return reply(usage_document(found))


async def set_quota(request: Request) -> Response:
    await admin(request)
    name = request.path_params["name"]
    body = await Body.read(request, ("quota_bytes",))
    value = body.fields.get("quota_bytes")
    if value is not None and (
        not isinstance(value, int) or isinstance(value, bool) or value < 0
    ):
        raise invalid("quota_bytes: a whole number of bytes, or null for no limit")
    await write(request, quotas.set_quota, namespace=name, quota_bytes=value)
    await audit(request, "namespace.quota", name, name, {"quota_bytes": value})
    found = await read(request, quotas.usage, namespace=name)
    return reply(usage_document(found))
