"""The management API under /api/v1, driven over HTTP on a registry with auth on.

One registry serves the module. Each test makes the users, namespaces and robots
it needs under fresh names, as the administrator, a namespace owner, a reader, an
outsider and an anonymous caller.
"""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from dockyard.api.management import ROUTES
from tests.support.server import RegistryServer

ADMIN_PASSWORD = "admin-pass-1"
PASSWORD = "user-pass-1"
API = "/api/v1"


@dataclass
class Team:
    """A private namespace with an owner, a reader and someone from outside."""

    namespace: str
    owner: httpx.Client
    owner_name: str
    reader: httpx.Client
    reader_name: str
    outsider: httpx.Client
    outsider_name: str


def unique(prefix: str) -> str:
    return f"{prefix}{secrets.token_hex(4)}"


def code(response: httpx.Response) -> str:
    return str(response.json()["errors"][0]["code"])


def login(server: RegistryServer, username: str, password: str) -> httpx.Client:
    return httpx.Client(base_url=server.url + API, auth=(username, password))


def make_user(admin: httpx.Client, username: str | None = None) -> str:
    username = username or unique("user")
    response = admin.post("/users", json={"username": username, "password": PASSWORD})
    assert response.status_code == 201, response.text
    return username


def make_namespace(admin: httpx.Client, public: bool = False) -> str:
    name = unique("ns")
    response = admin.post("/namespaces", json={"name": name, "public": public})
    assert response.status_code == 201, response.text
    return name


def bind(client: httpx.Client, namespace: str, username: str, role: str) -> None:
    member = {"kind": "user", "subject": username, "role": role}
    response = client.put(f"/namespaces/{namespace}/members", json=member)
    assert response.status_code == 200, response.text


def request_token(
    server: RegistryServer, username: str, password: str, scope: str
) -> httpx.Response:
    return httpx.get(
        f"{server.url}/auth/token",
        params={"service": "dockyard", "scope": scope},
        auth=(username, password),
    )


def granted(response: httpx.Response) -> list[dict[str, Any]]:
    """The `access` claim of a token, read without checking the signature."""
    payload = response.json()["token"].split(".")[1]
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    access: list[dict[str, Any]] = claims["access"]
    return access


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RegistryServer]:
    env = {
        "DOCKYARD_AUTH_ENABLED": "true",
        "DOCKYARD_AUTH_ADMIN_PASSWORD": ADMIN_PASSWORD,
        # Several tests fail logins on purpose; none is about the lock-out.
        "DOCKYARD_AUTH_LOCKOUT_ATTEMPTS": "1000",
    }
    data = tmp_path_factory.mktemp("management") / "data"
    with RegistryServer(data, env=env) as running:
        yield running


@pytest.fixture(scope="module")
def admin(server: RegistryServer) -> Iterator[httpx.Client]:
    with login(server, "admin", ADMIN_PASSWORD) as client:
        yield client


@pytest.fixture(scope="module")
def anonymous(server: RegistryServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.url + API) as client:
        yield client


@pytest.fixture(scope="module")
def team(server: RegistryServer, admin: httpx.Client) -> Iterator[Team]:
    namespace = make_namespace(admin)
    owner, reader, outsider = make_user(admin), make_user(admin), make_user(admin)
    bind(admin, namespace, owner, "owner")
    bind(admin, namespace, reader, "reader")
    with (
        login(server, owner, PASSWORD) as owner_client,
        login(server, reader, PASSWORD) as reader_client,
        login(server, outsider, PASSWORD) as outsider_client,
    ):
        yield Team(
            namespace,
            owner_client,
            owner,
            reader_client,
            reader,
            outsider_client,
            outsider,
        )


# -- the API as a whole ----------------------------------------------------------


