"""OIDC federation against a live test issuer on loopback."""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import socket
import time
from collections.abc import Iterator
from typing import Any

import anyio
import httpx
import pydantic
import pytest
from cryptography.hazmat.primitives import serialization

from dockyard.auth.identity import Grant, Identity
from dockyard.auth.oidc import OidcFederation, OidcUnavailable
from dockyard.settings import OidcIssuer, validate
from tests.support.oidc_issuer import OidcTestIssuer, b64url, new_ec_key, new_rsa_key

pytestmark = pytest.mark.anyio

API_PUSH = {
    "claims": {"repository": "acme/api"},
    "grants": [{"repository": "acme/api", "actions": ["pull", "push"]}],
}


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def issuer() -> Iterator[OidcTestIssuer]:
    with OidcTestIssuer() as server:
        yield server


def settings(
    issuer: OidcTestIssuer, *rules: dict[str, Any], jwks_url: str | None = None
) -> OidcIssuer:
    return validate(
        OidcIssuer,
        {
            "issuer": issuer.issuer,
            "jwks_url": jwks_url or issuer.jwks_url,
            "audience": issuer.audience,
            "rules": list(rules) or [API_PUSH],
        },
    )


def federation(
    issuer: OidcTestIssuer, *rules: dict[str, Any], **options: Any
) -> OidcFederation:
    return OidcFederation([settings(issuer, *rules)], **options)


def grants(identity: Identity | None) -> set[Grant]:
    assert identity is not None
    assert identity.grants is not None
    return set(identity.grants)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


# Accepted tokens and the identity they map to.


async def test_valid_token_maps_to_federated_identity(issuer: OidcTestIssuer) -> None:
    identity = await federation(issuer).authenticate(issuer.issue())

    assert identity == Identity(
        subject=f"{issuer.issuer}#repo:acme/api:ref:refs/heads/main",
        kind="federated",
        grants=(Grant("acme/api", frozenset({"pull", "push"})),),
        source=f"oidc:{issuer.issuer}",
        extra={"sub": "repo:acme/api:ref:refs/heads/main"},
    )


async def test_es256_token_is_accepted(issuer: OidcTestIssuer) -> None:
    token = issuer.issue(kid="ec-1", alg="ES256")

    assert await federation(issuer).authenticate(token) is not None


async def test_audience_list_containing_ours_is_accepted(
    issuer: OidcTestIssuer,
) -> None:
    token = issuer.issue({"aud": ["other", issuer.audience]})

    assert await federation(issuer).authenticate(token) is not None


async def test_expiry_within_leeway_is_accepted(issuer: OidcTestIssuer) -> None:
    token = issuer.issue({"exp": int(time.time()) - 10})

    assert await federation(issuer).authenticate(token) is not None


async def test_token_without_kid_uses_the_only_key(issuer: OidcTestIssuer) -> None:
    issuer.keys = {"only": issuer.rsa_key}
    token = issuer.issue(key=issuer.rsa_key, kid=None)

    assert await federation(issuer).authenticate(token) is not None


async def test_custom_http_client_is_used(issuer: OidcTestIssuer) -> None:
    async with httpx.AsyncClient() as http:
        oidc = federation(issuer, http=http)
        assert await oidc.authenticate(issuer.issue()) is not None


# Rules.


async def test_glob_claims_match(issuer: OidcTestIssuer) -> None:
    rule = {
        "claims": {"repository": "acme/*", "ref": "refs/tags/v*"},
        "grants": [{"repository": "acme/*", "actions": ["pull"]}],
    }
    oidc = federation(issuer, rule)
    tag = issuer.issue({"repository": "acme/web", "ref": "refs/tags/v1.2.0"})
    branch = issuer.issue({"repository": "acme/web", "ref": "refs/heads/main"})

    assert grants(await oidc.authenticate(tag)) == {
        Grant("acme/*", frozenset({"pull"}))
    }
    assert await oidc.authenticate(branch) is None


async def test_matching_rules_grant_the_union(issuer: OidcTestIssuer) -> None:
    pull_all = {
        "claims": {"repository": "acme/*"},
        "grants": [
            {"repository": "acme/*", "actions": ["pull"]},
            {"repository": "acme/api", "actions": ["pull"]},
        ],
    }
    main_only = {
        "claims": {"ref": "refs/heads/main"},
        "grants": [{"repository": "acme/api", "actions": ["push", "delete"]}],
    }
    other_repo = {
        "claims": {"repository": "acme/web"},
        "grants": [{"repository": "acme/web", "actions": ["push"]}],
    }
    oidc = federation(issuer, pull_all, main_only, other_repo)

    assert grants(await oidc.authenticate(issuer.issue())) == {
        Grant("acme/*", frozenset({"pull"})),
        Grant("acme/api", frozenset({"pull", "push", "delete"})),
    }


