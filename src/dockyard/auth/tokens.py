"""Registry bearer tokens: short-lived signed JWTs carrying granted access."""

from __future__ import annotations

import time
import uuid
from typing import Any

import jwt

from dockyard.auth.claims import InvalidToken, TokenClaims
from dockyard.auth.identity import Grant, Identity
from dockyard.auth.keys import SigningKeys

ALGORITHM = "ES256"
REFRESH_TTL = 30 * 24 * 3600
# Verified tokens remembered per process, so the hot path skips the signature.
CACHE_SIZE = 10_000
LEEWAY = 5


class TokenService:
    def __init__(self, keys: SigningKeys, issuer: str, audience: str, ttl: int) -> None:
        self.keys = keys
        self.issuer = issuer
        self.audience = audience
        self.ttl = ttl
        self._verified: dict[str, TokenClaims] = {}
        self._revision = keys.revision

    def issue(
        self, identity: Identity, access: list[dict[str, Any]]
    ) -> tuple[str, int]:
        """A token granting `access`; returns it and its lifetime in seconds."""
        claims = {"sub": identity.subject, "access": access, **_profile(identity)}
        return self._sign(claims, self.ttl), self.ttl

    def issue_refresh(self, identity: Identity) -> str:
        claims = {"sub": identity.subject, "typ": "refresh", **_profile(identity)}
        return self._sign(claims, REFRESH_TTL)

    def _sign(self, claims: dict[str, Any], ttl: int) -> str:
        now = int(time.time())
        kid, key = self.keys.current
        payload = {
            "iss": self.issuer,
            "aud": self.audience,
            "iat": now,
            "nbf": now - LEEWAY,
            "exp": now + ttl,
            "jti": uuid.uuid4().hex,
            **claims,
        }
        return jwt.encode(payload, key, algorithm=ALGORITHM, headers={"kid": kid})

    def verify(self, token: str) -> TokenClaims:
        self.keys.refresh()
        if self.keys.revision != self._revision:
            # A key was retired (or added): tokens verified before may no
            # longer be trusted, so check every one again.
            self._verified.clear()
            self._revision = self.keys.revision
        cached = self._verified.get(token)
        if cached is not None:
            if cached.expires_at > time.time():
                return cached
            del self._verified[token]
        claims = self._decode(token)
        if len(self._verified) >= CACHE_SIZE:
            del self._verified[next(iter(self._verified))]
        self._verified[token] = claims
        return claims

    def _decode(self, token: str) -> TokenClaims:
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError as exc:
            raise InvalidToken("malformed token") from exc
        if header.get("alg") != ALGORITHM:
            raise InvalidToken(f"algorithm {header.get('alg')!r} is not accepted")
        key = self.keys.public_key(str(header.get("kid", "")))
        if key is None:
            raise InvalidToken("unknown signing key")
        try:
            payload = jwt.decode(
                token,
                key,
                algorithms=[ALGORITHM],
                audience=self.audience,
                issuer=self.issuer,
                leeway=LEEWAY,
                options={"require": ["exp", "iat", "iss", "aud", "sub"]},
            )
        except jwt.ExpiredSignatureError as exc:
            raise InvalidToken("token expired") from exc
        except jwt.InvalidAudienceError as exc:
            raise InvalidToken("token is for another service") from exc
        except jwt.InvalidIssuerError as exc:
            raise InvalidToken("token from another issuer") from exc
        except jwt.PyJWTError as exc:
            raise InvalidToken(f"invalid token: {exc}") from exc
        access = payload.get("access", [])
        if not isinstance(access, list):
            raise InvalidToken("access claim must be a list")
        return TokenClaims(
            identity=_identity(payload),
            access=tuple(a for a in access if isinstance(a, dict)),
            expires_at=float(payload["exp"]),
            is_refresh=payload.get("typ") == "refresh",
        )


def _profile(identity: Identity) -> dict[str, Any]:
    """What the registry needs to know of the caller beyond the granted access.

    Listing the catalog filters repositories by the caller's rights, so the
    token carries the identity's kind, groups and explicit grants.
    """
    profile: dict[str, Any] = {"kind": identity.kind}
    if identity.groups:
        profile["groups"] = list(identity.groups)
    if identity.is_admin:
        profile["admin"] = True
    if identity.grants is not None:
        profile["grants"] = [
            {"repository": g.pattern, "actions": sorted(g.actions)}
            for g in identity.grants
        ]
    return profile


def _identity(payload: dict[str, Any]) -> Identity:
    grants = payload.get("grants")
    kind = payload.get("kind", "user")
    if kind not in ("anonymous", "user", "robot", "federated"):
        raise InvalidToken(f"unknown identity kind {kind!r}")
    return Identity(
        subject=str(payload["sub"]),
        kind=kind,
        groups=tuple(str(g) for g in payload.get("groups", ())),
        is_admin=payload.get("admin") is True,
        grants=None
        if grants is None
        else tuple(
            Grant(str(g["repository"]), frozenset(g["actions"])) for g in grants
        ),
        source="token",
    )
