"""Passwords, robot secrets and tokens never reach the server log or the audit log.

One module-scoped run drives every path a secret travels (HTTP Basic on /v2,
the token endpoint's GET and POST forms, refresh grants, bearer tokens, robot
logins), with right and wrong secrets alike, against a server logging at debug
level. Then both logs are searched for every secret, and for the forms a secret
takes on the wire (the Basic header's base64, a token's signature alone).
"""

from __future__ import annotations

import base64
from collections.abc import Iterator
from dataclasses import dataclass, field

import httpx
import pytest

from tests.auth.conftest import (
    ADMIN,
    SERVICE,
    Account,
    AuthServer,
    add_user,
    audit_output,
    auth_server,
    bearer,
    create_robot,
    dockyard_batch,
)
from tests.support.registry_client import RegistryClient

USER = Account("sam", "sam-Pw-7Hq2-visible-nowhere")
WRONG_PASSWORD = "sam-wrong-guess-Kx93"
WRONG_ROBOT_SECRET = "robot-wrong-secret-Jd72"
REPOSITORY = "acme/app"


@dataclass
class Secrets:
    """Every secret the run used, by a name for the test report."""

    values: dict[str, str] = field(default_factory=dict)

    def add(self, name: str, value: str) -> None:
        assert value, name
        self.values[name] = value

    def add_token(self, name: str, token: str) -> None:
        self.add(name, token)
        # A log line cut short would still give the signature away.
        self.add(f"{name} signature", token.rsplit(".", 1)[-1])

    def add_basic(self, name: str, username: str, password: str) -> None:
        self.add(name, password)
        encoded = base64.b64encode(f"{username}:{password}".encode()).decode()
        self.add(f"{name} as basic header", encoded)


SECRET_NAMES = [
    "user password",
    "user password as basic header",
    "wrong password",
    "wrong password as basic header",
    "robot secret",
    "robot secret as basic header",
    "wrong robot secret",
    "wrong robot secret as basic header",
    "admin password",
    "token from GET",
    "token from GET signature",
    "token from POST",
    "token from POST signature",
    "refresh token",
    "refresh token signature",
    "token from refresh",
    "token from refresh signature",
    "robot token",
    "robot token signature",
]


def post_token(server: AuthServer, form: dict[str, str]) -> httpx.Response:
    return httpx.post(server.token_url, data={"service": SERVICE, **form})


def drive_traffic(server: AuthServer, robot: Account) -> Secrets:
    """Log in every way there is, right and wrong; return what must stay secret."""
    secrets = Secrets()
    secrets.add("admin password", ADMIN.password)
    secrets.add_basic("user password", USER.username, USER.password)
    secrets.add_basic("wrong password", USER.username, WRONG_PASSWORD)
    secrets.add_basic("robot secret", robot.username, robot.password)
    secrets.add_basic("wrong robot secret", robot.username, WRONG_ROBOT_SECRET)
    scope = f"repository:{REPOSITORY}:pull,push"
    url = server.url

    with server.client(USER) as http:
        assert http.get("/v2/").status_code == 200
        assert http.get(f"/v2/{REPOSITORY}/tags/list").status_code == 200
    wrong = httpx.get(f"{url}/v2/", auth=(USER.username, WRONG_PASSWORD))
    assert wrong.status_code == 401

    got = httpx.get(server.token_url, params={"service": SERVICE, "scope": scope},
                    auth=USER.basic)  # fmt: skip
    assert got.status_code == 200, got.text
    secrets.add_token("token from GET", got.json()["token"])
    tags = httpx.get(
        f"{url}/v2/{REPOSITORY}/tags/list", headers=bearer(got.json()["token"])
    )
    assert tags.status_code == 200

    posted = post_token(server, {
        "grant_type": "password", "username": USER.username,
        "password": USER.password, "scope": scope, "access_type": "offline",
    })  # fmt: skip
    assert posted.status_code == 200, posted.text
    secrets.add_token("token from POST", posted.json()["token"])
    secrets.add_token("refresh token", posted.json()["refresh_token"])
    refused = post_token(server, {
        "grant_type": "password", "username": USER.username,
        "password": WRONG_PASSWORD, "scope": scope,
    })  # fmt: skip
    assert refused.status_code == 401

    refreshed = post_token(server, {
        "grant_type": "refresh_token",
        "refresh_token": posted.json()["refresh_token"], "scope": scope,
    })  # fmt: skip
    assert refreshed.status_code == 200, refreshed.text
    secrets.add_token("token from refresh", refreshed.json()["token"])
    # Misuse: a refresh token as a bearer token, a token as a refresh token.
    misused = httpx.get(f"{url}/v2/", headers=bearer(posted.json()["refresh_token"]))
    assert misused.status_code == 401
    assert post_token(server, {
        "grant_type": "refresh_token", "refresh_token": got.json()["token"],
    }).status_code == 401  # fmt: skip

    with server.client(robot) as http:
        RegistryClient(http).push_image(REPOSITORY, "from-robot")
    robot_token = httpx.get(server.token_url,
                            params={"service": SERVICE, "scope": scope},
                            auth=robot.basic)  # fmt: skip
    assert robot_token.status_code == 200
    secrets.add_token("robot token", robot_token.json()["token"])
    wrong_robot = httpx.get(f"{url}/v2/", auth=(robot.username, WRONG_ROBOT_SECRET))
    assert wrong_robot.status_code == 401
    beyond = httpx.post(f"{url}/v2/other/app/blobs/uploads/",
                        headers=bearer(robot_token.json()["token"]))  # fmt: skip
    assert beyond.status_code == 401
    return secrets


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AuthServer]:
    registry = auth_server(
        tmp_path_factory.mktemp("secrets"),
        # Wrong secrets must not lock the test's own source out.
        env={"DOCKYARD_AUTH_LOCKOUT_ATTEMPTS": "100"},
        extra_args=("--log-level", "debug"),
    )
    with registry:
        dockyard_batch(
            registry.data_dir,
            [
                add_user(USER),
                ["namespace", "create", "acme"],
                ["namespace", "grant", "acme", USER.username, "writer"],
            ],
        )
        with registry.client(ADMIN) as http:
            RegistryClient(http).push_image(REPOSITORY, "v1")
        yield registry


@pytest.fixture(scope="module")
def secrets(server: AuthServer) -> Secrets:
    robot = create_robot(server.data_dir, "builder", "acme/*=pull,push")
    used = drive_traffic(server, robot)
    assert sorted(used.values) == sorted(SECRET_NAMES)
    return used


@pytest.fixture(scope="module")
def server_log(server: AuthServer, secrets: Secrets) -> str:
    log = server.logs()
    # The traffic did reach the log: otherwise there would be nothing to check.
    assert "/auth/token" in log and "/v2/" in log
    return log


@pytest.fixture(scope="module")
def audit_log(server: AuthServer, secrets: Secrets) -> str:
    output = audit_output(server.data_dir)
    for action in ("login.failed", "token.issued", "manifest.push"):
        assert action in output, f"no {action} event: the audit check would be empty"
    return output


def lines_with(text: str, secret: str) -> list[str]:
    return [line for line in text.splitlines() if secret in line]


@pytest.mark.parametrize("name", SECRET_NAMES)
def test_secret_never_appears_in_server_log(
    name: str, secrets: Secrets, server_log: str
) -> None:
    assert lines_with(server_log, secrets.values[name]) == []


@pytest.mark.parametrize("name", SECRET_NAMES)
def test_secret_never_appears_in_audit_log(
    name: str, secrets: Secrets, audit_log: str
) -> None:
    assert lines_with(audit_log, secrets.values[name]) == []
