"""LDAP users and OIDC-federated pipelines, end to end through a running server.

The directory is a real slapd and the identity provider a test issuer whose JWKS
is served on loopback; the registry is configured with both and driven over HTTP
the way clients drive it: credentials to the token endpoint, then the token.
"""

from __future__ import annotations

import base64
import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from tests.support.oidc_issuer import OidcTestIssuer
from tests.support.server import RegistryServer
from tests.support.slapd import ALICE, CAROL, GROUPS, Slapd

SERVICE = "dockyard"


@pytest.fixture(scope="module")
def slapd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Slapd]:
    with Slapd(tmp_path_factory.mktemp("slapd")) as server:
        yield server


@pytest.fixture(scope="module")
def issuer() -> Iterator[OidcTestIssuer]:
    with OidcTestIssuer(audience=SERVICE) as test_issuer:
        yield test_issuer


@pytest.fixture(scope="module")
def server(
    tmp_path_factory: pytest.TempPathFactory, slapd: Slapd, issuer: OidcTestIssuer
) -> Iterator[RegistryServer]:
    root = tmp_path_factory.mktemp("federated")
    config = root / "dockyard.yaml"
    config.write_text(
        yaml.safe_dump(
            {
                "auth": {
                    "enabled": True,
                    "service": SERVICE,
                    "ldap": {"url": slapd.url, "group_base": GROUPS},
                    "oidc": [
                        {
                            "issuer": issuer.issuer,
                            "jwks_url": issuer.jwks_url,
                            "audience": SERVICE,
                            "rules": [
                                {
                                    "claims": {"repository": "acme/api"},
                                    "grants": [
                                        {
                                            "repository": "acme/api",
                                            "actions": ["pull", "push"],
                                        }
                                    ],
                                }
                            ],
                        }
                    ],
                }
            }
        )
    )
    data = root / "data"
    with RegistryServer(data, extra_args=("--config", str(config))) as running:
        _cli(data, "namespace", "create", "acme")
        _cli(data, "namespace", "grant", "acme", "group:developers", "writer")
        yield running


def _cli(data: Path, *args: str) -> None:
    subprocess.run(
        [sys.executable, "-m", "dockyard", *args, "--data-dir", str(data)],
        check=True,
        capture_output=True,
    )


def _token(server: RegistryServer, username: str, password: str, scope: str) -> str:
    response = httpx.get(
        f"{server.url}/auth/token",
        params={"service": SERVICE, "scope": scope},
        auth=(username, password),
    )
    assert response.status_code == 200, response.text
    token: str = response.json()["token"]
    return token


def _access(token: str) -> list[dict[str, Any]]:
    payload = token.split(".")[1]
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    access: list[dict[str, Any]] = claims["access"]
    return access


def _push_blob(server: RegistryServer, token: str, repository: str) -> int:
    digest = (
        "sha256:" + "2c26b46b68ffc68ff99b453c1d30413413422d706483bfa0f98a5e886266e7ae"
    )
    response = httpx.post(
        f"{server.url}/v2/{repository}/blobs/uploads/",
        params={"digest": digest},
        content=b"foo",
        headers={"Authorization": f"Bearer {token}"},
    )
    return response.status_code


def test_ldap_group_member_gets_the_group_role(server: RegistryServer) -> None:
    token = _token(server, ALICE.uid, ALICE.password, "repository:acme/web:pull,push")
    assert _access(token) == [
        {"type": "repository", "name": "acme/web", "actions": ["pull", "push"]}
    ]
    assert _push_blob(server, token, "acme/web") == 201


def test_ldap_user_outside_the_group_gets_nothing(server: RegistryServer) -> None:
    token = _token(server, CAROL.uid, CAROL.password, "repository:acme/web:pull,push")
    assert _access(token) == []
    assert _push_blob(server, token, "acme/web") == 401


def test_ldap_user_owns_a_personal_namespace(server: RegistryServer) -> None:
    token = _token(server, CAROL.uid, CAROL.password, "repository:carol/tool:push")
    assert _push_blob(server, token, "carol/tool") == 201


def test_ldap_wrong_password_is_refused(server: RegistryServer) -> None:
    response = httpx.get(
        f"{server.url}/auth/token",
        params={"service": SERVICE, "scope": "repository:acme/web:pull"},
        auth=(ALICE.uid, "not-her-password"),
    )
    assert response.status_code == 401
    assert response.json()["errors"][0]["code"] == "UNAUTHORIZED"


def test_pipeline_exchanges_its_oidc_token_for_push(
    server: RegistryServer, issuer: OidcTestIssuer
) -> None:
    id_token = issuer.issue({"repository": "acme/api"})
    token = _token(server, "oidc", id_token, "repository:acme/api:pull,push")
    assert _access(token) == [
        {"type": "repository", "name": "acme/api", "actions": ["pull", "push"]}
    ]
    assert _push_blob(server, token, "acme/api") == 201


def test_pipeline_token_grants_nothing_beyond_its_rule(
    server: RegistryServer, issuer: OidcTestIssuer
) -> None:
    id_token = issuer.issue({"repository": "acme/api"})
    token = _token(server, "oidc", id_token, "repository:acme/web:pull,push")
    assert _access(token) == []


def test_oidc_token_of_another_pipeline_is_refused(
    server: RegistryServer, issuer: OidcTestIssuer
) -> None:
    id_token = issuer.issue({"repository": "evil/fork"})
    response = httpx.get(
        f"{server.url}/auth/token",
        params={"service": SERVICE, "scope": "repository:acme/api:push"},
        auth=("oidc", id_token),
    )
    assert response.status_code == 401


def test_secrets_stay_out_of_the_server_log(
    server: RegistryServer, issuer: OidcTestIssuer
) -> None:
    id_token = issuer.issue({"repository": "acme/api"})
    _token(server, "oidc", id_token, "repository:acme/api:pull")
    _token(server, ALICE.uid, ALICE.password, "repository:acme/web:pull")
    logs = server.logs()
    assert ALICE.password not in logs
    assert id_token.split(".")[2] not in logs
