"""`/api/v1/namespaces/{name}/members`: who holds which role in a namespace.

Only the namespace's owners (a role `owner` on pattern `*`, or the user the
namespace is named after) and administrators may read or change its members.
"""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from dockyard.api.access import audit
from dockyard.api.management.common import Body, caller, no_content, read, reply, write
from dockyard.api.management.errors import invalid
from dockyard.api.management.namespaces import managed
from dockyard.auth.policy import ROLES
from dockyard.metadata import accounts
from dockyard.metadata.accounts import BindingRecord

KINDS = ("user", "group")
MAX_SUBJECT = 255
DEFAULT_PATTERN = "*"


def member_document(binding: BindingRecord) -> dict[str, Any]:
    return {
        "kind": binding.subject_kind,
        "subject": binding.subject,
        "role": binding.role,
        "pattern": binding.pattern,
    }


def _choice(value: str, field: str, choices: tuple[str, ...]) -> str:
    if value not in choices:
        raise invalid(f"{field}: one of {', '.join(choices)}, not {value!r}")
    return value


def _bounded(value: str, field: str) -> str:
    # Subjects and patterns come from elsewhere (directory groups, globs), so
    # they are only checked for being printable and of a sane length.
    if not value or len(value) > MAX_SUBJECT or not value.isprintable():
        raise invalid(f"{field}: 1 to {MAX_SUBJECT} printable characters")
    return value


async def list_members(request: Request) -> Response:
    identity = await caller(request)
    name = request.path_params["name"]
    await managed(request, identity, name)
    bindings = await read(request, accounts.list_bindings, namespace=name)
    return reply({"members": [member_document(b) for b in bindings]})


async def put_member(request: Request) -> Response:
    identity = await caller(request)
    name = request.path_params["name"]
    await managed(request, identity, name)
    body = await Body.read(request, ("kind", "subject", "role", "pattern"))
    binding = BindingRecord(
        namespace=name,
        subject_kind=_choice(body.text("kind"), "kind", KINDS),
        subject=_bounded(body.text("subject"), "subject"),
        role=_choice(body.text("role"), "role", ROLES),
        pattern=_bounded(body.text("pattern", DEFAULT_PATTERN), "pattern"),
    )

    await write(
        request,
        accounts.bind_role,
        namespace=name,
        subject_kind=binding.subject_kind,
        subject=binding.subject,
        role=binding.role,
        pattern=binding.pattern,
    )
    document = member_document(binding)
    await audit(request, "member.added", binding.subject, name, document)
    return reply(document)


async def delete_member(request: Request) -> Response:
    identity = await caller(request)
    name = request.path_params["name"]
    await managed(request, identity, name)
    query = request.query_params
    kind = _choice(query.get("kind", ""), "kind", KINDS)
    subject = _bounded(query.get("subject", ""), "subject")
    pattern = _bounded(query.get("pattern", DEFAULT_PATTERN), "pattern")

    await write(
        request,
        accounts.unbind_role,
        namespace=name,
        subject_kind=kind,
        subject=subject,
        pattern=pattern,
    )
    detail = {"kind": kind, "subject": subject, "pattern": pattern}
    await audit(request, "member.removed", subject, name, detail)
    return no_content()
