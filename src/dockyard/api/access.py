"""Enforce access control in handlers, and answer with the right challenge.

Every /v2 handler starts with `require(...)`. When authentication is switched
off it returns at once. Anonymous callers and bearer tokens without enough
access get 401 with a `WWW-Authenticate: Bearer ...` challenge naming the scope
to ask for; callers who logged in with a password but lack the rights get 403.
A repository the caller may not see answers the same whether it exists or not.
"""

from __future__ import annotations

from collections.abc import Mapping

from starlette.requests import Request

from dockyard.api.common import services
from dockyard.auth.access import AccessControl, Caller, Unauthenticated
from dockyard.auth.authenticate import BackendUnavailable, LockedOut
from dockyard.auth.identity import ANONYMOUS
from dockyard.auth.policy import namespace_of
from dockyard.oci import errcodes
from dockyard.oci.errcodes import RegistryError

UNRESTRICTED = Caller(ANONYMOUS)


# Where the caller of a request is kept once identified: in the ASGI scope
# itself, which costs less per request than Starlette's `request.state`.
CALLER_KEY = "dockyard.caller"


def remote_address(request: Request) -> str:
    client = request.scope.get("client")
    return str(client[0]) if client else "unknown"


def token_realm(request: Request) -> str:
    settings = services(request).settings
    if settings.auth.realm:
        return settings.auth.realm
    base = settings.http.public_url or f"{request.url.scheme}://{request.url.netloc}"
    return f"{base.rstrip('/')}/auth/token"


def challenge(
    request: Request, scope: str | None = None, error: str | None = None
) -> dict[str, str]:
    settings = services(request).settings
    parts = [f'realm="{token_realm(request)}"', f'service="{settings.auth.service}"']
    if scope:
        parts.append(f'scope="{scope}"')
    if error:
        parts.append(f'error="{error}"')
    return {"WWW-Authenticate": "Bearer " + ",".join(parts)}


async def identify(request: Request) -> Caller:
    """The caller of this request, once per request; 401/429 on bad credentials."""
    control = services(request).access
    if control is None:
        return UNRESTRICTED
    cached: Caller | None = request.scope.get(CALLER_KEY)
    if cached is not None:
        return cached
    try:
        caller = await control.identify(
            request.headers.get("authorization"), remote_address(request)
        )
    except BackendUnavailable as exc:
        raise RegistryError(
            errcodes.UNAVAILABLE, "the identity provider cannot be reached"
        ) from exc
    except LockedOut as exc:
        if exc.started:
            await control.audit(
                "login.locked",
                "failure",
                actor="unknown",
                remote=remote_address(request),
            )
        raise RegistryError(
            errcodes.TOOMANYREQUESTS, "too many failed logins, try again later"
        ) from exc
    except Unauthenticated as exc:
        await _audit_rejection(control, request, exc)
        raise RegistryError(
            errcodes.UNAUTHORIZED,
            exc.reason,
            headers=challenge(
                request, error="invalid_token" if exc.bad_token else None
            ),
        ) from exc
    request.scope[CALLER_KEY] = caller
    return caller


async def _audit_rejection(
    control: AccessControl, request: Request, exc: Unauthenticated
) -> None:
    await control.audit(
        "token.rejected" if exc.bad_token else "login.failed",
        "failure",
        actor=exc.actor,
        target=request.url.path,
        remote=remote_address(request),
        detail={"reason": exc.reason},
    )


async def require_login(request: Request) -> Caller:
    """`GET /v2/`: anyone authenticated (the client's way to find the realm)."""
    caller = await identify(request)
    if services(request).access is not None and caller.identity.is_anonymous:
        raise RegistryError(errcodes.UNAUTHORIZED, headers=challenge(request))
    return caller


async def require(request: Request, repository: str, *actions: str) -> Caller:
    """The caller, if they hold every one of `actions` on the repository."""
    control = services(request).access
    if control is None:
        return UNRESTRICTED
    caller = await identify(request)
    granted = await control.actions(caller, repository)
    if granted.issuperset(actions):
        return caller
    scope = f"repository:{repository}:{','.join(sorted(actions))}"
    if caller.identity.is_anonymous:
        # The ordinary first step of the token dance, not worth an audit entry.
        raise RegistryError(errcodes.UNAUTHORIZED, headers=challenge(request, scope))
    await control.audit(
        "access.denied",
        "failure",
        actor=caller.identity.subject,
        target=repository,
        namespace=namespace_of(repository),
        remote=remote_address(request),
        detail={"wanted": sorted(actions), "method": request.method},
    )
    if caller.bearer:
        raise RegistryError(
            errcodes.UNAUTHORIZED,
            "insufficient scope",
            headers=challenge(request, scope, "insufficient_scope"),
        )
    raise RegistryError(errcodes.DENIED)


async def allowed(request: Request, repository: str, *actions: str) -> bool:
    """Like `require`, without failing: for optional steps such as a mount."""
    control = services(request).access
    if control is None:
        return True
    caller = await identify(request)
    granted = await control.actions(caller, repository)
    return granted.issuperset(actions)


async def audit(
    request: Request,
    action: str,
    target: str,
    namespace: str | None = None,
    detail: Mapping[str, object] | None = None,
) -> None:
    """Record a change (push, delete, ...) by this request's caller."""
    control = services(request).access
    if control is None:
        return
    caller = await identify(request)
    await control.audit(
        action,
        "success",
        actor=caller.identity.subject,
        target=target,
        namespace=namespace,
        remote=remote_address(request),
        detail=detail,
    )
