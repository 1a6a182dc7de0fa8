"""`/api/v1/robots`: robot accounts for CI, with explicit grants.

Who may grant what: administrators anything. Other users name a literal
namespace in each grant (`acme/*`, `acme/web-*`, `acme/api`) and must hold every
action they hand out on the grant's pattern read as a repository name, as the
registry's policy computes it. `acme/*` thus needs a namespace-wide role in
`acme` (or the personal namespace `acme`); `acme/web-*` is also allowed by a
role bound to the pattern `web-*`. A robot can never do more than its creator
could when it was made.

The secret is shown once, in the answer to the creation; only its bcrypt hash
is stored, and it is never logged or audited.
"""

from __future__ import annotations

import re
import secrets
import time
from typing import Any

from anyio import to_thread
from starlette.requests import Request
from starlette.responses import Response

from dockyard.api.access import audit
from dockyard.api.management.common import (
    COMPONENT,
    PREFIX,
    Body,
    caller,
    check_name,
    control,
    no_content,
    read,
    reply,
    rfc3339,
    write,
)
from dockyard.api.management.errors import denied, invalid, invalid_name, unknown
from dockyard.auth.authenticate import ROBOT_PREFIX
from dockyard.auth.identity import ACTIONS, Identity
from dockyard.auth.passwords import hash_password
from dockyard.auth.policy import namespace_of
from dockyard.metadata import accounts
from dockyard.metadata.accounts import RobotRecord

# Repository globs: name characters plus fnmatch's `*`, `?` and `[...]`.
PATTERN = re.compile(r"^[a-z0-9._/*?\[\]-]+$")
MAX_PATTERN = 255
MAX_GRANTS = 100
MAX_DAYS = 3650
DAY = 86400


def robot_document(robot: RobotRecord) -> dict[str, Any]:
    return {
        "name": robot.name,
        "grants": robot.grants,
        "expires_at": rfc3339(robot.expires_at),
        "revoked": robot.revoked,
        "created_by": robot.created_by,
        "created_at": rfc3339(robot.created_at),
        "last_used_at": rfc3339(robot.last_used_at),
    }


def _grant(entry: Any) -> dict[str, Any]:
    if not isinstance(entry, dict) or set(entry) != {"repository", "actions"}:
        raise invalid("grants: each one is {repository, actions}")
    pattern, actions = entry["repository"], entry["actions"]
    if (
        not isinstance(pattern, str)
        or len(pattern) > MAX_PATTERN
        or not PATTERN.match(pattern)
    ):
        raise invalid_name(f"grants: invalid repository pattern {pattern!r}", pattern)
    if not isinstance(actions, list) or not actions or not set(actions) <= ACTIONS:
        raise invalid(f"grants: actions is a non-empty list of {sorted(ACTIONS)}")
    return {"repository": pattern, "actions": sorted(set(actions))}


def _grants(body: Body) -> list[dict[str, Any]]:
    entries = body.items("grants")
    if not 0 < len(entries) <= MAX_GRANTS:
        raise invalid(f"grants: between 1 and {MAX_GRANTS} grants")
    return [_grant(entry) for entry in entries]


async def _check_grantable(
    request: Request, identity: Identity, grants: list[dict[str, Any]]
) -> None:
    """Refuse grants beyond what the caller may do themselves (see module doc)."""
    if identity.is_admin:
        return
    policy = control(request).policy
    for grant in grants:
        pattern = grant["repository"]
        if not COMPONENT.match(namespace_of(pattern)):
            raise denied(f"only administrators may grant across namespaces: {pattern}")
        held = await policy.actions(identity, pattern)
        missing = set(grant["actions"]) - held
        if missing:
            raise denied(
                f"you may not grant {', '.join(sorted(missing))} on {pattern!r}"
            )


def _expiry(body: Body) -> float | None:
    days = body.number("expires_in_days")
    if days is None:
        return None
    if not 0 < days <= MAX_DAYS:
        raise invalid(f"expires_in_days: between 1 and {MAX_DAYS}")
    return time.time() + days * DAY


def _namespace(grants: list[dict[str, Any]]) -> str | None:
    """The namespace an audit event belongs to, when the grants name just one
    (so that its owners see the robot's creation and revocation)."""
    found = {namespace_of(grant["repository"]) for grant in grants}
    return found.pop() if len(found) == 1 else None


def _full_name(name: str) -> str:
    return name if name.startswith(ROBOT_PREFIX) else ROBOT_PREFIX + name


async def _owned(request: Request, identity: Identity, name: str) -> RobotRecord:
    """The robot if the caller created it (or is an administrator); else 404."""
    robot = await read(request, accounts.get_robot, name=name)
    if robot is None or not (identity.is_admin or robot.created_by == identity.subject):
        raise unknown(f"robot {name!r}")
    return robot


async def list_robots(request: Request) -> Response:
    identity = await caller(request)
    robots = await read(request, accounts.list_robots)
    if not identity.is_admin:
        robots = [r for r in robots if r.created_by == identity.subject]
    return reply({"robots": [robot_document(robot) for robot in robots]})


async def create_robot(request: Request) -> Response:
    identity = await caller(request)
    body = await Body.read(request, ("name", "grants", "expires_in_days"))
    name = ROBOT_PREFIX + check_name(body.text("name"), "robot name")
    grants = _grants(body)
    expires_at = _expiry(body)
    await _check_grantable(request, identity, grants)

    secret = secrets.token_urlsafe(32)
    hashed = await to_thread.run_sync(hash_password, secret)
    await write(
        request,
        accounts.create_robot,
        name=name,
        secret_hash=hashed,
        grants=grants,
        expires_at=expires_at,
        created_by=identity.subject,
    )
    detail = {"grants": grants, "expires_at": rfc3339(expires_at)}
    await audit(request, "robot.created", name, _namespace(grants), detail)

    robot = await _owned(request, identity, name)
    document = {**robot_document(robot), "secret": secret}
    location = {"Location": f"{PREFIX}/robots/{name}"}
    return reply(document, 201, location)


async def revoke_robot(request: Request) -> Response:
    identity = await caller(request)
    name = _full_name(request.path_params["name"])
    robot = await _owned(request, identity, name)
    if not robot.revoked:
        await write(request, accounts.revoke_robot, name=name)
        await audit(request, "robot.revoked", name, _namespace(robot.grants))
    return no_content()