async def test_boolean_claim_matches_as_json_text(issuer: OidcTestIssuer) -> None:
    rule = {**API_PUSH, "claims": {"ref_protected": "true"}}
    oidc = federation(issuer, rule)

    assert await oidc.authenticate(issuer.issue({"ref_protected": True})) is not None
    assert await oidc.authenticate(issuer.issue({"ref_protected": False})) is None


async def test_missing_claim_never_matches(issuer: OidcTestIssuer) -> None:
    rule = {**API_PUSH, "claims": {"environment": "*"}}

    assert await federation(issuer, rule).authenticate(issuer.issue()) is None


async def test_no_matching_rule_returns_none_and_logs(
    issuer: OidcTestIssuer, caplog: pytest.LogCaptureFixture
) -> None:
    token = issuer.issue({"repository": "evil/api"})

    with caplog.at_level(logging.INFO, logger="dockyard.auth.oidc"):
        assert await federation(issuer).authenticate(token) is None

    (record,) = [r for r in caplog.records if r.levelno == logging.INFO]
    assert record.getMessage() == "oidc token matched no rule"
    assert record.__dict__["iss"] == issuer.issuer
    assert record.__dict__["sub"] == "repo:acme/api:ref:refs/heads/main"
    assert token not in caplog.text


def test_rule_without_claims_is_refused_by_the_settings(
    issuer: OidcTestIssuer,
) -> None:
    # A rule without claims would admit every pipeline of a shared issuer.
    with pytest.raises(pydantic.ValidationError):
        federation(issuer, {**API_PUSH, "claims": {}})


# Refused tokens.


# Times are offsets from the moment the test runs (not from collection, which
# may be minutes earlier in a long run).
@pytest.mark.parametrize(
    ("claims", "offsets"),
    [
        pytest.param({"aud": "someone-else"}, {}, id="wrong-audience"),
        pytest.param({"aud": None}, {}, id="no-audience"),
        pytest.param({}, {"exp": -120}, id="expired"),
        pytest.param({"exp": None}, {}, id="no-expiry"),
        pytest.param({}, {"nbf": 120}, id="future-nbf"),
        pytest.param({}, {"iat": 120}, id="future-iat"),
        pytest.param({"sub": None}, {}, id="no-subject"),
    ],
)
async def test_invalid_claims_are_refused(
    issuer: OidcTestIssuer, claims: dict[str, Any], offsets: dict[str, int]
) -> None:
    now = int(time.time())
    token = issuer.issue({**claims, **{k: now + v for k, v in offsets.items()}})

    assert await federation(issuer).authenticate(token) is None


async def test_unknown_issuer_is_refused_without_fetching_keys(
    issuer: OidcTestIssuer,
) -> None:
    token = issuer.issue({"iss": "https://unknown.example"})

    assert await federation(issuer).authenticate(token) is None
    assert issuer.jwks_requests == 0


@pytest.mark.parametrize(
    ("kid", "alg", "key"),
    [
        pytest.param("rsa-1", "RS256", new_rsa_key(), id="other-rsa-key"),
        pytest.param("ec-1", "ES256", new_ec_key(), id="other-ec-key"),
        pytest.param("rsa-1", "RS384", None, id="rs384"),
        pytest.param("rsa-1", "PS256", None, id="ps256"),
    ],
)
async def test_wrong_signature_or_algorithm_is_refused(
    issuer: OidcTestIssuer, kid: str, alg: str, key: Any
) -> None:
    token = issuer.issue(kid=kid, alg=alg, key=key)

    assert await federation(issuer).authenticate(token) is None


async def test_algorithm_not_matching_the_key_is_refused(
    issuer: OidcTestIssuer,
) -> None:
    # Signed by the EC key, but naming the RSA key's id.
    token = issuer.issue(key=issuer.ec_key, kid="rsa-1", alg="ES256")

    assert await federation(issuer).authenticate(token) is None


@pytest.mark.parametrize("alg", ["none", "None", "NONE"])
async def test_unsigned_token_is_refused(issuer: OidcTestIssuer, alg: str) -> None:
    token = issuer.issue_raw({"alg": alg, "kid": "rsa-1"}, {}, lambda _: b"")

    assert await federation(issuer).authenticate(token) is None


