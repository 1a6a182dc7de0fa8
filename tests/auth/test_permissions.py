"""Who may do what, endpoint by endpoint, over raw HTTP.

One table crosses every role with every /v2 endpoint, and each case is sent
twice: with HTTP Basic on the request (Dockyard accepts it on /v2) and with a
bearer token from the token endpoint. The rules it checks:

- an authorized caller gets the endpoint's 2xx;
- an anonymous caller gets 401 and a Bearer challenge naming realm, service and
  the scope to ask for;
- a caller who logged in with a password but lacks the right gets 403 DENIED;
  a bearer token without the action gets 401 with error="insufficient_scope";
- a repository the caller may not see answers exactly the same whether it
  exists or not (no probing for names).

The administrator pushes the content each case refers to. Cases that use it
up (deletes, upload sessions) get their own; the others share one set per
repository.
"""

from __future__ import annotations

import fnmatch
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime

import httpx
import pytest

from tests.auth.conftest import (
    ADMIN,
    SERVICE,
    Account,
    AuthServer,
    add_user,
    auth_server,
    bearer,
    challenge_of,
    claims_of,
    create_robot,
    dockyard_batch,
    error_code,
    granted_actions,
    request_token,
    token_for,
)
from tests.support.registry_client import (
    API_VERSION_HEADER,
    Blob,
    Manifest,
    RegistryClient,
    config_blob,
    image_manifest,
    random_blob,
)

PULL, PUSH, DELETE = "pull", "push", "delete"
ALL_ACTIONS = frozenset({PULL, PUSH, DELETE})

NOBODY = Account("nobody", "nobody-pass-5521")
READER = Account("rita", "rita-pass-3310")
WRITER = Account("wade", "wade-pass-8121")
MAINTAINER = Account("max", "max-pass-11902")
OWNER = Account("olga", "olga-pass-7004")
PATTERN_WRITER = Account("tess", "tess-pass-4410")
ROBOT = "robot$ci"  # its secret is made when the robot is created
ROBOT_GRANT = "acme/*=pull,push"
ANONYMOUS = "anonymous"

APP = "acme/app"
APP_MISSING = "acme/ghost"
TEAM = "acme/team-web"
TEAM_MISSING = "acme/team-ghost"
PUBLIC = "pub/base"
PUBLIC_MISSING = "pub/ghost"
VAULT = "vault/keys"  # a private namespace in which nobody but the admin has a role
VAULT_MISSING = "vault/ghost"

# What each account may pull, as globs over repository names (for the catalog).
PULLABLE: dict[str, tuple[str, ...]] = {
    NOBODY.username: ("pub/*",),
    READER.username: ("acme/*", "pub/*"),
    WRITER.username: ("acme/*", "pub/*"),
    MAINTAINER.username: ("acme/*", "pub/*"),
    OWNER.username: ("acme/*", "pub/*"),
    PATTERN_WRITER.username: ("acme/team-*", "pub/*"),
    ADMIN.username: ("*",),
}


@dataclass(frozen=True)
class Role:
    """A caller, the repository it is tried on, and the actions it holds there."""

    name: str
    who: str  # a username, or ANONYMOUS
    repository: str
    # A repository in the same position that holds nothing.
    missing: str
    actions: frozenset[str]

    @property
    def anonymous(self) -> bool:
        return self.who == ANONYMOUS


PULL_ONLY = frozenset({PULL})
PULL_PUSH = frozenset({PULL, PUSH})
ROLES = (
    Role("anonymous", ANONYMOUS, APP, APP_MISSING, frozenset()),
    Role("anonymous-public", ANONYMOUS, PUBLIC, PUBLIC_MISSING, PULL_ONLY),
    Role("none", NOBODY.username, APP, APP_MISSING, frozenset()),
    Role("none-public", NOBODY.username, PUBLIC, PUBLIC_MISSING, PULL_ONLY),
    Role("reader", READER.username, APP, APP_MISSING, PULL_ONLY),
    Role("writer", WRITER.username, APP, APP_MISSING, PULL_PUSH),
    Role("maintainer", MAINTAINER.username, APP, APP_MISSING, ALL_ACTIONS),
    Role("owner", OWNER.username, APP, APP_MISSING, ALL_ACTIONS),
    Role("admin", ADMIN.username, APP, APP_MISSING, ALL_ACTIONS),
    Role("pattern-inside", PATTERN_WRITER.username, TEAM, TEAM_MISSING, PULL_PUSH),
    Role("pattern-outside", PATTERN_WRITER.username, APP, APP_MISSING, frozenset()),
    Role("robot", ROBOT, APP, APP_MISSING, PULL_PUSH),
    Role("robot-outside", ROBOT, VAULT, VAULT_MISSING, frozenset()),
    # Anyone may pull from a public namespace, robots included.
    Role("robot-public", ROBOT, PUBLIC, PUBLIC_MISSING, PULL_ONLY),
)


