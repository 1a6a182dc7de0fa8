"""`/api/v1/namespaces`: create, show, publish and delete namespaces.

Administrators see every namespace. Other users see the public ones, their
personal one, and those where they or one of their groups hold a role; any
other namespace answers 404, whether it exists or not, so names do not leak.
"""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from dockyard.api.access import audit
from dockyard.api.management.common import (
    PREFIX,
    Body,
    admin,
    caller,
    check_name,
    control,
    no_content,
    read,
    reply,
    rfc3339,
    write,
)
from dockyard.api.management.errors import denied, unknown
from dockyard.auth.identity import Identity
from dockyard.metadata import accounts
from dockyard.metadata.accounts import NamespaceRecord


def namespace_document(namespace: NamespaceRecord) -> dict[str, Any]:
    return {
        "name": namespace.name,
        "public": namespace.public,
        "created_at": rfc3339(namespace.created_at),
    }


async def visible(request: Request, identity: Identity, name: str) -> NamespaceRecord:
    """The namespace if this caller may see it; 404 otherwise."""
    found, bindings = await control(request).store.bindings_for(
        name, identity.subject, identity.groups
    )
    if found is None:
        raise unknown(f"namespace {name!r}")
    if identity.is_admin or found.public or name == identity.subject or bindings:
        return found
    raise unknown(f"namespace {name!r}")


async def managed(request: Request, identity: Identity, name: str) -> NamespaceRecord:
    """The namespace if this caller owns it (or administers the registry)."""
    found = await visible(request, identity, name)
    if not await control(request).policy.may_manage(identity, name):
        raise denied(f"only owners of {name!r} and administrators may do this")
    return found


async def rules_maintained(
    request: Request, identity: Identity, name: str, rules: str
) -> None:
    """Refuse unless this caller may manage the namespace's `rules` (maintainers,
    owners, administrators)."""
    await visible(request, identity, name)
    if not await control(request).policy.may_manage_rules(identity, name):
        raise denied(f"only maintainers and owners of {name!r} manage its {rules}")


async def list_namespaces(request: Request) -> Response:
    identity = await caller(request)
    if identity.is_admin:
        found = await read(request, accounts.list_namespaces)
    else:
        found = await read(
            request,
            accounts.namespaces_visible_to,
            username=identity.subject,
            groups=identity.groups,
        )
    return reply({"namespaces": [namespace_document(n) for n in found]})


async def create_namespace(request: Request) -> Response:
    await admin(request)
    body = await Body.read(request, ("name", "public"))
    name = check_name(body.text("name"), "namespace name")
    public = body.flag("public", False)

    await write(request, accounts.create_namespace, name=name, public=public)
    await audit(request, "namespace.created", name, name, {"public": public})
    created = await read(request, accounts.get_namespace, name=name)
    assert created is not None
    location = {"Location": f"{PREFIX}/namespaces/{name}"}
    return reply(namespace_document(created), 201, location)


async def get_namespace(request: Request) -> Response:
    identity = await caller(request)
    found = await visible(request, identity, request.path_params["name"])
    return reply(namespace_document(found))


async def update_namespace(request: Request) -> Response:
    identity = await caller(request)
    name = request.path_params["name"]
    await managed(request, identity, name)
    public = (await Body.read(request, ("public",))).flag("public")

    await write(request, accounts.set_namespace_public, name=name, public=public)
    await audit(request, "namespace.updated", name, name, {"public": public})
    updated = await visible(request, identity, name)
    return reply(namespace_document(updated))


async def delete_namespace(request: Request) -> Response:
    await admin(request)
    name = request.path_params["name"]
    await write(request, accounts.delete_namespace, name=name)
    await audit(request, "namespace.deleted", name, name)
    return no_content()