def test_openapi_document_lists_every_route_without_credentials(
    anonymous: httpx.Client,
) -> None:
    response = anonymous.get("/openapi.json")

    assert response.status_code == 200
    document = json.loads(response.content)
    assert document["openapi"] == "3.1.0"
    assert document["servers"] == [{"url": API}]
    routes = {route.path.removeprefix(API) for route in ROUTES}
    assert set(document["paths"]) == routes
    assert {
        "/users",
        "/namespaces/{name}/members",
        "/robots/{name}",
        "/audit",
    } <= routes
    schemes = document["components"]["securitySchemes"]
    assert schemes["basic"]["scheme"] == "basic"
    assert schemes["bearer"]["scheme"] == "bearer"


def test_openapi_document_has_a_schema_for_every_reference(
    anonymous: httpx.Client,
) -> None:
    document = anonymous.get("/openapi.json").json()
    text = json.dumps(document)

    components = document["components"]
    for kind in ("schemas", "responses"):
        prefix = f'"#/components/{kind}/'
        for part in text.split(prefix)[1:]:
            assert part.split('"')[0] in components[kind]


def test_management_api_answers_404_when_auth_is_off(client: httpx.Client) -> None:
    response = client.get(f"{API}/users")

    assert response.status_code == 404
    assert code(response) == "UNSUPPORTED"
    assert response.json()["errors"][0]["message"] == (
        "management API needs auth.enabled"
    )
    assert client.get(f"{API}/openapi.json").status_code == 200


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/users"),
        ("POST", "/users"),
        ("GET", "/namespaces"),
        ("PATCH", "/namespaces/anything"),
        ("PUT", "/namespaces/anything/members"),
        ("GET", "/robots"),
        ("DELETE", "/robots/anything"),
        ("GET", "/audit"),
    ],
)
def test_anonymous_caller_gets_401_with_challenge(
    anonymous: httpx.Client, method: str, path: str
) -> None:
    response = anonymous.request(method, path, json={})

    assert response.status_code == 401
    assert code(response) == "UNAUTHORIZED"
    assert response.headers["www-authenticate"].startswith("Bearer ")


def test_wrong_password_gets_401(server: RegistryServer) -> None:
    with login(server, "admin", "not-the-password") as client:
        response = client.get("/users")

    assert response.status_code == 401
    assert code(response) == "UNAUTHORIZED"


def test_registry_bearer_token_authenticates(server: RegistryServer) -> None:
    issued = request_token(server, "admin", ADMIN_PASSWORD, "repository:x/y:pull")
    headers = {"Authorization": f"Bearer {issued.json()['token']}"}

    response = httpx.get(f"{server.url}{API}/users", headers=headers)

    assert response.status_code == 200
    assert "admin" in [user["username"] for user in response.json()["users"]]


def test_unsupported_method_returns_405_envelope(admin: httpx.Client) -> None:
    response = admin.post("/audit")

    assert response.status_code == 405
    assert code(response) == "UNSUPPORTED"


def test_body_that_is_not_a_json_object_returns_400(admin: httpx.Client) -> None:
    for content in (b"not json", b"[1, 2]"):
        response = admin.post("/namespaces", content=content)

        assert response.status_code == 400
        assert code(response) == "UNSUPPORTED"


# -- users -----------------------------------------------------------------------


def test_admin_creates_reads_and_lists_user_without_password_hash(
    admin: httpx.Client,
) -> None:
    username = unique("carol")

    created = admin.post(
        "/users", json={"username": username, "password": PASSWORD, "admin": False}
    )
    shown = admin.get(f"/users/{username}")
    listed = admin.get("/users")

    assert created.status_code == 201
    assert created.headers["location"] == f"{API}/users/{username}"
    assert created.json()["username"] == username
    assert created.json()["admin"] is False
    assert created.json()["created_at"].endswith("Z")
    assert shown.json() == created.json()
    assert created.json() in listed.json()["users"]
    for response in (created, shown, listed):
        assert "hash" not in response.text
        assert "$2b$" not in response.text


