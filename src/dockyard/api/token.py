"""The token endpoint (Docker token authentication, with the OAuth2 form).

`GET /auth/token?service=..&scope=..` with HTTP Basic credentials or none, and
`POST /auth/token` with a form (`grant_type=password` or `refresh_token`).
The token grants the intersection of what was asked and what the caller may do;
a partial grant is a token with fewer actions, never an error.
"""

from __future__ import annotations

import json
import time
from typing import Any

from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import Response

from dockyard.api.access import identify, remote_address
from dockyard.api.common import services
from dockyard.auth.access import AccessControl, Caller
from dockyard.auth.authenticate import BackendUnavailable, LockedOut
from dockyard.auth.claims import InvalidToken
from dockyard.auth.identity import ACTIONS
from dockyard.auth.scopes import Scope, parse_scopes
from dockyard.metadata import accounts
from dockyard.oci import errcodes
from dockyard.oci.errcodes import RegistryError
from dockyard.oci.reference import NAME_PATTERN


async def token(request: Request) -> Response:
    control = services(request).access
    if control is None:
        raise RegistryError(errcodes.UNSUPPORTED, "authentication is not enabled")
    form = await request.form() if request.method == "POST" else None
    caller = await _caller(request, control, form)
    raw = form.getlist("scope") if form else request.query_params.getlist("scope")
    scopes = parse_scopes([value for value in raw if isinstance(value, str)])
    access = [await _grant(control, caller, scope) for scope in scopes]
    granted = [entry for entry in access if entry["actions"]]

    issued, lifetime = control.tokens.issue(caller.identity, granted)
    document: dict[str, Any] = {
        "token": issued,
        "access_token": issued,
        "expires_in": lifetime,
        "issued_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    if _wants_refresh(request, form) and not caller.identity.is_anonymous:
        document["refresh_token"] = control.tokens.issue_refresh(caller.identity)
    if not caller.identity.is_anonymous:
        await control.audit(
            "token.issued",
            "success",
            actor=caller.identity.subject,
            remote=remote_address(request),
            detail={"scopes": [s.render() for s in scopes], "granted": granted},
        )
    body = json.dumps(document).encode()
    return Response(body, media_type="application/json")


def _wants_refresh(request: Request, form: FormData | None) -> bool:
    if form is not None:
        return (
            form.get("access_type") == "offline"
            or form.get("grant_type") == "refresh_token"
        )
    return request.query_params.get("offline_token") == "true"


async def _caller(
    request: Request, control: AccessControl, form: FormData | None
) -> Caller:
    if form is None or form.get("grant_type") is None:
        return await identify(request)
    grant_type = form.get("grant_type")
    if grant_type == "password":
        return await _password_grant(request, control, form)
    if grant_type == "refresh_token":
        return await _refresh_grant(request, control, form)
    raise RegistryError(
        errcodes.UNSUPPORTED, f"grant type {grant_type!r} is not supported"
    )


async def _password_grant(
    request: Request, control: AccessControl, form: FormData
) -> Caller:
    username = str(form.get("username") or "")
    password = str(form.get("password") or "")
    source = remote_address(request)
    try:
        identity = await control.authenticator.login(username, password, source)
    except LockedOut as exc:
        if exc.started:
            await control.audit(
                "login.locked", "failure", actor=username, remote=source
            )
        raise RegistryError(errcodes.TOOMANYREQUESTS, "too many failed logins") from exc
    except BackendUnavailable as exc:
        raise RegistryError(
            errcodes.UNAVAILABLE, "the identity provider cannot be reached"
        ) from exc
    if identity is None:
        await control.audit("login.failed", "failure", actor=username, remote=source)
        raise RegistryError(errcodes.UNAUTHORIZED, "invalid username or password")
    await control.audit("login", "success", actor=username, remote=source)
    return Caller(identity)


async def _refresh_grant(
    request: Request, control: AccessControl, form: FormData
) -> Caller:
    try:
        claims = control.tokens.verify(str(form.get("refresh_token") or ""))
    except InvalidToken as exc:
        await control.audit(
            "token.rejected",
            "failure",
            actor="unknown",
            remote=remote_address(request),
            detail={"reason": str(exc)},
        )
        raise RegistryError(errcodes.UNAUTHORIZED, str(exc)) from exc
    identity = claims.identity
    if not claims.is_refresh:
        await control.audit(
            "token.rejected",
            "failure",
            actor=identity.subject,
            remote=remote_address(request),
            detail={"reason": "not a refresh token"},
        )
        raise RegistryError(errcodes.UNAUTHORIZED, "not a refresh token")
    # A refresh token outlives password changes; a deleted user loses it.
    if identity.kind == "user":
        user = await control.store.read(accounts.get_user, username=identity.subject)
        if user is None:
            raise RegistryError(errcodes.UNAUTHORIZED, "the account no longer exists")
    return Caller(identity)


async def _grant(
    control: AccessControl, caller: Caller, scope: Scope
) -> dict[str, Any]:
    entry: dict[str, Any] = {"type": scope.type, "name": scope.name, "actions": []}
    if scope.type == "registry" and scope.name == "catalog":
        if "*" in scope.actions and control.may_list_catalog(caller):
            entry["actions"] = ["*"]
        return entry
    if scope.type != "repository" or not NAME_PATTERN.match(scope.name):
        return entry
    wanted = ACTIONS if "*" in scope.actions else scope.actions
    allowed = await control.actions(caller, scope.name)
    entry["actions"] = sorted(wanted & allowed)
    return entry
