"""Turn credentials into an identity: local users, robots, LDAP, OIDC tokens.

Every client sends the same thing (a username and a password, over HTTP Basic or
the token endpoint's form), so the username says which kind of account it is:
`robot$<name>` for robot accounts, the configured OIDC username for CI identity
tokens, anything else for people (local first, then the directory).
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import secrets
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

from anyio import to_thread

from dockyard.auth.identity import Grant, Identity
from dockyard.auth.lockout import Lockout
from dockyard.auth.passwords import verify_password
from dockyard.metadata import accounts
from dockyard.metadata.account_store import AccountStore

if TYPE_CHECKING:
    from dockyard.settings import AuthSettings

logger = logging.getLogger(__name__)

ROBOT_PREFIX = "robot$"
OIDC_USERNAME = "oidc"
# Successful logins remembered per process, so HTTP Basic on every request
# does not pay for bcrypt every time.
CACHE_SECONDS = 60.0
CACHE_SIZE = 10_000


class TokenAuthenticator(Protocol):
    async def authenticate(self, token: str) -> Identity | None: ...


class DirectoryAuthenticator(Protocol):
    async def authenticate(self, username: str, password: str) -> Identity | None: ...


class LockedOut(Exception):
    """Too many failed logins from this source; try again later.

    `started` is true for the failure that caused the lock-out, so that it is
    reported once rather than at every refused attempt.
    """

    def __init__(self, source: str, *, started: bool = False) -> None:
        super().__init__(source)
        self.started = started


class BackendUnavailable(Exception):
    """The directory or an identity provider could not be reached."""


@dataclass(frozen=True, slots=True)
class _CachedLogin:
    expires: float
    identity: Identity
    standing: str | None


class Authenticator:
    def __init__(
        self,
        store: AccountStore,
        lockout: Lockout,
        directory: DirectoryAuthenticator | None = None,
        federation: TokenAuthenticator | None = None,
        outages: tuple[type[Exception], ...] = (),
    ) -> None:
        self.store = store
        # What the directory and the federation raise when they cannot answer.
        self.outages = outages
        self.lockout = lockout
        self.directory = directory
        self.federation = federation
        self._cache_key = secrets.token_bytes(32)
        self._cache: dict[bytes, _CachedLogin] = {}

    async def login(self, username: str, password: str, source: str) -> Identity | None:
        """The identity for these credentials, or None (counted as a failure)."""
        if self.lockout.locked(source):
            raise LockedOut(source)
        key = hmac.new(
            self._cache_key, f"{username}\0{password}".encode(), hashlib.sha256
        ).digest()
        cached = self._cache.get(key)
        if cached is not None:
            if cached.expires > time.monotonic() and (
                await self._standing(username) == cached.standing
            ):
                return cached.identity
            del self._cache[key]

        try:
            identity = await self._check(username, password) if password else None
        except self.outages as exc:
            logger.warning(
                "failed to reach identity backend", extra={"error": str(exc)}
            )
            raise BackendUnavailable(str(exc)) from exc
        if identity is None:
            if self.lockout.failed(source):
                logger.warning("login locked out", extra={"source": source})
                raise LockedOut(source, started=True)
            return None
        self.lockout.succeeded(source)
        if len(self._cache) >= CACHE_SIZE:
            del self._cache[next(iter(self._cache))]
        standing = await self._standing(username)
        if standing is not None:
            self._cache[key] = _CachedLogin(
                time.monotonic() + CACHE_SECONDS, identity, standing
            )
        return identity

    async def _standing(self, username: str) -> str | None:
        """What a cached login depends on, read back cheaply at every use.

        A changed password, a deleted user, or a revoked or expired robot must
        end a cached login at once, without paying for bcrypt again.
        """
        if username.startswith(ROBOT_PREFIX):
            robot = await self.store.get_robot(username)
            if robot is None or robot.revoked:
                return None
            if robot.expires_at is not None and robot.expires_at < time.time():
                return None
            return robot.secret_hash
        if username == OIDC_USERNAME and self.federation is not None:
            return "federated"  # the ID token itself carries its expiry
        user = await self.store.get_user(username.lower())
        if user is None:
            return None
        return f"{user.password_hash}:{user.is_admin}"

    async def _check(self, username: str, password: str) -> Identity | None:
        if username.startswith(ROBOT_PREFIX):
            return await self._robot(username, password)
        if username == OIDC_USERNAME and self.federation is not None:
            return await self.federation.authenticate(password)
        user = await self.store.get_user(username)
        if user is not None and user.password_hash is not None:
            if await to_thread.run_sync(verify_password, password, user.password_hash):
                return Identity(username, "user", is_admin=user.is_admin)
            return None
        if self.directory is not None:
            return await self._directory_user(username, password)
        return None

    async def _robot(self, name: str, secret: str) -> Identity | None:
        robot = await self.store.get_robot(name)
        if robot is None or robot.revoked:
            return None
        if robot.expires_at is not None and robot.expires_at < time.time():
            return None
        if not await to_thread.run_sync(verify_password, secret, robot.secret_hash):
            return None
        await self.store.write(accounts.touch_robot, name=name, when=time.time())
        grants = tuple(
            Grant(g["repository"], frozenset(g["actions"])) for g in robot.grants
        )
        return Identity(name, "robot", grants=grants, source="robot")

    async def _directory_user(self, username: str, password: str) -> Identity | None:
        assert self.directory is not None
        found = await self.directory.authenticate(username, password)
        if found is None:
            return None
        # Directories compare names without case; registry names are lower case.
        username = username.lower()
        # A local row (without a password) records the directory user, so that
        # administrators can be designated and the personal namespace exists.
        user = await self.store.get_user(username)
        if user is None:
            await self.store.write(
                accounts.create_user,
                username=username,
                password_hash=None,
                source="ldap",
            )
        is_admin = bool(user and user.is_admin)
        return Identity(
            username, "user", groups=found.groups, is_admin=is_admin, source="ldap"
        )


def build_authenticator(settings: AuthSettings, store: AccountStore) -> Authenticator:
    """The authenticator for the configured backends (LDAP, OIDC: optional)."""
    directory: DirectoryAuthenticator | None = None
    federation: TokenAuthenticator | None = None
    outages: list[type[Exception]] = []
    if settings.ldap is not None:
        from dockyard.auth.ldap import LdapAuthenticator, LdapUnavailable

        directory = LdapAuthenticator(settings.ldap)
        outages.append(LdapUnavailable)
    if settings.oidc:
        from dockyard.auth.oidc import OidcFederation, OidcUnavailable

        federation = OidcFederation(list(settings.oidc))
        outages.append(OidcUnavailable)
    lockout = Lockout(settings.lockout_attempts, settings.lockout_seconds)
    return Authenticator(store, lockout, directory, federation, tuple(outages))