def test_created_user_can_log_in_to_the_registry(
    server: RegistryServer, admin: httpx.Client
) -> None:
    username = make_user(admin)

    response = request_token(
        server, username, PASSWORD, f"repository:{username}/a:push"
    )

    assert response.status_code == 200
    assert granted(response)[0]["actions"] == ["push"]


@pytest.mark.parametrize("username", ["Upper", "a/b", "-lead", "robot$x", "a" * 65])
def test_create_user_rejects_invalid_username_with_name_invalid(
    admin: httpx.Client, username: str
) -> None:
    response = admin.post("/users", json={"username": username, "password": PASSWORD})

    assert response.status_code == 400
    assert code(response) == "NAME_INVALID"


@pytest.mark.parametrize(
    "body",
    [
        {"username": "shortpw", "password": "1234567"},
        {"username": "nopw"},
        {"username": "typo", "password": PASSWORD, "admn": True},
        {"username": "badflag", "password": PASSWORD, "admin": "yes"},
        {"username": "oidc", "password": PASSWORD},
    ],
)
def test_create_user_rejects_bad_fields_with_400(
    admin: httpx.Client, body: dict[str, Any]
) -> None:
    response = admin.post("/users", json=body)

    assert response.status_code == 400
    assert code(response) == "UNSUPPORTED"
    assert response.json()["errors"][0]["message"]


def test_create_existing_user_returns_409_conflict(admin: httpx.Client) -> None:
    username = make_user(admin)

    response = admin.post("/users", json={"username": username, "password": PASSWORD})

    assert response.status_code == 409
    assert code(response) == "CONFLICT"


def test_normal_user_may_not_manage_users(team: Team) -> None:
    listed = team.owner.get("/users")
    created = team.owner.post("/users", json={"username": "x", "password": PASSWORD})
    shown = team.owner.get(f"/users/{team.reader_name}")
    deleted = team.owner.delete(f"/users/{team.reader_name}")

    for response in (listed, created, shown, deleted):
        assert response.status_code == 403
        assert code(response) == "DENIED"


def test_unknown_user_returns_404_name_unknown(admin: httpx.Client) -> None:
    for response in (
        admin.get("/users/nobody-here"),
        admin.delete("/users/nobody-here"),
        admin.put("/users/nobody-here/password", json={"password": PASSWORD}),
    ):
        assert response.status_code == 404
        assert code(response) == "NAME_UNKNOWN"


def test_user_changes_own_password_but_not_another_users(
    server: RegistryServer, admin: httpx.Client, team: Team
) -> None:
    username = make_user(admin)
    new_password = "changed-pass-2"
    with login(server, username, PASSWORD) as user:
        other = user.put(
            f"/users/{team.reader_name}/password", json={"password": new_password}
        )
        own = user.put(f"/users/{username}/password", json={"password": new_password})
        # The old password stops working at once, cached login or not.
        after = user.get("/namespaces")

    assert other.status_code == 403
    assert own.status_code == 204
    assert after.status_code == 401
    with login(server, username, new_password) as user:
        assert user.get("/namespaces").status_code == 200


def test_admin_resets_a_users_password(
    server: RegistryServer, admin: httpx.Client
) -> None:
    username = make_user(admin)

    response = admin.put(f"/users/{username}/password", json={"password": "reset-pw-3"})

    assert response.status_code == 204
    with login(server, username, "reset-pw-3") as user:
        assert user.get("/robots").status_code == 200


def test_deleted_user_is_refused_at_once(
    server: RegistryServer, admin: httpx.Client
) -> None:
    username = make_user(admin)
    with login(server, username, PASSWORD) as user:
        assert user.get("/namespaces").status_code == 200

        deleted = admin.delete(f"/users/{username}")
        after = user.get("/namespaces")

    assert deleted.status_code == 204
    assert after.status_code == 401
    assert admin.get(f"/users/{username}").status_code == 404


def test_admin_may_not_delete_their_own_account(admin: httpx.Client) -> None:
    response = admin.delete("/users/admin")

    assert response.status_code == 403


