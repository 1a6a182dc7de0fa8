"""Access decisions for registry requests, free of HTTP types.

A request is identified once (bearer token, HTTP Basic credentials, or nobody),
then each operation asks which actions that identity holds on a resource.
Tokens carry their grants, so checking one costs no database query.
"""

from __future__ import annotations

import base64
import binascii
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

from dockyard.auth.authenticate import Authenticator
from dockyard.auth.claims import InvalidToken, TokenClaims
from dockyard.auth.identity import ANONYMOUS, Identity
from dockyard.auth.policy import AccessPolicy
from dockyard.metadata.account_store import AccountStore

if TYPE_CHECKING:
    from dockyard.auth.tokens import TokenService

logger = logging.getLogger(__name__)

CATALOG = ("registry", "catalog")


class Unauthenticated(Exception):
    """Credentials were given but cannot be trusted."""

    def __init__(self, reason: str, actor: str, *, bad_token: bool = False) -> None:
        super().__init__(reason)
        self.reason = reason
        self.actor = actor
        self.bad_token = bad_token


@dataclass(frozen=True, slots=True)
class Caller:
    identity: Identity
    # Set when the caller presented a registry token: its grants are final.
    claims: TokenClaims | None = None

    @property
    def bearer(self) -> bool:
        return self.claims is not None


def basic_credentials(header: str) -> tuple[str, str] | None:
    try:
        decoded = base64.b64decode(header, validate=True).decode()
    except (binascii.Error, UnicodeDecodeError):
        return None
    username, sep, password = decoded.partition(":")
    return (username, password) if sep else None


class AccessControl:
    def __init__(
        self,
        tokens: TokenService,
        authenticator: Authenticator,
        policy: AccessPolicy,
        store: AccountStore,
    ) -> None:
        self.tokens = tokens
        self.authenticator = authenticator
        self.policy = policy
        self.store = store

    async def identify(self, authorization: str | None, source: str) -> Caller:
        """Who is calling; raises Unauthenticated (or LockedOut) on bad credentials."""
        if not authorization:
            return Caller(ANONYMOUS)
        scheme, _, value = authorization.partition(" ")
        scheme = scheme.lower()
        if scheme == "bearer":
            try:
                claims = self.tokens.verify(value.strip())
            except InvalidToken as exc:
                raise Unauthenticated(str(exc), "unknown", bad_token=True) from exc
            if claims.is_refresh:
                raise Unauthenticated(
                    "refresh tokens only buy access tokens",
                    claims.identity.subject,
                    bad_token=True,
                )
            return Caller(claims.identity, claims)
        if scheme == "basic":
            credentials = basic_credentials(value.strip())
            if credentials is None:
                raise Unauthenticated("malformed basic credentials", "unknown")
            identity = await self.authenticator.login(*credentials, source)
            if identity is None:
                raise Unauthenticated("invalid username or password", credentials[0])
            return Caller(identity)
        raise Unauthenticated(f"unsupported authorization scheme {scheme!r}", "unknown")

    async def actions(self, caller: Caller, repository: str) -> frozenset[str]:
        """What this request may do: a token's grants are final, else the policy."""
        if caller.claims is not None:
            return caller.claims.actions_on("repository", repository)
        return await self.policy.actions(caller.identity, repository)

    async def rights(self, caller: Caller, repository: str) -> frozenset[str]:
        """What the caller may do on any repository, whatever their token names.

        The catalog token covers `registry:catalog:*` only; which repositories
        it lists depends on the caller's own rights.
        """
        return await self.policy.actions(caller.identity, repository)

    def may_list_catalog(self, caller: Caller) -> bool:
        if caller.claims is not None:
            return "*" in caller.claims.actions_on(*CATALOG)
        return not caller.identity.is_anonymous

    async def audit(
        self,
        action: str,
        outcome: str,
        *,
        actor: str,
        target: str | None = None,
        namespace: str | None = None,
        remote: str | None = None,
        detail: Mapping[str, object] | None = None,
    ) -> None:
        try:
            await self.store.record_event(
                actor=actor,
                action=action,
                outcome=outcome,
                target=target,
                namespace=namespace,
                remote=remote,
                detail=dict(detail) if detail else None,
            )
        except Exception:
            # The audit trail must not take the registry down with it.
            logger.exception("failed to record audit event", extra={"action": action})