@dataclass(frozen=True)
class Material:
    """What one request refers to: stored in a repository, or made up for one."""

    manifest: Manifest  # pushed (tagged) in the repository
    blob: str  # the digest of one of its layers
    unpushed: Manifest  # its blobs are stored, the manifest is not
    upload: str  # the path of an open upload session
    chunk: Blob  # bytes to send to the upload session


def store_material(admin: RegistryClient, repository: str) -> Material:
    """Push fresh content as the administrator."""
    config, layer = config_blob(), random_blob(300)
    admin.push_blob(repository, config)
    admin.push_blob(repository, layer)
    manifest = image_manifest(config, [layer])
    admin.push_manifest(repository, f"t-{uuid.uuid4().hex[:10]}", manifest)
    # Same blobs, another digest: a manifest ready to push.
    unpushed = image_manifest(config, [layer], annotations={"case": uuid.uuid4().hex})
    upload = admin.start_upload(repository).headers["location"]
    return Material(manifest, layer.digest, unpushed, upload, random_blob(200))


def imagined_material(repository: str) -> Material:
    """Content that was never pushed, and an upload session that never existed."""
    layer = random_blob(300)
    return Material(
        image_manifest(config_blob(), [layer]),
        layer.digest,
        image_manifest(config_blob(), [random_blob(300)]),
        f"/v2/{repository}/blobs/uploads/{uuid.uuid4().hex}",
        random_blob(200),
    )


Send = Callable[[httpx.Client, str, Material], httpx.Response]


@dataclass(frozen=True)
class Endpoint:
    name: str
    action: str
    success: int
    send: Send
    # Whether a success uses up the material (a delete, an upload session).
    consumes: bool = False


def _upload_chunk(http: httpx.Client, material: Material) -> httpx.Response:
    data = material.chunk.data
    headers = {
        "Content-Type": "application/octet-stream",
        "Content-Range": f"0-{len(data) - 1}",
    }
    return http.patch(material.upload, content=data, headers=headers)


def _finish_upload(http: httpx.Client, material: Material) -> httpx.Response:
    return http.put(
        material.upload,
        params={"digest": material.chunk.digest},
        content=material.chunk.data,
        headers={"Content-Type": "application/octet-stream"},
    )


def _put_manifest(http: httpx.Client, name: str, material: Material) -> httpx.Response:
    return http.put(
        f"/v2/{name}/manifests/pushed",
        content=material.unpushed.content,
        headers={"Content-Type": material.unpushed.media_type},
    )


ENDPOINTS = (
    Endpoint("get-manifest", PULL, 200,
             lambda h, n, m: h.get(f"/v2/{n}/manifests/{m.manifest.digest}")),
    Endpoint("head-manifest", PULL, 200,
             lambda h, n, m: h.head(f"/v2/{n}/manifests/{m.manifest.digest}")),
    Endpoint("get-blob", PULL, 200,
             lambda h, n, m: h.get(f"/v2/{n}/blobs/{m.blob}")),
    Endpoint("head-blob", PULL, 200,
             lambda h, n, m: h.head(f"/v2/{n}/blobs/{m.blob}")),
    Endpoint("tags-list", PULL, 200, lambda h, n, m: h.get(f"/v2/{n}/tags/list")),
    Endpoint("referrers", PULL, 200,
             lambda h, n, m: h.get(f"/v2/{n}/referrers/{m.manifest.digest}")),
    Endpoint("put-manifest", PUSH, 201, _put_manifest),
    Endpoint("post-upload", PUSH, 202,
             lambda h, n, m: h.post(f"/v2/{n}/blobs/uploads/")),
    Endpoint("patch-upload", PUSH, 202, lambda h, n, m: _upload_chunk(h, m),
             consumes=True),
    Endpoint("put-upload", PUSH, 201, lambda h, n, m: _finish_upload(h, m),
             consumes=True),
    Endpoint("delete-manifest", DELETE, 202,
             lambda h, n, m: h.delete(f"/v2/{n}/manifests/{m.manifest.digest}"),
             consumes=True),
    Endpoint("delete-blob", DELETE, 202,
             lambda h, n, m: h.delete(f"/v2/{n}/blobs/{m.blob}"), consumes=True),
)  # fmt: skip

