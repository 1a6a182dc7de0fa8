"""`/api/v1/users`: local accounts, for administrators (and one's own password)."""

from __future__ import annotations

from typing import Any

from anyio import to_thread
from starlette.requests import Request
from starlette.responses import Response

from dockyard.api.access import audit
from dockyard.api.management.common import (
    PREFIX,
    Body,
    admin,
    caller,
    check_name,
    no_content,
    read,
    reply,
    rfc3339,
    write,
)
from dockyard.api.management.errors import CONFLICT, denied, invalid, unknown
from dockyard.auth.authenticate import OIDC_USERNAME
from dockyard.auth.identity import ANONYMOUS
from dockyard.auth.passwords import hash_password
from dockyard.metadata import accounts
from dockyard.metadata.accounts import UserRecord
from dockyard.oci.errcodes import RegistryError

MIN_PASSWORD = 8
MAX_PASSWORD = 1024
# Names the authenticator or the audit log already give a meaning to.
RESERVED = frozenset({OIDC_USERNAME, ANONYMOUS.subject})


def user_document(user: UserRecord) -> dict[str, Any]:
    """A user as the API shows it: never the password hash."""
    return {
        "username": user.username,
        "admin": user.is_admin,
        "source": user.source,
        "created_at": rfc3339(user.created_at),
    }


def _password(body: Body) -> str:
    password = body.text("password")
    if not MIN_PASSWORD <= len(password) <= MAX_PASSWORD:
        raise invalid(f"password: between {MIN_PASSWORD} and {MAX_PASSWORD} characters")
    return password


async def _existing(request: Request, username: str) -> UserRecord:
    user = await read(request, accounts.get_user, username=username)
    if user is None:
        raise unknown(f"user {username!r}")
    return user


async def list_users(request: Request) -> Response:
    await admin(request)
    users = await read(request, accounts.list_users)
    return reply({"users": [user_document(user) for user in users]})


async def create_user(request: Request) -> Response:
    await admin(request)
    body = await Body.read(request, ("username", "password", "admin"))
    username = check_name(body.text("username"), "username")
    if username in RESERVED:
        raise invalid(f"username: {username!r} is reserved")
    password = _password(body)
    is_admin = body.flag("admin", False)

    hashed = await to_thread.run_sync(hash_password, password)
    await write(
        request,
        accounts.create_user,
        username=username,
        password_hash=hashed,
        is_admin=is_admin,
    )
    await audit(request, "user.created", username, detail={"admin": is_admin})
    user = await _existing(request, username)
    location = {"Location": f"{PREFIX}/users/{username}"}
    return reply(user_document(user), 201, location)


async def get_user(request: Request) -> Response:
    await admin(request)
    user = await _existing(request, request.path_params["username"])
    return reply(user_document(user))


async def delete_user(request: Request) -> Response:
    identity = await admin(request)
    username = request.path_params["username"]
    if username == identity.subject:
        raise denied("administrators cannot delete their own account")
    await write(request, accounts.delete_user, username=username)
    await audit(request, "user.deleted", username)
    return no_content()


async def change_password(request: Request) -> Response:
    identity = await caller(request)
    username = request.path_params["username"]
    if not identity.is_admin and identity.subject != username:
        raise denied("only administrators may change another user's password")
    body = await Body.read(request, ("password",))
    password = _password(body)
    user = await _existing(request, username)
    if user.password_hash is None:
        raise RegistryError(
            CONFLICT, f"user {username!r} signs in with {user.source}, not here"
        )

    hashed = await to_thread.run_sync(hash_password, password)
    await write(request, accounts.update_user, username=username, password_hash=hashed)
    await audit(request, "user.password_changed", username)
    return no_content()
