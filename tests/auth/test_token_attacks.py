"""Forged, stale and misused credentials are refused, and each refusal is audited.

Tokens are forged here the way an attacker would: no algorithm, a key of their
own (claiming the server's key id or another), HMAC keyed with the server's
public key, a payload edited under the old signature. Others are genuine but
used where they do not belong: expired, for another audience or issuer, for
another repository, a refresh token in place of an access token. To be sure the
forging itself is sound, a token minted the same way with the server's own key
(read from `<data_dir>/keys/`) must be accepted.

Each probe uses a path or repository name of its own, so that its audit event
can be told from every other.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from tests.auth.conftest import (
    ADMIN,
    SERVICE,
    Account,
    AuthServer,
    add_user,
    audit_events,
    auth_server,
    bearer,
    challenge_of,
    claims_of,
    dockyard,
    dockyard_batch,
    error_code,
    find_events,
    granted_actions,
    token_for,
)
from tests.support.registry_client import RegistryClient

READER = Account("rita", "rita-pass-3310")
APP = "acme/app"
LOCKOUT_ATTEMPTS = 3
# How long the server may take to notice keys changed on disk (it rescans its
# key folder at most every 5 seconds), plus a margin.
KEY_RESCAN_WAIT = 7.0
REFUSED = {"token.rejected", "login.failed", "access.denied"}


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AuthServer]:
    registry = auth_server(
        tmp_path_factory.mktemp("attacks"),
        env={"DOCKYARD_AUTH_LOCKOUT_ATTEMPTS": str(LOCKOUT_ATTEMPTS)},
    )
    with registry:
        dockyard_batch(
            registry.data_dir,
            [
                add_user(READER),
                ["namespace", "create", "acme"],
                ["namespace", "grant", "acme", READER.username, "reader"],
            ],
        )
        with registry.client(ADMIN) as http:
            RegistryClient(http).push_image(APP, "v1")
        yield registry


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def b64json(document: dict[str, Any]) -> str:
    return b64url(json.dumps(document, separators=(",", ":")).encode())


def reader_claims(**changes: Any) -> dict[str, Any]:
    """Valid claims for the reader's pull on APP; `None` in changes drops a claim."""
    now = int(time.time())
    claims: dict[str, Any] = {
        "iss": "dockyard",
        "aud": SERVICE,
        "sub": READER.username,
        "kind": "user",
        "iat": now,
        "nbf": now - 5,
        "exp": now + 300,
        "jti": uuid.uuid4().hex,
        "access": [{"type": "repository", "name": APP, "actions": ["pull"]}],
    }
    claims.update(changes)
    return {key: value for key, value in claims.items() if value is not None}


def sign(key: ec.EllipticCurvePrivateKey, kid: str | None, **changes: Any) -> str:
    headers = {"kid": kid} if kid is not None else None
    return jwt.encode(reader_claims(**changes), key, algorithm="ES256", headers=headers)


def key_file(server: AuthServer, kid: str) -> Path:
    return server.data_dir / "keys" / f"{kid}.pem"


def load_key(path: Path) -> ec.EllipticCurvePrivateKey:
    key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    assert isinstance(key, ec.EllipticCurvePrivateKey)
    return key


def server_signing_key(server: AuthServer) -> tuple[str, ec.EllipticCurvePrivateKey]:
    """The key id the server signs with now, and that key from its key folder."""
    issued = token_for(server, READER, f"repository:{APP}:pull")
    kid = jwt.get_unverified_header(issued)["kid"]
    path = key_file(server, kid)
    assert path.exists(), sorted(p.name for p in path.parent.glob("*.pem"))
    return kid, load_key(path)


def probe_path() -> str:
    """A manifest URL in APP that no other probe uses (found again in the audit)."""
    return f"/v2/{APP}/manifests/probe-{uuid.uuid4().hex[:16]}"


def use_token(server: AuthServer, token: str, path: str) -> httpx.Response:
    return httpx.get(f"{server.url}{path}", headers=bearer(token))


def assert_rejected_and_audited(
    server: AuthServer, response: httpx.Response, path: str
) -> None:
    """A bad token: 401 asking for a new one, and a `token.rejected` event."""
    assert response.status_code == 401, response.text
    assert error_code(response) == "UNAUTHORIZED"
    assert challenge_of(response).get("error") == "invalid_token"
    assert find_events(server.data_dir, REFUSED, target=path), (
        f"no refusal of {path} in the audit log"
    )


# -- the forging is sound ----------------------------------------------------------


def test_token_minted_with_server_key_is_accepted(server: AuthServer) -> None:
    kid, key = server_signing_key(server)

    response = use_token(server, sign(key, kid), f"/v2/{APP}/manifests/v1")

    assert response.status_code == 200, response.text


# -- forged tokens ---------------------------------------------------------------------


def test_token_with_alg_none_is_refused_and_audited(server: AuthServer) -> None:
    kid, _ = server_signing_key(server)
    header = {"alg": "none", "typ": "JWT", "kid": kid}
    payload = reader_claims(admin=True)
    path = probe_path()

    for token in (f"{b64json(header)}.{b64json(payload)}.", b64json(header) + "."):
        response = use_token(server, token, path)
        assert_rejected_and_audited(server, response, path)