MODES = ("basic", "bearer")
CASES = [
    pytest.param(mode, role, endpoint, id=f"{mode}-{role.name}-{endpoint.name}")
    for mode in MODES
    for role in ROLES
    for endpoint in ENDPOINTS
]


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AuthServer]:
    registry = auth_server(tmp_path_factory.mktemp("permissions"))
    with registry:
        dockyard_batch(
            registry.data_dir,
            [
                *(add_user(account) for account in (NOBODY, READER, WRITER)),
                *(add_user(account) for account in (MAINTAINER, OWNER)),
                add_user(PATTERN_WRITER),
                ["namespace", "create", "acme"],
                ["namespace", "create", "vault"],
                ["namespace", "create", "pub", "--public"],
                ["namespace", "grant", "acme", READER.username, "reader"],
                ["namespace", "grant", "acme", WRITER.username, "writer"],
                ["namespace", "grant", "acme", MAINTAINER.username, "maintainer"],
                ["namespace", "grant", "acme", OWNER.username, "owner"],
                ["namespace", "grant", "acme", PATTERN_WRITER.username, "writer",
                 "--pattern", "team-*"],
            ],
        )  # fmt: skip
        yield registry


@pytest.fixture(scope="module")
def admin(server: AuthServer) -> Iterator[RegistryClient]:
    with server.client(ADMIN) as http:
        yield RegistryClient(http)


class Materials:
    """Content for the cases: shared by those that only read it, else fresh."""

    def __init__(self, admin: RegistryClient) -> None:
        self.admin = admin
        self._shared: dict[str, Material] = {}

    def for_case(self, repository: str, endpoint: Endpoint) -> Material:
        if endpoint.consumes:
            return store_material(self.admin, repository)
        if repository not in self._shared:
            self._shared[repository] = store_material(self.admin, repository)
        return self._shared[repository]


@pytest.fixture(scope="module")
def materials(admin: RegistryClient) -> Materials:
    return Materials(admin)


@pytest.fixture(scope="module")
def accounts(server: AuthServer) -> dict[str, Account | None]:
    """Every caller by name; the robot is created here, as its secret is random."""
    robot = create_robot(server.data_dir, ROBOT.removeprefix("robot$"), ROBOT_GRANT)
    people = [ADMIN, NOBODY, READER, WRITER, MAINTAINER, OWNER, PATTERN_WRITER]
    named: dict[str, Account | None] = {a.username: a for a in [*people, robot]}
    named[ANONYMOUS] = None
    return named


@pytest.fixture(scope="module")
def callers(
    server: AuthServer, accounts: dict[str, Account | None]
) -> Iterator[dict[str, httpx.Client]]:
    """One HTTP Basic client per account (and one without credentials)."""
    clients = {who: server.client(account) for who, account in accounts.items()}
    yield clients
    for http in clients.values():
        http.close()


class Tokens:
    """A client holding a bearer token per (caller, repository).

    Each token is asked for with every action; the token endpoint decides
    which of them the caller gets.
    """

    def __init__(self, server: AuthServer, accounts: dict[str, Account | None]) -> None:
        self.server = server
        self.accounts = accounts
        self._clients: dict[tuple[str, str], httpx.Client] = {}

    def client(self, who: str, repository: str) -> httpx.Client:
        key = (who, repository)
        if key not in self._clients:
            scope = f"repository:{repository}:pull,push,delete"
            http = self.server.client()
            http.headers.update(
                bearer(token_for(self.server, self.accounts[who], scope))
            )
            self._clients[key] = http
        return self._clients[key]

    def close(self) -> None:
        for http in self._clients.values():
            http.close()


@pytest.fixture(scope="module")
def tokens(server: AuthServer, accounts: dict[str, Account | None]) -> Iterator[Tokens]:
    issued = Tokens(server, accounts)
    yield issued
    issued.close()


def caller_for(
    mode: str,
    role: Role,
    repository: str,
    callers: dict[str, httpx.Client],
    tokens: Tokens,
) -> httpx.Client:
    if mode == "bearer":
        return tokens.client(role.who, repository)
    return callers[role.who]