# -- namespaces ------------------------------------------------------------------


def test_admin_creates_namespace_once(admin: httpx.Client) -> None:
    name = unique("acme")

    created = admin.post("/namespaces", json={"name": name})
    again = admin.post("/namespaces", json={"name": name})
    invalid = admin.post("/namespaces", json={"name": "Acme/Team"})

    assert created.status_code == 201
    assert created.json()["public"] is False
    assert created.headers["location"] == f"{API}/namespaces/{name}"
    assert again.status_code == 409
    assert code(again) == "CONFLICT"
    assert invalid.status_code == 400
    assert code(invalid) == "NAME_INVALID"


def test_normal_user_may_not_create_or_delete_namespaces(team: Team) -> None:
    created = team.owner.post("/namespaces", json={"name": unique("mine")})
    deleted = team.owner.delete(f"/namespaces/{team.namespace}")

    assert created.status_code == 403
    assert deleted.status_code == 403


def test_users_list_public_namespaces_and_those_they_belong_to(
    admin: httpx.Client, team: Team
) -> None:
    public = make_namespace(admin, public=True)
    private = make_namespace(admin)

    def names(client: httpx.Client) -> set[str]:
        return {n["name"] for n in client.get("/namespaces").json()["namespaces"]}

    assert {public, private, team.namespace} <= names(admin)
    assert public in names(team.reader)
    assert team.namespace in names(team.reader)
    assert private not in names(team.reader)
    assert team.namespace not in names(team.outsider)


def test_private_namespace_answers_404_to_outsiders(team: Team) -> None:
    assert team.reader.get(f"/namespaces/{team.namespace}").status_code == 200

    response = team.outsider.get(f"/namespaces/{team.namespace}")

    assert response.status_code == 404
    assert code(response) == "NAME_UNKNOWN"


def test_owner_makes_namespace_public_and_reader_may_not(
    admin: httpx.Client, server: RegistryServer
) -> None:
    namespace = make_namespace(admin)
    owner, reader = make_user(admin), make_user(admin)
    bind(admin, namespace, owner, "owner")
    bind(admin, namespace, reader, "reader")

    with login(server, reader, PASSWORD) as client:
        refused = client.patch(f"/namespaces/{namespace}", json={"public": True})
    with login(server, owner, PASSWORD) as client:
        changed = client.patch(f"/namespaces/{namespace}", json={"public": True})
        bad = client.patch(f"/namespaces/{namespace}", json={"public": "yes"})

    assert refused.status_code == 403
    assert changed.status_code == 200
    assert changed.json()["public"] is True
    assert bad.status_code == 400
    anonymous_pull = httpx.get(
        f"{server.url}/auth/token",
        params={"service": "dockyard", "scope": f"repository:{namespace}/a:pull"},
    )
    assert granted(anonymous_pull)[0]["actions"] == ["pull"]


def test_admin_deletes_namespace(admin: httpx.Client) -> None:
    namespace = make_namespace(admin)

    deleted = admin.delete(f"/namespaces/{namespace}")
    again = admin.delete(f"/namespaces/{namespace}")

    assert deleted.status_code == 204
    assert admin.get(f"/namespaces/{namespace}").status_code == 404
    assert again.status_code == 404
    assert code(again) == "NAME_UNKNOWN"


# -- members ---------------------------------------------------------------------


def test_owner_adds_lists_and_removes_members(
    server: RegistryServer, admin: httpx.Client, team: Team
) -> None:
    newcomer = make_user(admin)
    member = {"kind": "user", "subject": newcomer, "role": "writer"}

    added = team.owner.put(f"/namespaces/{team.namespace}/members", json=member)
    listed = team.owner.get(f"/namespaces/{team.namespace}/members")
    access = request_token(
        server, newcomer, PASSWORD, f"repository:{team.namespace}/app:pull,push"
    )
    removed = team.owner.delete(
        f"/namespaces/{team.namespace}/members",
        params={"kind": "user", "subject": newcomer},
    )
    after = team.owner.get(f"/namespaces/{team.namespace}/members")

    assert added.status_code == 200
    assert added.json() == {**member, "pattern": "*"}
    assert added.json() in listed.json()["members"]
    assert granted(access)[0]["actions"] == ["pull", "push"]
    assert removed.status_code == 204
    assert added.json() not in after.json()["members"]