def test_token_hmac_signed_with_server_public_key_is_refused(
    server: AuthServer,
) -> None:
    kid, key = server_signing_key(server)
    public_pem = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    signed = f"{b64json({'alg': 'HS256', 'typ': 'JWT', 'kid': kid})}." + b64json(
        reader_claims(admin=True)
    )
    mac = hmac.new(public_pem, signed.encode(), hashlib.sha256).digest()
    path = probe_path()

    response = use_token(server, f"{signed}.{b64url(mac)}", path)

    assert_rejected_and_audited(server, response, path)


@pytest.mark.parametrize("claimed_kid", ["server", "own", "absent"])
def test_token_signed_by_another_key_is_refused_and_audited(
    server: AuthServer, claimed_kid: str
) -> None:
    server_kid, _ = server_signing_key(server)
    attacker = ec.generate_private_key(ec.SECP256R1())
    kid = {"server": server_kid, "own": uuid.uuid4().hex, "absent": None}[claimed_kid]
    path = probe_path()

    response = use_token(server, sign(attacker, kid, admin=True), path)

    assert_rejected_and_audited(server, response, path)


def test_tampered_payload_under_genuine_signature_is_refused(
    server: AuthServer,
) -> None:
    genuine = token_for(server, READER, f"repository:{APP}:pull")
    header, payload, signature = genuine.split(".")
    claims = claims_of(genuine)
    claims["access"] = [
        {"type": "repository", "name": APP, "actions": ["delete", "pull", "push"]}
    ]
    tampered = f"{header}.{b64json(claims)}.{signature}"
    assert tampered != genuine
    path = probe_path()

    response = use_token(server, tampered, path)

    assert_rejected_and_audited(server, response, path)


# -- genuine keys, wrong claims -----------------------------------------------------


HOUR_AGO = int(time.time()) - 3600


@pytest.mark.parametrize(
    "changes",
    [
        pytest.param(
            {"exp": HOUR_AGO, "iat": HOUR_AGO - 600, "nbf": HOUR_AGO - 600},
            id="expired",
        ),
        pytest.param({"nbf": HOUR_AGO + 7200}, id="not-yet-valid"),
        pytest.param({"aud": "another-registry"}, id="wrong-audience"),
        pytest.param({"iss": "someone-else"}, id="wrong-issuer"),
        pytest.param({"exp": None}, id="no-expiry"),
    ],
)
def test_token_with_wrong_claims_is_refused_and_audited(
    server: AuthServer, changes: dict[str, Any]
) -> None:
    kid, key = server_signing_key(server)
    path = probe_path()

    response = use_token(server, sign(key, kid, **changes), path)

    assert_rejected_and_audited(server, response, path)


# -- genuine tokens, used beyond their grant ------------------------------------------


def test_push_beyond_granted_scope_gets_insufficient_scope(
    server: AuthServer,
) -> None:
    repository = f"acme/probe-{uuid.uuid4().hex[:12]}"
    token = token_for(server, READER, f"repository:{repository}:pull,push")
    assert granted_actions(token, repository) == {"pull"}

    response = httpx.post(
        f"{server.url}/v2/{repository}/blobs/uploads/", headers=bearer(token)
    )

    assert response.status_code == 401, response.text
    challenge = challenge_of(response)
    assert challenge["error"] == "insufficient_scope"
    assert challenge["scope"] == f"repository:{repository}:push"
    assert find_events(server.data_dir, REFUSED, target=repository)


def test_token_for_one_repository_is_refused_on_another(server: AuthServer) -> None:
    other = f"acme/probe-{uuid.uuid4().hex[:12]}"
    token = token_for(server, READER, f"repository:{APP}:pull")

    response = use_token(server, token, f"/v2/{other}/tags/list")

    # The reader may pull `other` by role, but this token does not say so.
    assert response.status_code == 401, response.text
    assert challenge_of(response)["error"] == "insufficient_scope"
    assert find_events(server.data_dir, REFUSED, target=other)


def from_address(address: str) -> httpx.Client:
    """A client whose connections come from another loopback address."""
    transport = httpx.HTTPTransport(local_address=address)
    return httpx.Client(transport=transport, timeout=30.0)


def offline_tokens(server: AuthServer) -> dict[str, Any]:
    response = httpx.post(
        server.token_url,
        data={
            "grant_type": "password",
            "username": READER.username,
            "password": READER.password,
            "service": SERVICE,
            "scope": f"repository:{APP}:pull",
            "access_type": "offline",
        },
    )
    assert response.status_code == 200, response.text
    document: dict[str, Any] = response.json()
    assert "refresh_token" in document
    return document


def test_refresh_token_used_as_access_token_is_refused(server: AuthServer) -> None:
    refresh = offline_tokens(server)["refresh_token"]
    path = probe_path()

    response = use_token(server, refresh, path)

    assert_rejected_and_audited(server, response, path)