def assert_refused(
    response: httpx.Response, role: Role, endpoint: Endpoint, mode: str, name: str
) -> None:
    """The refusal the role deserves: 401 with a challenge, or 403 DENIED."""
    head = response.request.method == "HEAD"
    assert response.headers.get(API_VERSION_HEADER) == "registry/2.0"
    if not role.anonymous and mode == "basic":
        assert response.status_code == 403, response.text
        assert head or error_code(response) == "DENIED"
        return

    assert response.status_code == 401, response.text
    assert head or error_code(response) == "UNAUTHORIZED"
    challenge = challenge_of(response)
    assert challenge["realm"].endswith("/auth/token")
    assert challenge["service"] == SERVICE
    kind, scoped, actions = challenge["scope"].split(":")
    assert (kind, scoped) == ("repository", name)
    assert endpoint.action in actions.split(",")
    if not role.anonymous:  # a token that lacks the action
        assert challenge.get("error") == "insufficient_scope"


def outcome(response: httpx.Response, name: str, stand_in: str) -> tuple[object, ...]:
    """What a refusal reveals, with the repository name written the same way."""
    code = None if response.request.method == "HEAD" else error_code(response)
    header = response.headers.get("www-authenticate", "")
    return response.status_code, code, header.replace(name, stand_in)


@pytest.mark.parametrize(("mode", "role", "endpoint"), CASES)
def test_role_gets_expected_status_from_endpoint(
    mode: str,
    role: Role,
    endpoint: Endpoint,
    materials: Materials,
    callers: dict[str, httpx.Client],
    tokens: Tokens,
) -> None:
    material = materials.for_case(role.repository, endpoint)
    http = caller_for(mode, role, role.repository, callers, tokens)
    response = endpoint.send(http, role.repository, material)

    if endpoint.action in role.actions:
        assert response.status_code == endpoint.success, response.text
        return
    assert_refused(response, role, endpoint, mode, role.repository)

    # The same request on a repository that does not exist reveals nothing more.
    http = caller_for(mode, role, role.missing, callers, tokens)
    twin = endpoint.send(http, role.missing, imagined_material(role.missing))
    assert outcome(twin, role.missing, "NAME") == outcome(
        response, role.repository, "NAME"
    )


@pytest.mark.parametrize("role", ROLES, ids=[role.name for role in ROLES])
def test_token_holds_only_actions_both_asked_and_allowed(
    role: Role, server: AuthServer, accounts: dict[str, Account | None]
) -> None:
    for asked in ({PULL}, {PULL, PUSH}, {PUSH, DELETE}, ALL_ACTIONS):
        scope = f"repository:{role.repository}:{','.join(sorted(asked))}"
        token = token_for(server, accounts[role.who], scope)

        assert granted_actions(token, role.repository) == asked & role.actions
        claims = claims_of(token)
        assert claims["aud"] == SERVICE
        for entry in claims.get("access", []):
            assert entry["actions"], "an entry without actions grants nothing"


def test_token_for_wildcard_scope_grants_the_role_actions(server: AuthServer) -> None:
    token = token_for(server, WRITER, f"repository:{APP}:*")

    assert granted_actions(token, APP) == {PULL, PUSH}


def test_token_request_beyond_rights_is_a_partial_grant_not_an_error(
    server: AuthServer,
) -> None:
    document = request_token(
        server, READER, f"repository:{APP}:pull,push", f"repository:{VAULT}:pull"
    )

    assert granted_actions(document["token"], APP) == {PULL}
    assert granted_actions(document["token"], VAULT) == set()


def test_token_without_action_gets_insufficient_scope_challenge(
    server: AuthServer, admin: RegistryClient
) -> None:
    material = store_material(admin, APP)
    token = token_for(server, READER, f"repository:{APP}:pull,push")

    with server.client() as http:
        http.headers.update(bearer(token))
        pulled = http.get(f"/v2/{APP}/manifests/{material.manifest.digest}")
        pushed = _put_manifest(http, APP, material)

    assert pulled.status_code == 200
    assert pushed.status_code == 401
    assert error_code(pushed) == "UNAUTHORIZED"
    challenge = challenge_of(pushed)
    assert challenge["error"] == "insufficient_scope"
    assert challenge["scope"] == f"repository:{APP}:push"
    assert challenge["realm"] == server.token_url
    assert challenge["service"] == SERVICE


def test_anonymous_challenge_names_realm_service_and_scope(
    server: AuthServer,
) -> None:
    with server.client() as http:
        response = http.get(f"/v2/{APP}/tags/list")

    assert response.status_code == 401
    assert challenge_of(response) == {
        "realm": server.token_url,
        "service": SERVICE,
        "scope": f"repository:{APP}:pull",
    }