def test_group_member_with_pattern_is_listed(team: Team) -> None:
    member = {"kind": "group", "subject": "ops", "role": "reader", "pattern": "web-*"}

    added = team.owner.put(f"/namespaces/{team.namespace}/members", json=member)

    assert added.status_code == 200
    members = team.owner.get(f"/namespaces/{team.namespace}/members").json()
    assert member in members["members"]


def test_reader_and_outsider_may_not_manage_members(team: Team) -> None:
    member = {"kind": "user", "subject": team.outsider_name, "role": "owner"}
    path = f"/namespaces/{team.namespace}/members"

    assert team.reader.get(path).status_code == 403
    assert team.reader.put(path, json=member).status_code == 403
    assert team.outsider.put(path, json=member).status_code == 404


@pytest.mark.parametrize(
    "member",
    [
        {"kind": "user", "subject": "bob", "role": "superuser"},
        {"kind": "robot", "subject": "bob", "role": "reader"},
        {"kind": "user", "subject": "", "role": "reader"},
        {"kind": "user", "role": "reader"},
    ],
)
def test_put_member_rejects_bad_fields_with_400(
    team: Team, member: dict[str, str]
) -> None:
    response = team.owner.put(f"/namespaces/{team.namespace}/members", json=member)

    assert response.status_code == 400
    assert code(response) == "UNSUPPORTED"


def test_removing_unknown_member_returns_404(team: Team) -> None:
    response = team.owner.delete(
        f"/namespaces/{team.namespace}/members",
        params={"kind": "user", "subject": "never-bound"},
    )

    assert response.status_code == 404
    assert code(response) == "NAME_UNKNOWN"


# -- robots ----------------------------------------------------------------------


def make_robot(
    client: httpx.Client, repository: str, actions: list[str]
) -> dict[str, Any]:
    body = {
        "name": unique("ci"),
        "grants": [{"repository": repository, "actions": actions}],
        "expires_in_days": 30,
    }
    response = client.post("/robots", json=body)
    assert response.status_code == 201, response.text
    robot: dict[str, Any] = response.json()
    return robot


def test_owner_creates_robot_that_logs_in_with_exactly_its_grants(
    server: RegistryServer, team: Team
) -> None:
    robot = make_robot(team.owner, f"{team.namespace}/*", ["push", "pull"])
    scope = f"repository:{team.namespace}/app:pull,push,delete"

    response = request_token(server, robot["name"], robot["secret"], scope)

    assert robot["name"].startswith("robot$ci")
    assert robot["grants"] == [
        {"repository": f"{team.namespace}/*", "actions": ["pull", "push"]}
    ]
    assert robot["created_by"] == team.owner_name
    assert robot["last_used_at"] is None
    assert response.status_code == 200
    assert granted(response) == [
        {
            "type": "repository",
            "name": f"{team.namespace}/app",
            "actions": ["pull", "push"],
        }
    ]


def test_robot_last_use_is_reported(server: RegistryServer, team: Team) -> None:
    robot = make_robot(team.owner, f"{team.namespace}/app", ["pull"])
    scope = f"repository:{team.namespace}/app:pull"
    assert request_token(server, robot["name"], robot["secret"], scope).is_success

    listed = {r["name"]: r for r in team.owner.get("/robots").json()["robots"]}

    assert listed[robot["name"]]["last_used_at"].endswith("Z")
    assert "secret" not in listed[robot["name"]]


