"""LdapAuthenticator against a real slapd (see tests/support/slapd.py)."""

from __future__ import annotations

import logging
import socket
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from dockyard.auth.identity import Identity
from dockyard.auth.ldap import LdapAuthenticator, LdapUnavailable
from dockyard.settings import LdapSettings
from tests.support.server import free_port
from tests.support.slapd import (
    ALICE,
    BOB,
    CAROL,
    GROUPS,
    ODD,
    READER_DN,
    READER_PASSWORD,
    TEAMS,
    Slapd,
    User,
)

pytestmark = pytest.mark.anyio

TIMEOUT = 1.0


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(scope="module")
def slapd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Slapd]:
    with Slapd(tmp_path_factory.mktemp("slapd")) as server:
        yield server


def authenticator(url: str, **overrides: Any) -> LdapAuthenticator:
    values: dict[str, Any] = {"url": url, "group_base": GROUPS, "timeout": TIMEOUT}
    return LdapAuthenticator(LdapSettings(**{**values, **overrides}))


async def login(slapd: Slapd, user: User, **overrides: Any) -> Identity | None:
    return await authenticator(slapd.url, **overrides).authenticate(
        user.uid, user.password
    )


async def test_correct_password_returns_identity_with_groups(slapd: Slapd) -> None:
    identity = await login(slapd, ALICE)

    assert identity == Identity(
        subject="alice",
        kind="user",
        groups=("admins", "developers"),
        source="ldap",
    )


async def test_hashed_password_is_accepted(slapd: Slapd) -> None:
    identity = await login(slapd, BOB)

    assert identity is not None
    assert identity.groups == ("developers",)


async def test_user_in_no_group_gets_no_groups(slapd: Slapd) -> None:
    identity = await login(slapd, CAROL)

    assert identity is not None
    assert identity.groups == ()


async def test_without_group_base_groups_are_not_searched(slapd: Slapd) -> None:
    identity = await login(slapd, ALICE, group_base=None)

    assert identity is not None
    assert identity.groups == ()


async def test_wrong_password_returns_none(slapd: Slapd) -> None:
    ldap = authenticator(slapd.url)

    assert await ldap.authenticate("alice", "bob-secret") is None


async def test_unknown_user_returns_none(slapd: Slapd) -> None:
    ldap = authenticator(slapd.url)

    assert await ldap.authenticate("mallory", "alice-secret") is None


async def test_empty_password_returns_none_without_asking(slapd: Slapd) -> None:
    # Would be an anonymous bind, which slapd accepts; an unreachable URL
    # shows that the directory is not even asked.
    for url in (slapd.url, f"ldap://127.0.0.1:{free_port()}"):
        assert await authenticator(url).authenticate("alice", "") is None


@pytest.mark.parametrize(
    "username",
    [
        "*",
        "alice*",
        "alice)(uid=*",
        "*)(|(uid=*",
        "alice,ou=people",
        "uid=alice,ou=people,dc=example,dc=org",
        "alice+cn=alice",
        "alice\\",
        "al\x00ice",
        "#alice",
        " alice",
        "alice ",
    ],
)
async def test_special_characters_cannot_inject(slapd: Slapd, username: str) -> None:
    ldap = authenticator(slapd.url)

    assert await ldap.authenticate(username, ALICE.password) is None


async def test_special_characters_are_escaped_in_dn_and_filter(slapd: Slapd) -> None:
    identity = await login(slapd, ODD)

    assert identity is not None
    assert identity.subject == ODD.uid
    assert identity.groups == ("oddballs",)


async def test_service_account_searches_groups_hidden_from_user(
    slapd: Slapd,
) -> None:
    service = {"bind_dn": READER_DN, "bind_password": READER_PASSWORD}

    identity = await login(slapd, ALICE, group_base=TEAMS, **service)

    assert identity is not None
    assert identity.groups == ("blue",)
    with pytest.raises(LdapUnavailable):
        await login(slapd, ALICE, group_base=TEAMS)


async def test_service_account_does_not_vouch_for_user(slapd: Slapd) -> None:
    ldap = authenticator(slapd.url, bind_dn=READER_DN, bind_password=READER_PASSWORD)

    assert await ldap.authenticate("alice", "wrong") is None


async def test_rejected_service_account_is_unavailable(slapd: Slapd) -> None:
    with pytest.raises(LdapUnavailable, match="service account"):
        await login(slapd, ALICE, bind_dn=READER_DN, bind_password="wrong")


async def test_start_tls_with_trusted_certificate(
    slapd: Slapd, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SSL_CERT_FILE", str(slapd.ca_file))

    identity = await login(slapd, ALICE, start_tls=True)

    assert identity is not None
    assert identity.groups == ("admins", "developers")


async def test_start_tls_with_untrusted_certificate_is_unavailable(
    slapd: Slapd, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SSL_CERT_FILE", str(tmp_path / "no-such-ca.pem"))

    with pytest.raises(LdapUnavailable, match="certificate"):
        await login(slapd, ALICE, start_tls=True)


async def test_start_tls_with_certificate_for_another_host_is_unavailable(
    slapd: Slapd, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SSL_CERT_FILE", str(slapd.ca_file))
    url = f"ldap://localhost:{slapd.port}"  # the certificate names 127.0.0.1

    with pytest.raises(LdapUnavailable, match="match"):
        await authenticator(url, start_tls=True).authenticate("alice", "alice-secret")


async def test_closed_port_is_unavailable() -> None:
    ldap = authenticator(f"ldap://127.0.0.1:{free_port()}")

    started = time.monotonic()
    with pytest.raises(LdapUnavailable):
        await ldap.authenticate("alice", "alice-secret")
    assert time.monotonic() - started < TIMEOUT


async def test_silent_server_is_unavailable_within_timeout() -> None:
    # The kernel completes the connection; nobody ever answers on it.
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(1)
        port = listener.getsockname()[1]
        ldap = authenticator(f"ldap://127.0.0.1:{port}")

        started = time.monotonic()
        with pytest.raises(LdapUnavailable):
            await ldap.authenticate("alice", "alice-secret")
        assert time.monotonic() - started < 2 * TIMEOUT + 0.5


async def test_password_is_never_logged(
    slapd: Slapd, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    password = "s3cret-never-logged"

    assert await authenticator(slapd.url).authenticate("alice", password) is None
    with pytest.raises(LdapUnavailable):
        await authenticator(f"ldap://127.0.0.1:{free_port()}").authenticate(
            "alice", password
        )

    for record in caplog.records:
        assert password not in str(vars(record))


def test_unknown_template_field_fails_at_start() -> None:
    with pytest.raises(ValueError, match="template"):
        authenticator("ldap://127.0.0.1", user_dn_template="uid={user},dc=org")


def test_service_account_without_password_fails_at_start() -> None:
    with pytest.raises(ValueError, match="bind_password"):
        authenticator("ldap://127.0.0.1", bind_dn=READER_DN)
