"""Real clients log in, push and pull through the token dance.

skopeo and podman meet the 401 challenge, fetch a token from the realm with the
credentials `login` stored (a user's password, or a robot's secret under the
name `robot$<name>`), and retry. Anonymous clients get tokens too, good for
pulling public namespaces and nothing else. Refused pushes must leave nothing
behind, which the administrator checks over plain HTTP.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.auth.conftest import (
    ADMIN,
    Account,
    AuthServer,
    add_user,
    auth_server,
    create_robot,
    dockyard_batch,
)
from tests.clients.tools import (
    COMMAND_TIMEOUT,
    Podman,
    Skopeo,
    client_environment,
    require_tool,
)
from tests.support.oci_layout import Image, OciLayout, write_image

pytestmark = pytest.mark.clients

WRITER = Account("wade", "wade-pass-8121")
READER = Account("rita", "rita-pass-3310")
PUBLIC_REPOSITORY = "pub/base"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AuthServer]:
    registry = auth_server(tmp_path_factory.mktemp("clients"))
    with registry:
        dockyard_batch(
            registry.data_dir,
            [
                add_user(WRITER),
                add_user(READER),
                ["namespace", "create", "acme"],
                ["namespace", "create", "pub", "--public"],
                ["namespace", "grant", "acme", WRITER.username, "writer"],
                ["namespace", "grant", "acme", READER.username, "reader"],
            ],
        )
        yield registry


@pytest.fixture(scope="module")
def robot(server: AuthServer) -> Account:
    return create_robot(server.data_dir, "ci", "acme/*=pull,push")


@pytest.fixture(scope="module")
def admin(server: AuthServer) -> Iterator[httpx.Client]:
    with server.client(ADMIN) as http:
        yield http


@pytest.fixture
def client_env(server: AuthServer, tmp_path: Path) -> dict[str, str]:
    """No credentials but those a test logs in with: an empty auth file."""
    folder = tmp_path / "containers"
    folder.mkdir()
    return client_environment(folder, server.host)


@pytest.fixture
def skopeo(client_env: dict[str, str]) -> Skopeo:
    conf = Path(client_env["CONTAINERS_REGISTRIES_CONF"])
    return Skopeo(require_tool("skopeo"), conf, client_env)


@pytest.fixture
def podman(client_env: dict[str, str], tmp_path: Path) -> Iterator[Podman]:
    binary = require_tool("podman")
    # podman wants its runroot path short; pytest's tmp_path is often too long.
    runroot = Path(tempfile.mkdtemp(prefix="dy-auth-"))
    try:
        yield Podman(binary, tmp_path / "podman", runroot, client_env)
    finally:
        shutil.rmtree(runroot, ignore_errors=True)


def new_repository(namespace: str) -> str:
    return f"{namespace}/img-{uuid.uuid4().hex[:10]}"


def stored_digest(admin: httpx.Client, repository: str, tag: str) -> str | None:
    """The digest the registry holds for a tag, seen by the administrator."""
    response = admin.head(
        f"/v2/{repository}/manifests/{tag}",
        headers={"Accept": "application/vnd.oci.image.manifest.v1+json"},
    )
    if response.status_code == 404:
        return None
    assert response.status_code == 200, response.text
    return response.headers["docker-content-digest"]


def run_refused(command: list[str], env: dict[str, str]) -> str:
    """Run a client command that must fail; return what it said."""
    result = subprocess.run(
        command,
        capture_output=True,
        env={**os.environ, **env},
        stdin=subprocess.DEVNULL,
        timeout=COMMAND_TIMEOUT,
        check=False,
    )
    output = (result.stdout + result.stderr).decode(errors="replace")
    assert result.returncode != 0, f"{' '.join(command)} succeeded:\n{output}"
    return output


def assert_refusal_message(output: str) -> None:
    """The client reports an authorization failure, not some unrelated error."""
    lowered = output.lower()
    assert any(
        word in lowered
        for word in ("unauthorized", "denied", "authentication required", "401")
    ), output


def skopeo_login(
    skopeo: Skopeo, server: AuthServer, auth_file: Path, who: Account
) -> None:
    skopeo.run(
        "login", "--tls-verify=false", "--authfile", str(auth_file),
        "--username", who.username, "--password", who.password, server.host,
    )  # fmt: skip
    assert server.host in json.loads(auth_file.read_text())["auths"]


def skopeo_copy(skopeo: Skopeo, auth_file: Path, source: str, target: str) -> None:
    skopeo.run(
        "copy", "--quiet", "--authfile", str(auth_file),
        "--src-tls-verify=false", "--dest-tls-verify=false", source, target,
    )  # fmt: skip


def layout_digest(layout: Path, tag: str) -> str:
    digest: str = OciLayout(layout).resolve(tag)["digest"]
    return digest


# -- skopeo --------------------------------------------------------------------------


@pytest.mark.parametrize("who", ["user", "robot"])
def test_skopeo_login_then_push_and_pull(
    who: str,
    skopeo: Skopeo,
    server: AuthServer,
    robot: Account,
    admin: httpx.Client,
    tmp_path: Path,
) -> None:
    account = WRITER if who == "user" else robot
    auth_file = tmp_path / "login.json"
    image = write_image(tmp_path / "source", "v1", seed=301, layer_count=2)
    repository = new_repository("acme")
    remote = f"docker://{server.host}/{repository}:v1"

    skopeo_login(skopeo, server, auth_file, account)
    skopeo_copy(skopeo, auth_file, f"oci:{tmp_path / 'source'}:v1", remote)
    skopeo_copy(skopeo, auth_file, remote, f"oci:{tmp_path / 'pulled'}:v1")

    assert stored_digest(admin, repository, "v1") == image.digest
    assert layout_digest(tmp_path / "pulled", "v1") == image.digest


def test_skopeo_anonymous_inspect_and_pull_of_public_namespace(
    skopeo: Skopeo, server: AuthServer, admin: httpx.Client, tmp_path: Path
) -> None:
    image = write_image(tmp_path / "source", "v1", seed=302, layer_count=1)
    repository = new_repository("pub")
    admin_login = tmp_path / "admin.json"
    skopeo_login(skopeo, server, admin_login, ADMIN)
    skopeo_copy(
        skopeo,
        admin_login,
        f"oci:{tmp_path / 'source'}:v1",
        f"docker://{server.host}/{repository}:v1",
    )
    remote = f"docker://{server.host}/{repository}:v1"

    inspected = skopeo.run("inspect", "--tls-verify=false", "--no-creds", remote)
    skopeo.run(
        "copy", "--quiet", "--src-tls-verify=false", "--src-no-creds",
        remote, f"oci:{tmp_path / 'pulled'}:v1",
    )  # fmt: skip

    assert json.loads(inspected)["Digest"] == image.digest
    assert layout_digest(tmp_path / "pulled", "v1") == image.digest


@pytest.mark.parametrize(
    ("namespace", "who"),
    [
        # Public for pulls, which is no reason to accept anonymous pushes.
        pytest.param("pub", "anonymous", id="anonymous-on-public"),
        pytest.param("acme", "reader", id="reader"),
        pytest.param("pub", "robot", id="robot-outside-its-grant"),
    ],
)
def test_skopeo_push_without_push_rights_is_refused_and_stores_nothing(
    skopeo: Skopeo,
    client_env: dict[str, str],
    server: AuthServer,
    robot: Account,
    admin: httpx.Client,
    tmp_path: Path,
    namespace: str,
    who: str,
) -> None:
    write_image(tmp_path / "source", "v1", seed=303, layer_count=1)
    repository = new_repository(namespace)
    credentials = {
        "anonymous": ["--dest-no-creds"],
        "reader": ["--dest-creds", READER.creds],
        "robot": ["--dest-creds", robot.creds],
    }[who]
    command = [
        skopeo.binary, "--registries-conf", str(skopeo.registries_conf),
        "copy", "--quiet", "--dest-tls-verify=false", *credentials,
        f"oci:{tmp_path / 'source'}:v1", f"docker://{server.host}/{repository}:v1",
    ]  # fmt: skip

    assert_refusal_message(run_refused(command, client_env))
    assert stored_digest(admin, repository, "v1") is None


# -- podman --------------------------------------------------------------------------


def load_into_podman(podman: Podman, layout: Path, image: Image) -> str:
    image_id = podman("pull", "--quiet", f"oci:{layout}:v1")
    assert f"sha256:{image_id}" == image.config.digest
    return image_id


@pytest.mark.parametrize("who", ["user", "robot"])
def test_podman_login_then_push_and_pull(
    who: str,
    podman: Podman,
    server: AuthServer,
    robot: Account,
    admin: httpx.Client,
    tmp_path: Path,
) -> None:
    account = WRITER if who == "user" else robot
    auth_file = tmp_path / "login.json"
    image = write_image(tmp_path / "source", "v1", seed=311, layer_count=2)
    image_id = load_into_podman(podman, tmp_path / "source", image)
    target = f"{server.host}/{new_repository('acme')}:v1"
    login = ["--tls-verify=false", "--authfile", str(auth_file)]

    podman("login", *login, "--username", account.username,
           "--password", account.password, server.host)  # fmt: skip
    podman("tag", image_id, target)
    podman("push", *login, "--digestfile", str(tmp_path / "digest"), target)
    pushed = (tmp_path / "digest").read_text().strip()
    podman("rmi", "--all", "--force")
    pulled_id = podman("pull", "--quiet", *login, target)

    assert pulled_id == image_id
    repository, _, tag = target.removeprefix(f"{server.host}/").partition(":")
    assert stored_digest(admin, repository, tag) == pushed


def test_podman_reader_cannot_push(
    podman: Podman,
    client_env: dict[str, str],
    server: AuthServer,
    admin: httpx.Client,
    tmp_path: Path,
) -> None:
    image = write_image(tmp_path / "source", "v1", seed=312, layer_count=1)
    image_id = load_into_podman(podman, tmp_path / "source", image)
    repository = new_repository("acme")
    target = f"{server.host}/{repository}:v1"
    podman("tag", image_id, target)
    command = [
        podman.binary, *podman.global_flags(), "push", "--tls-verify=false",
        "--creds", READER.creds, target,
    ]  # fmt: skip

    assert_refusal_message(run_refused(command, client_env))
    assert stored_digest(admin, repository, "v1") is None