def test_access_token_used_as_refresh_token_is_refused(server: AuthServer) -> None:
    access = offline_tokens(server)["access_token"]
    source = "127.0.0.7"
    form = {
        "grant_type": "refresh_token",
        "refresh_token": access,
        "service": SERVICE,
        "scope": f"repository:{APP}:pull",
    }

    with from_address(source) as http:
        response = http.post(server.token_url, data=form)

    assert response.status_code == 401, response.text
    assert "token" not in response.json()
    assert find_events(server.data_dir, REFUSED, remote=source), (
        "the refused refresh grant is not in the audit log"
    )


# -- password guessing -----------------------------------------------------------------


def audited_actions(server: AuthServer, source: str) -> set[str]:
    events = audit_events(server.data_dir)
    return {event["action"] for event in events if event["remote"] == source}


def test_repeated_failed_logins_lock_the_source_out(server: AuthServer) -> None:
    source = "127.0.0.3"
    with from_address(source) as http:
        answers = [
            http.get(f"{server.url}/v2/", auth=(READER.username, f"guess-{n}"))
            for n in range(LOCKOUT_ATTEMPTS)
        ]
        after = http.get(f"{server.url}/v2/", auth=READER.basic)

    assert [a.status_code for a in answers[:-1]] == [401] * (LOCKOUT_ATTEMPTS - 1)
    # The attempt that reaches the limit may already be answered 429.
    assert answers[-1].status_code in (401, 429)
    assert after.status_code == 429, after.text
    assert error_code(after) == "TOOMANYREQUESTS"
    assert {"login.failed", "login.locked"} <= audited_actions(server, source)


def test_lockout_spares_other_sources(server: AuthServer) -> None:
    locked = "127.0.0.5"
    with from_address(locked) as http:
        for n in range(LOCKOUT_ATTEMPTS + 1):
            http.get(f"{server.url}/v2/", auth=(READER.username, f"guess-{n}"))
        assert http.get(f"{server.url}/v2/", auth=READER.basic).status_code == 429

    with from_address("127.0.0.6") as http:
        response = http.get(f"{server.url}/v2/", auth=READER.basic)

    assert response.status_code == 200, response.text


def test_repeated_failed_token_requests_lock_the_source_out(
    server: AuthServer,
) -> None:
    source = "127.0.0.4"

    def password_grant(http: httpx.Client, password: str) -> httpx.Response:
        form = {
            "grant_type": "password",
            "username": READER.username,
            "password": password,
            "service": SERVICE,
        }
        return http.post(server.token_url, data=form)

    with from_address(source) as http:
        answers = [password_grant(http, f"guess-{n}") for n in range(LOCKOUT_ATTEMPTS)]
        after = password_grant(http, READER.password)

    assert [a.status_code for a in answers[:-1]] == [401] * (LOCKOUT_ATTEMPTS - 1)
    assert answers[-1].status_code in (401, 429)
    assert after.status_code == 429, after.text
    assert error_code(after) == "TOOMANYREQUESTS"
    assert "token" not in after.json()
    assert {"login.failed", "login.locked"} <= audited_actions(server, source)


# -- signing key rotation (last: it changes the server's keys) ------------------------


def wait_for(check: Callable[[], bool], timeout: float = KEY_RESCAN_WAIT) -> bool:
    deadline = time.monotonic() + timeout
    while True:
        if check():
            return True
        if time.monotonic() > deadline:
            return False
        time.sleep(0.5)


def test_tokens_issued_before_rotation_still_verify(server: AuthServer) -> None:
    old_kid, old_key = server_signing_key(server)
    # Neither token has been shown to the server yet, so nothing is cached.
    issued = token_for(server, READER, f"repository:{APP}:pull")
    minted = sign(old_key, old_kid)

    new_kid = dockyard(server.data_dir, "keys", "rotate").strip()

    assert new_kid and new_kid != old_kid
    assert key_file(server, new_kid).exists()
    for token in (issued, minted):
        response = use_token(server, token, f"/v2/{APP}/manifests/v1")
        assert response.status_code == 200, response.text


def test_server_signs_with_the_newest_key_after_rotation(server: AuthServer) -> None:
    new_kid = dockyard(server.data_dir, "keys", "rotate").strip()

    def signs_with_new_key() -> bool:
        issued = token_for(server, READER, f"repository:{APP}:pull")
        return bool(jwt.get_unverified_header(issued)["kid"] == new_kid)

    assert wait_for(signs_with_new_key), (
        f"tokens are still not signed with {new_kid} after {KEY_RESCAN_WAIT}s"
    )


def test_tokens_of_a_retired_key_are_refused(server: AuthServer) -> None:
    old_kid, old_key = server_signing_key(server)
    dockyard(server.data_dir, "keys", "rotate")
    # A key id is base64url and may start with "-": after "--" it is no option.
    dockyard(server.data_dir, "keys", "retire", "--", old_kid)
    assert not key_file(server, old_kid).exists()

    def refused() -> bool:
        # A fresh token each time: the server caches the ones it verified.
        response = use_token(server, sign(old_key, old_kid), probe_path())
        return response.status_code == 401

    assert wait_for(refused), (
        f"a token signed by retired key {old_kid} is still accepted"
        f" {KEY_RESCAN_WAIT}s after `keys retire`"
    )