def test_robot_secret_is_returned_once_and_never_logged(
    server: RegistryServer, admin: httpx.Client, team: Team
) -> None:
    robot = make_robot(team.owner, f"{team.namespace}/*", ["pull"])

    assert len(robot["secret"]) >= 40
    for response in (
        team.owner.get("/robots"),
        admin.get("/robots"),
        admin.get("/audit", params={"action": "robot.created"}),
    ):
        assert robot["secret"] not in response.text
    assert robot["secret"] not in server.logs()


def test_robots_are_listed_to_their_creator_and_admins_only(
    admin: httpx.Client, team: Team
) -> None:
    robot = make_robot(team.owner, f"{team.namespace}/*", ["pull"])

    def names(client: httpx.Client) -> set[str]:
        return {r["name"] for r in client.get("/robots").json()["robots"]}

    assert robot["name"] in names(team.owner)
    assert robot["name"] in names(admin)
    assert robot["name"] not in names(team.reader)
    response = team.reader.delete(f"/robots/{robot['name']}")
    assert response.status_code == 404


def test_user_may_not_grant_actions_they_lack(team: Team) -> None:
    wanted = {"repository": f"{team.namespace}/*", "actions": ["pull", "push"]}

    response = team.reader.post("/robots", json={"name": "ci", "grants": [wanted]})

    assert response.status_code == 403
    assert code(response) == "DENIED"
    assert "push" in response.json()["errors"][0]["message"]


def test_user_may_not_grant_across_namespaces(team: Team) -> None:
    wanted = {"repository": "*", "actions": ["pull"]}

    response = team.owner.post("/robots", json={"name": "ci", "grants": [wanted]})

    assert response.status_code == 403


def test_user_may_grant_on_personal_namespace_and_admin_anywhere(
    server: RegistryServer, admin: httpx.Client, team: Team
) -> None:
    personal = make_robot(team.outsider, f"{team.outsider_name}/*", ["delete"])
    anywhere = make_robot(admin, "*", ["pull"])

    assert personal["created_by"] == team.outsider_name
    response = request_token(
        server, anywhere["name"], anywhere["secret"], "repository:any/thing:pull"
    )
    assert granted(response)[0]["actions"] == ["pull"]


@pytest.mark.parametrize(
    "body",
    [
        {"name": "Bad Name", "grants": [{"repository": "a/*", "actions": ["pull"]}]},
        {"name": "ci", "grants": []},
        {"name": "ci", "grants": [{"repository": "a/*", "actions": ["admin"]}]},
        {"name": "ci", "grants": [{"repository": "a/*", "actions": []}]},
        {"name": "ci", "grants": [{"repository": "A B", "actions": ["pull"]}]},
        {"name": "ci", "grants": [{"repository": "a/*"}]},
        {
            "name": "ci",
            "grants": [{"repository": "a/*", "actions": ["pull"]}],
            "expires_in_days": 0,
        },
    ],
)
def test_create_robot_rejects_bad_input_with_400(
    admin: httpx.Client, body: dict[str, Any]
) -> None:
    response = admin.post("/robots", json=body)

    assert response.status_code == 400
    assert code(response) in {"UNSUPPORTED", "NAME_INVALID"}


def test_create_existing_robot_returns_409(admin: httpx.Client) -> None:
    body = {
        "name": unique("twin"),
        "grants": [{"repository": "a", "actions": ["pull"]}],
    }
    assert admin.post("/robots", json=body).status_code == 201

    response = admin.post("/robots", json=body)

    assert response.status_code == 409
    assert code(response) == "CONFLICT"


def test_revoked_robot_gets_401(server: RegistryServer, team: Team) -> None:
    robot = make_robot(team.owner, f"{team.namespace}/*", ["pull"])
    scope = f"repository:{team.namespace}/app:pull"

    revoked = team.owner.delete(f"/robots/{robot['name']}")
    response = request_token(server, robot["name"], robot["secret"], scope)

    assert revoked.status_code == 204
    assert response.status_code == 401
    listed = {r["name"]: r for r in team.owner.get("/robots").json()["robots"]}
    assert listed[robot["name"]]["revoked"] is True


