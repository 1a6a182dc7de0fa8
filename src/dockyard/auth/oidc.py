"""OIDC federation: CI identity tokens exchanged for registry grants.

A pipeline (GitHub Actions, GitLab CI, ...) presents the ID token its issuer
signed. The token is verified against the keys the issuer publishes (its JWKS),
then its claims are matched against the issuer's rules: the grants of every rule
that matches are the most the pipeline may do.
"""

from __future__ import annotations

import asyncio
import fnmatch
import logging
import math
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import httpx
import jwt

from dockyard.auth.identity import Grant, Identity
from dockyard.settings import OidcIssuer, OidcRule

logger = logging.getLogger(__name__)

# Asymmetric signatures only: "none" and HS* (a shared secret) are refused, so a
# published public key can never serve as an HMAC secret.
ALGORITHMS = frozenset({"RS256", "ES256"})
CLOCK_LEEWAY_SECONDS = 30.0
DEFAULT_JWKS_TTL = 300.0
# A token with an unknown key id makes us refetch the keys (the issuer may have
# rotated them), but no more often than this, so such tokens cannot flood it.
DEFAULT_REFETCH_INTERVAL = 5.0
JWKS_TIMEOUT_SECONDS = 5.0
# CI tokens are a few kilobytes; anything far larger is refused unparsed.
MAX_TOKEN_LENGTH = 16 * 1024
REQUIRED_CLAIMS = ["iss", "aud", "sub", "exp", "iat"]

_Keys = dict[str | None, jwt.PyJWK]


class OidcUnavailable(Exception):
    """An issuer's keys could not be fetched: the caller should answer 503."""

    def __init__(self, issuer: str) -> None:
        super().__init__(f"failed to fetch the keys of oidc issuer {issuer}")
        self.issuer = issuer


@dataclass
class _KeySource:
    """One issuer's settings and the keys last fetched from its JWKS."""

    issuer: OidcIssuer
    keys: _Keys | None = None
    loaded_at: float = -math.inf
    attempted_at: float = -math.inf
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)


class OidcFederation:
    """Authenticates CI identity tokens from the configured issuers."""

    def __init__(
        self,
        issuers: list[OidcIssuer],
        *,
        http: httpx.AsyncClient | None = None,
        jwks_ttl: float = DEFAULT_JWKS_TTL,
        refetch_interval: float = DEFAULT_REFETCH_INTERVAL,
    ) -> None:
        self._sources = {item.issuer: _KeySource(item) for item in issuers}
        self._http = http
        self._jwks_ttl = jwks_ttl
        self._refetch_interval = refetch_interval

    async def authenticate(self, token: str) -> Identity | None:
        """The identity a valid token maps to, or None if it is refused.

        Raises OidcUnavailable when the issuer's keys cannot be fetched.
        """
        source = self._source_of(token)
        if source is None:
            return None
        claims = await self._verify(source, token)
        if claims is None:
            return None
        return _identity(source.issuer, claims)

    def _source_of(self, token: str) -> _KeySource | None:
        if len(token) > MAX_TOKEN_LENGTH:
            return None
        try:
            unverified = jwt.decode(token, options={"verify_signature": False})
        except jwt.PyJWTError:
            return None
        issuer = unverified.get("iss")
        return self._sources.get(issuer) if isinstance(issuer, str) else None

    async def _verify(self, source: _KeySource, token: str) -> dict[str, Any] | None:
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError:
            return None
        if header.get("alg") not in ALGORITHMS:
            _rejected(source.issuer, "algorithm not allowed")
            return None

        key = await self._key(source, header.get("kid"))
        if key is None:
            _rejected(source.issuer, "unknown signing key")
            return None
        return _decode(source.issuer, token, key)

    async def _key(self, source: _KeySource, kid: object) -> jwt.PyJWK | None:
        if kid is not None and not isinstance(kid, str):
            return None
        async with source.lock:
            keys = await self._keys(source, refetch=False)
            if _pick(keys, kid) is None:
                keys = await self._keys(source, refetch=True)
            return _pick(keys, kid)

    async def _keys(self, source: _KeySource, *, refetch: bool) -> _Keys:
        now = time.monotonic()
        fresh = now - source.loaded_at < self._jwks_ttl
        if source.keys is not None and fresh and not refetch:
            return source.keys
        if now - source.attempted_at < self._refetch_interval:
            # Fetched (or failed to) a moment ago: do not ask again so soon.
            if source.keys is None:
                raise OidcUnavailable(source.issuer.issuer)
            return source.keys

        return await self._refresh(source)

    async def _refresh(self, source: _KeySource) -> _Keys:
        # Nothing is recorded if the fetch is cancelled, so the next request
        # tries again. A failure forgets the old keys: they may be withdrawn.
        started = time.monotonic()
        try:
            keys = await self._fetch(source.issuer)
        except OidcUnavailable:
            source.keys, source.attempted_at = None, time.monotonic()
            raise
        source.keys, source.loaded_at, source.attempted_at = keys, started, started
        return keys

    async def _fetch(self, issuer: OidcIssuer) -> _Keys:
        try:
            keys = _parse_jwks(await self._get_json(issuer.jwks_url))
        except (httpx.HTTPError, ValueError) as exc:
            logger.warning(
                "failed to fetch oidc keys",
                extra={"iss": issuer.issuer, "url": issuer.jwks_url, "error": str(exc)},
            )
            raise OidcUnavailable(issuer.issuer) from exc

        if not keys:
            logger.warning(
                "oidc keys include no usable key", extra={"iss": issuer.issuer}
            )
        logger.debug(
            "oidc keys fetched", extra={"iss": issuer.issuer, "keys": len(keys)}
        )
        return keys

    async def _get_json(self, url: str) -> object:
        if self._http is not None:
            response = await self._http.get(url, timeout=JWKS_TIMEOUT_SECONDS)
        else:
            # Keys are fetched every few minutes at most: a client per fetch is
            # cheap, and leaves nothing to close.
            async with httpx.AsyncClient(timeout=JWKS_TIMEOUT_SECONDS) as client:
                response = await client.get(url)
        response.raise_for_status()
        return response.json()