async def test_hmac_with_public_key_as_secret_is_refused(
    issuer: OidcTestIssuer,
) -> None:
    public_pem = issuer.rsa_key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )

    def sign(data: bytes) -> bytes:
        return hmac.new(public_pem, data, hashlib.sha256).digest()

    token = issuer.issue_raw({"alg": "HS256", "kid": "rsa-1"}, {}, sign)

    assert await federation(issuer).authenticate(token) is None


async def test_tampered_payload_is_refused(issuer: OidcTestIssuer) -> None:
    oidc = federation(issuer, {**API_PUSH, "claims": {"repository": "*"}})
    head, _, signature = issuer.issue({"repository": "acme/web"}).split(".")
    forged = issuer.claims(repository="acme/api")
    token = f"{head}.{b64url(json.dumps(forged).encode())}.{signature}"

    assert await oidc.authenticate(token) is None


@pytest.mark.parametrize("token", ["", "not-a-jwt", "a.b.c", "x" * 20_000])
async def test_garbage_is_refused(issuer: OidcTestIssuer, token: str) -> None:
    assert await federation(issuer).authenticate(token) is None


# The key cache.


async def test_keys_are_cached(issuer: OidcTestIssuer) -> None:
    oidc = federation(issuer)

    await oidc.authenticate(issuer.issue())
    await oidc.authenticate(issuer.issue(kid="ec-1", alg="ES256"))

    assert issuer.jwks_requests == 1


async def test_concurrent_logins_share_one_fetch(issuer: OidcTestIssuer) -> None:
    oidc = federation(issuer)
    results: list[Identity | None] = []

    async def login() -> None:
        results.append(await oidc.authenticate(issuer.issue()))

    async with anyio.create_task_group() as group:
        for _ in range(5):
            group.start_soon(login)

    assert len(results) == 5 and None not in results
    assert issuer.jwks_requests == 1


async def test_keys_are_refetched_when_stale(issuer: OidcTestIssuer) -> None:
    oidc = federation(issuer, jwks_ttl=0.0, refetch_interval=0.0)

    await oidc.authenticate(issuer.issue())
    await oidc.authenticate(issuer.issue())

    assert issuer.jwks_requests == 2


async def test_rotated_key_is_picked_up(issuer: OidcTestIssuer) -> None:
    oidc = federation(issuer, refetch_interval=0.0)
    old = issuer.issue()
    assert await oidc.authenticate(old) is not None

    kid = issuer.rotate()

    assert await oidc.authenticate(issuer.issue(kid=kid)) is not None
    assert issuer.jwks_requests == 2
    # The refetch also dropped the key the issuer withdrew.
    assert await oidc.authenticate(old) is None


async def test_unknown_kid_refetches_at_most_once_per_interval(
    issuer: OidcTestIssuer,
) -> None:
    oidc = federation(issuer, refetch_interval=0.2)
    await oidc.authenticate(issuer.issue())
    ghost = new_rsa_key()
    await anyio.sleep(0.25)

    for kid in ("ghost-1", "ghost-2", "ghost-3"):
        assert await oidc.authenticate(issuer.issue(key=ghost, kid=kid)) is None

    assert issuer.jwks_requests == 2


async def test_unavailable_jwks_raises(issuer: OidcTestIssuer) -> None:
    issuer.available = False

    with pytest.raises(OidcUnavailable):
        await federation(issuer).authenticate(issuer.issue())


async def test_unreachable_jwks_raises(issuer: OidcTestIssuer) -> None:
    dead = f"http://127.0.0.1:{free_port()}/.well-known/jwks.json"
    oidc = OidcFederation([settings(issuer, jwks_url=dead)])

    with pytest.raises(OidcUnavailable):
        await oidc.authenticate(issuer.issue())


@pytest.mark.parametrize(
    "path", ["/missing", "/.well-known/openid-configuration"], ids=["404", "no-keys"]
)
async def test_invalid_jwks_document_raises(issuer: OidcTestIssuer, path: str) -> None:
    oidc = OidcFederation([settings(issuer, jwks_url=f"{issuer.issuer}{path}")])

    with pytest.raises(OidcUnavailable):
        await oidc.authenticate(issuer.issue())


async def test_recovers_after_outage(issuer: OidcTestIssuer) -> None:
    oidc = federation(issuer, refetch_interval=0.0)
    issuer.available = False
    with pytest.raises(OidcUnavailable):
        await oidc.authenticate(issuer.issue())

    issuer.available = True

    assert await oidc.authenticate(issuer.issue()) is not None


async def test_outage_is_not_retried_within_interval(issuer: OidcTestIssuer) -> None:
    oidc = federation(issuer)
    issuer.available = False

    for _ in range(3):
        with pytest.raises(OidcUnavailable):
            await oidc.authenticate(issuer.issue())

    assert issuer.jwks_requests == 1