def test_robot_revoked_after_use_gets_401_at_once(
    server: RegistryServer, team: Team
) -> None:
    robot = make_robot(team.owner, f"{team.namespace}/*", ["pull"])
    scope = f"repository:{team.namespace}/app:pull"
    assert request_token(server, robot["name"], robot["secret"], scope).is_success

    team.owner.delete(f"/robots/{robot['name']}")

    assert (
        request_token(server, robot["name"], robot["secret"], scope).status_code == 401
    )


def test_robot_may_not_use_the_management_api(
    server: RegistryServer, team: Team
) -> None:
    robot = make_robot(team.owner, f"{team.namespace}/*", ["pull"])

    with login(server, robot["name"], robot["secret"]) as client:
        response = client.get("/robots")

    assert response.status_code == 403
    assert code(response) == "DENIED"


# -- audit -----------------------------------------------------------------------


def test_every_change_is_audited(admin: httpx.Client, server: RegistryServer) -> None:
    username, namespace = make_user(admin), make_namespace(admin)
    admin.put(f"/users/{username}/password", json={"password": "another-pass"})
    admin.patch(f"/namespaces/{namespace}", json={"public": True})
    bind(admin, namespace, username, "writer")
    admin.delete(
        f"/namespaces/{namespace}/members",
        params={"kind": "user", "subject": username},
    )
    robot = make_robot(admin, f"{namespace}/*", ["pull"])
    admin.delete(f"/robots/{robot['name']}")
    admin.delete(f"/namespaces/{namespace}")
    admin.delete(f"/users/{username}")

    events = admin.get("/audit", params={"actor": "admin", "limit": 50}).json()
    seen = {(e["action"], e["target"]) for e in events["events"]}

    assert {
        ("user.created", username),
        ("user.password_changed", username),
        ("namespace.created", namespace),
        ("namespace.updated", namespace),
        ("member.added", username),
        ("member.removed", username),
        ("robot.created", robot["name"]),
        ("robot.revoked", robot["name"]),
        ("namespace.deleted", namespace),
        ("user.deleted", username),
    } <= seen


def test_audit_filters_by_action_namespace_and_time(
    admin: httpx.Client, team: Team
) -> None:
    now = datetime.now(UTC)
    hour = timedelta(hours=1)

    def events(**params: Any) -> list[dict[str, Any]]:
        response = admin.get("/audit", params=params)
        assert response.status_code == 200, response.text
        found: list[dict[str, Any]] = response.json()["events"]
        return found

    recent = events(namespace=team.namespace, since=(now - hour).isoformat())
    assert recent
    assert {e["namespace"] for e in recent} == {team.namespace}
    assert all(e["time"].endswith("Z") for e in recent)
    assert events(namespace=team.namespace, since=(now + hour).isoformat()) == []
    assert events(namespace=team.namespace, until="2000-01-01T00:00:00Z") == []
    created = events(action="namespace.created", limit=1)
    assert len(created) == 1
    assert created[0]["action"] == "namespace.created"


def test_owner_reads_audit_of_own_namespace_only(
    team: Team, admin: httpx.Client
) -> None:
    robot = make_robot(team.owner, f"{team.namespace}/*", ["pull"])

    own = team.owner.get("/audit", params={"namespace": team.namespace})
    everything = team.owner.get("/audit")
    other = team.owner.get("/audit", params={"namespace": make_namespace(admin)})
    reader = team.reader.get("/audit", params={"namespace": team.namespace})

    assert own.status_code == 200
    seen = {(e["action"], e["target"]) for e in own.json()["events"]}
    assert ("robot.created", robot["name"]) in seen
    assert ("member.added", team.reader_name) in seen
    assert everything.status_code == 403
    assert other.status_code == 404
    assert reader.status_code == 403


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({"since": "yesterday"}, "UNSUPPORTED"),
        ({"until": "2026-01-01T00:00:00"}, "UNSUPPORTED"),
        ({"limit": "0"}, "PAGINATION_NUMBER_INVALID"),
        ({"limit": "many"}, "PAGINATION_NUMBER_INVALID"),
    ],
)
def test_audit_rejects_bad_parameters_with_400(
    admin: httpx.Client, params: dict[str, str], expected: str
) -> None:
    response = admin.get("/audit", params=params)

    assert response.status_code == 400
    assert code(response) == expected