def _parse_jwks(document: object) -> _Keys:
    """The usable signing keys of a JWKS document, by key id."""
    if not isinstance(document, Mapping) or not isinstance(document.get("keys"), list):
        raise ValueError("a JWKS document needs a list of keys")
    keys: _Keys = {}
    for entry in document["keys"]:
        key = _signing_key(entry)
        if key is not None:
            keys[key.key_id] = key
    return keys


def _signing_key(entry: object) -> jwt.PyJWK | None:
    if not isinstance(entry, dict) or entry.get("use", "sig") != "sig":
        return None
    if entry.get("kty") not in ("RSA", "EC"):
        return None
    try:
        key = jwt.PyJWK(entry)
    except jwt.PyJWTError:
        return None
    return key if key.algorithm_name in ALGORITHMS else None


def _pick(keys: _Keys, kid: str | None) -> jwt.PyJWK | None:
    # Tokens without a key id are accepted only from an issuer with one key.
    if kid is None and len(keys) == 1:
        return next(iter(keys.values()))
    return keys.get(kid) if kid is not None else None


def _decode(issuer: OidcIssuer, token: str, key: jwt.PyJWK) -> dict[str, Any] | None:
    try:
        return jwt.decode(
            token,
            key,
            algorithms=[key.algorithm_name],
            audience=issuer.audience,
            issuer=issuer.issuer,
            leeway=CLOCK_LEEWAY_SECONDS,
            options={"require": REQUIRED_CLAIMS, "enforce_minimum_key_length": True},
        )
    except jwt.PyJWTError as exc:
        _rejected(issuer, type(exc).__name__)
        return None


def _rejected(issuer: OidcIssuer, reason: str) -> None:
    logger.debug("oidc token rejected", extra={"iss": issuer.issuer, "reason": reason})


def _identity(issuer: OidcIssuer, claims: Mapping[str, Any]) -> Identity | None:
    sub = str(claims["sub"])
    rules = [rule for rule in issuer.rules if _matches(rule, claims)]
    if not rules:
        logger.info(
            "oidc token matched no rule", extra={"iss": issuer.issuer, "sub": sub}
        )
        return None
    return Identity(
        subject=f"{issuer.issuer}#{sub}",
        kind="federated",
        grants=_union(rules),
        source=f"oidc:{issuer.issuer}",
        extra={"sub": sub},
    )


def _matches(rule: OidcRule, claims: Mapping[str, Any]) -> bool:
    """Whether every claim the rule names has a value its pattern matches."""
    for name, pattern in rule.claims.items():
        value = _claim_text(claims.get(name))
        if value is None or not fnmatch.fnmatchcase(value, pattern):
            return False
    return True


def _claim_text(value: object) -> str | None:
    """A claim as rules see it: scalars as text, JSON style; others never match."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str | int | float):
        return str(value)
    return None


def _union(rules: Iterable[OidcRule]) -> tuple[Grant, ...]:
    """The grants of all the rules, with the actions on one pattern merged."""
    actions: dict[str, set[str]] = {}
    for rule in rules:
        for grant in rule.grants:
            actions.setdefault(grant.repository, set()).update(grant.actions)
    return tuple(Grant(pattern, frozenset(names)) for pattern, names in actions.items())