def test_version_check_needs_a_login(
    server: AuthServer, callers: dict[str, httpx.Client]
) -> None:
    anonymous = callers["anonymous"].get("/v2/")
    logged_in = callers[NOBODY.username].get("/v2/")

    assert anonymous.status_code == 401
    assert challenge_of(anonymous)["realm"] == server.token_url
    assert logged_in.status_code == 200


# -- cross-repository mounts ---------------------------------------------------------


def test_mount_from_unreadable_repository_opens_a_session_instead(
    admin: RegistryClient, callers: dict[str, httpx.Client]
) -> None:
    secret = random_blob(400)
    admin.push_blob(VAULT, secret)
    writer = callers[WRITER.username]

    response = writer.post(
        f"/v2/{APP}/blobs/uploads/", params={"mount": secret.digest, "from": VAULT}
    )

    assert response.status_code == 202, response.text
    assert "/blobs/uploads/" in response.headers["location"]
    not_mounted = admin.http.head(f"/v2/{APP}/blobs/{secret.digest}")
    assert not_mounted.status_code == 404


def test_mount_from_unreadable_repository_with_token_opens_a_session(
    server: AuthServer, admin: RegistryClient
) -> None:
    secret = random_blob(400)
    admin.push_blob(VAULT, secret)
    token = token_for(
        server, WRITER, f"repository:{APP}:pull,push", f"repository:{VAULT}:pull"
    )

    with server.client() as http:
        http.headers.update(bearer(token))
        response = http.post(
            f"/v2/{APP}/blobs/uploads/", params={"mount": secret.digest, "from": VAULT}
        )

    assert response.status_code == 202, response.text
    assert admin.http.head(f"/v2/{APP}/blobs/{secret.digest}").status_code == 404


def test_mount_from_readable_repository_is_done(
    admin: RegistryClient, callers: dict[str, httpx.Client]
) -> None:
    shared = random_blob(400)
    admin.push_blob(TEAM, shared)

    response = callers[WRITER.username].post(
        f"/v2/{APP}/blobs/uploads/", params={"mount": shared.digest, "from": TEAM}
    )

    assert response.status_code == 201, response.text
    assert admin.http.head(f"/v2/{APP}/blobs/{shared.digest}").status_code == 200


def test_upload_session_cannot_be_continued_from_another_repository(
    admin: RegistryClient, callers: dict[str, httpx.Client]
) -> None:
    session = admin.start_upload(VAULT).headers["location"]
    upload_id = session.rstrip("/").rsplit("/", 1)[-1]
    own = f"{WRITER.username}/scratch"
    chunk = random_blob(100)

    response = callers[WRITER.username].put(
        f"/v2/{own}/blobs/uploads/{upload_id}",
        params={"digest": chunk.digest},
        content=chunk.data,
        headers={"Content-Type": "application/octet-stream"},
    )

    assert response.status_code == 404, response.text
    assert error_code(response) == "BLOB_UPLOAD_UNKNOWN"


# -- the catalog -----------------------------------------------------------------------


def visible_to(username: str, repositories: list[str]) -> set[str]:
    patterns = PULLABLE[username]
    return {
        name
        for name in repositories
        if any(fnmatch.fnmatchcase(name, pattern) for pattern in patterns)
        or name.split("/", 1)[0] == username
    }


@pytest.fixture(scope="module")
def every_repository(admin: RegistryClient) -> list[str]:
    """Content in each kind of repository, then the administrator's full catalog."""
    for name in (APP, TEAM, PUBLIC, VAULT, f"{READER.username}/own"):
        admin.push_image(name, "catalog")
    response = admin.http.get("/v2/_catalog", params={"n": 1000})
    assert response.status_code == 200, response.text
    names: list[str] = response.json()["repositories"]
    assert {APP, TEAM, PUBLIC, VAULT} <= set(names)
    return names


CATALOG_ACCOUNTS = [NOBODY, READER, PATTERN_WRITER, ADMIN]


@pytest.mark.parametrize(
    "account", CATALOG_ACCOUNTS, ids=[a.username for a in CATALOG_ACCOUNTS]
)
def test_catalog_lists_only_repositories_the_caller_can_pull(
    account: Account, every_repository: list[str], callers: dict[str, httpx.Client]
) -> None:
    response = callers[account.username].get("/v2/_catalog", params={"n": 1000})

    assert response.status_code == 200, response.text
    listed = set(response.json()["repositories"])
    assert listed == visible_to(account.username, every_repository)