def test_server_log_never_holds_passwords(server: RegistryServer) -> None:
    log = server.logs()

    assert PASSWORD not in log
    assert ADMIN_PASSWORD not in log


def test_maintainer_manages_immutable_tag_rules_that_bind_pushes(
    server: RegistryServer, admin: httpx.Client, team: Team
) -> None:
    maintainer = make_user(admin)
    bind(admin, team.namespace, maintainer, "maintainer")
    rules = f"/namespaces/{team.namespace}/immutable-tags"

    refused = team.reader.post(rules, json={"tag_pattern": "v*"})
    assert refused.status_code == 403
    with login(server, maintainer, PASSWORD) as client:
        added = client.post(rules, json={"tag_pattern": "v*"})
        assert added.status_code == 200, added.text
        assert client.get(rules).json() == {
            "rules": [{"tag_pattern": "v*", "repository_pattern": "*"}]
        }

        # The rule now binds the registry itself: v1 can be set once only.
        with httpx.Client(base_url=server.url, auth=(maintainer, PASSWORD)) as registry:
            first = push_manifest(registry, f"{team.namespace}/app", "v1", b"one")
            second = push_manifest(registry, f"{team.namespace}/app", "v1", b"two")
        assert first.status_code == 201
        assert second.status_code == 403
        assert second.json()["errors"][0]["code"] == "DENIED"

        removed = client.delete(rules, params={"tag_pattern": "v*"})
        assert removed.status_code == 204
        again = client.delete(rules, params={"tag_pattern": "v*"})
        assert again.status_code == 404


def push_manifest(
    registry: httpx.Client, repository: str, tag: str, layer: bytes
) -> httpx.Response:
    digests = []
    for blob in (b"{}", layer):
        digest = "sha256:" + hashlib.sha256(blob).hexdigest()
        pushed = registry.post(
            f"/v2/{repository}/blobs/uploads/", params={"digest": digest}, content=blob
        )
        assert pushed.status_code == 201, pushed.text
        digests.append((digest, len(blob)))
    manifest = {
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {
            "mediaType": "application/vnd.oci.image.config.v1+json",
            "digest": digests[0][0],
            "size": digests[0][1],
        },
        "layers": [
            {
                "mediaType": "application/vnd.oci.image.layer.v1.tar",
                "digest": digests[1][0],
                "size": digests[1][1],
            }
        ],
    }
    return registry.put(
        f"/v2/{repository}/manifests/{tag}",
        content=json.dumps(manifest).encode(),
        headers={"Content-Type": "application/vnd.oci.image.manifest.v1+json"},
    )


def test_admin_sets_a_quota_and_members_read_the_usage(
    server: RegistryServer, admin: httpx.Client, team: Team
) -> None:
    path = f"/namespaces/{team.namespace}/quota"

    refused = team.owner.put(path, json={"quota_bytes": 1000})
    assert refused.status_code == 403
    invalid = admin.put(path, json={"quota_bytes": -1})
    assert invalid.status_code == 400
    assert admin.put(path, json={"quota_bytes": 5000}).status_code == 200

    usage = team.reader.get(path)
    assert usage.status_code == 200
    assert usage.json()["quota_bytes"] == 5000
    assert isinstance(usage.json()["used_bytes"], int)
    assert team.outsider.get(path).status_code == 404
    cleared = admin.put(path, json={"quota_bytes": None})
    assert cleared.json()["quota_bytes"] is None