@pytest.mark.parametrize(
    "account", CATALOG_ACCOUNTS, ids=[a.username for a in CATALOG_ACCOUNTS]
)
def test_catalog_with_token_lists_only_repositories_the_caller_can_pull(
    account: Account, every_repository: list[str], server: AuthServer
) -> None:
    token = token_for(server, account, "registry:catalog:*")

    with server.client() as http:
        response = http.get("/v2/_catalog", params={"n": 1000}, headers=bearer(token))

    assert response.status_code == 200, response.text
    listed = set(response.json()["repositories"])
    assert listed == visible_to(account.username, every_repository)


def test_catalog_refuses_anonymous_caller_with_challenge(
    callers: dict[str, httpx.Client],
) -> None:
    response = callers["anonymous"].get("/v2/_catalog")

    assert response.status_code == 401
    assert challenge_of(response)["scope"] == "registry:catalog:*"


# -- the token endpoint ----------------------------------------------------------------


def assert_token_answer(document: dict[str, object]) -> str:
    token = document["token"]
    assert isinstance(token, str) and token
    assert document["access_token"] == token
    expires_in = document["expires_in"]
    assert isinstance(expires_in, int) and expires_in >= 60
    issued_at = str(document["issued_at"])
    issued = datetime.fromisoformat(issued_at.replace("Z", "+00:00"))
    assert issued.tzinfo is not None
    assert abs((datetime.now(UTC) - issued).total_seconds()) < 300
    return token


def test_token_get_answer_has_token_fields(server: AuthServer) -> None:
    document = request_token(server, WRITER, f"repository:{APP}:pull")

    token = assert_token_answer(document)
    assert claims_of(token)["sub"] == WRITER.username
    assert "refresh_token" not in document


def test_token_post_password_then_refresh_grant(server: AuthServer) -> None:
    scope = f"repository:{APP}:pull,push repository:{VAULT}:pull"
    form = {
        "grant_type": "password",
        "username": WRITER.username,
        "password": WRITER.password,
        "service": SERVICE,
        "client_id": "dockyard-tests",
        "scope": scope,
        "access_type": "offline",
    }
    first = httpx.post(server.token_url, data=form)
    assert first.status_code == 200, first.text
    token = assert_token_answer(first.json())
    refresh = first.json()["refresh_token"]
    assert granted_actions(token, APP) == {PULL, PUSH}
    assert granted_actions(token, VAULT) == set()

    second = httpx.post(
        server.token_url,
        data={
            "grant_type": "refresh_token",
            "refresh_token": refresh,
            "service": SERVICE,
            "client_id": "dockyard-tests",
            "scope": f"repository:{APP}:pull",
            "access_type": "offline",
        },
    )
    assert second.status_code == 200, second.text
    renewed = assert_token_answer(second.json())
    assert claims_of(renewed)["sub"] == WRITER.username
    assert granted_actions(renewed, APP) == {PULL}
    tags = httpx.get(f"{server.url}/v2/{APP}/tags/list", headers=bearer(renewed))
    assert tags.status_code == 200, tags.text


def test_token_post_with_wrong_password_is_refused(server: AuthServer) -> None:
    response = httpx.post(
        server.token_url,
        data={
            "grant_type": "password",
            "username": WRITER.username,
            "password": "not-the-password",
            "service": SERVICE,
            "scope": f"repository:{APP}:pull",
        },
    )

    assert response.status_code == 401
    assert error_code(response) == "UNAUTHORIZED"
    assert "token" not in response.json()


def test_anonymous_token_grants_pull_on_public_repository_only(
    server: AuthServer,
) -> None:
    token = token_for(
        server, None, f"repository:{PUBLIC}:pull,push", f"repository:{APP}:pull"
    )

    assert granted_actions(token, PUBLIC) == {PULL}
    assert granted_actions(token, APP) == set()
    tags = httpx.get(f"{server.url}/v2/{PUBLIC}/tags/list", headers=bearer(token))
    assert tags.status_code == 200, tags.text


def test_personal_namespace_belongs_to_its_user(
    callers: dict[str, httpx.Client],
) -> None:
    own = RegistryClient(callers[NOBODY.username])
    manifest = own.push_image(f"{NOBODY.username}/tool", "v1")

    other = callers[READER.username].get(
        f"/v2/{NOBODY.username}/tool/manifests/{manifest.digest}"
    )
    deleted = callers[NOBODY.username].delete(
        f"/v2/{NOBODY.username}/tool/manifests/{manifest.digest}"
    )

    assert other.status_code == 403
    assert deleted.status_code == 202
