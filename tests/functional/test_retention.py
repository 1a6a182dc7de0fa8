"""Retention rules over HTTP: what a run deletes and keeps, pull times, schedule, API.

Most tests use the session registry (SQLite, PostgreSQL, S3) and a namespace of
their own. Rules are set with the `dockyard retention` commands, run in-process
on the server's database; runs that must look days ahead call the service with
an explicit `now` instead of waiting.
"""

from __future__ import annotations

import contextlib
import io
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import anyio
import httpx
import pytest

from dockyard.cli.main import main
from dockyard.metadata import queries, retention
from dockyard.metadata.engine import create_sync_engine, default_url
from dockyard.metadata.executor import create_executor
from dockyard.metadata.retention import DAY, PullRow
from dockyard.services.retention import (
    Decision,
    RetentionReport,
    RetentionService,
    RunOptions,
)
from tests.support.registry_client import (
    Manifest,
    RegistryClient,
    image_index,
)
from tests.support.server import RegistryServer

FLUSH_TIMEOUT = 15.0
Cli = Callable[..., str]


def database_url(server: RegistryServer) -> str:
    return server.env.get("DOCKYARD_DATABASE_URL") or default_url(server.data_dir)


def run_dockyard(server: RegistryServer, *args: str, status: int = 0) -> str:
    """A `dockyard` command in this process, on the server's database."""
    output = io.StringIO()
    with contextlib.redirect_stdout(output):
        assert main([*args, "--data-dir", str(server.data_dir)]) == status
    return output.getvalue()


@pytest.fixture
def cli(registry: RegistryServer, monkeypatch: pytest.MonkeyPatch) -> Cli:
    # The server's own variables point the commands at its database.
    for key, value in registry.env.items():
        monkeypatch.setenv(key, value)
    return lambda *args, status=0: run_dockyard(registry, *args, status=status)


@pytest.fixture
def namespace(cli: Cli) -> str:
    name = f"keep{uuid.uuid4().hex[:10]}"
    cli("namespace", "create", name)
    return name


@pytest.fixture
def repo(namespace: str) -> str:
    return f"{namespace}/app"


@dataclass
class Run:
    report: RetentionReport
    decisions: list[Decision]

    def reason(self, reference: str) -> str:
        (found,) = [d for d in self.decisions if d.reference == reference]
        return found.reason


def apply(
    server: RegistryServer,
    namespace: str,
    *,
    dry_run: bool = False,
    days_later: float = 0.0,
) -> Run:
    """Run retention for one namespace as if `days_later` days had passed."""
    decisions: list[Decision] = []
    options = RunOptions(
        dry_run=dry_run, namespace=namespace, now=time.time() + days_later * DAY
    )

    async def go() -> RetentionReport:
        executor = create_executor(database_url(server))
        try:
            service = RetentionService(executor)
            return await service.run(options, on_decision=decisions.append)
        finally:
            await executor.close()

    return Run(anyio.run(go), decisions)


def pull_times(server: RegistryServer, repository: str) -> dict[str, PullRow]:
    engine = create_sync_engine(database_url(server))
    try:
        with engine.connect() as conn:
            found = queries.repository_id(conn, repository)
            if found is None:
                return {}
            return retention.load_state(conn, found, repository).pulls
    finally:
        engine.dispose()


def wait_for_pull(server: RegistryServer, repository: str, digest: str) -> PullRow:
    """The pull time once a flush has written it (every few seconds)."""
    deadline = time.monotonic() + FLUSH_TIMEOUT
    while time.monotonic() < deadline:
        found = pull_times(server, repository).get(digest)
        if found is not None:
            return found
        time.sleep(0.2)
    raise AssertionError(f"the pull of {digest} was not recorded")


def manifest_status(oci: RegistryClient, repo: str, digest: str) -> int:
    return oci.http.head(f"/v2/{repo}/manifests/{digest}").status_code


def push_tags(oci: RegistryClient, repo: str, *tags: str) -> dict[str, Manifest]:
    """One image per tag, pushed in this order (so the last is the newest)."""
    return {tag: oci.push_image(repo, tag) for tag in tags}


# -- tags ----------------------------------------------------------------------


def test_keep_newest_deletes_older_tags_and_leaves_their_manifests(
    oci: RegistryClient, cli: Cli, registry: RegistryServer, namespace: str, repo: str
) -> None:
    images = push_tags(oci, repo, "one", "two", "three", "four")
    cli("retention", "set", namespace, "--keep-newest", "2")

    run = apply(registry, namespace)

    assert oci.tags(repo) == ["four", "three"]
    assert run.report.tags_deleted == 2
    assert run.report.repositories == 1
    assert run.reason("three") == "one of the 2 newest"
    # Without untagged_days the manifests stay, for the collector to weigh.
    assert manifest_status(oci, repo, images["one"].digest) == 200


def test_keep_tags_keeps_names_matching_a_glob(
    oci: RegistryClient, cli: Cli, registry: RegistryServer, namespace: str, repo: str
) -> None:
    push_tags(oci, repo, "v1", "release-2", "dev-1", "latest")
    cli("retention", "set", namespace, "--keep-tag", "v*", "--keep-tag", "release-*")

    apply(registry, namespace)

    assert oci.tags(repo) == ["release-2", "v1"]


def test_rule_for_a_repository_glob_leaves_other_repositories_alone(
    oci: RegistryClient, cli: Cli, registry: RegistryServer, namespace: str
) -> None:
    web, api = f"{namespace}/web-front", f"{namespace}/api"
    push_tags(oci, web, "a", "b")
    push_tags(oci, api, "a", "b")
    cli("retention", "set", namespace, "--repository", "web-*", "--keep-newest", "1")

    apply(registry, namespace)

    assert oci.tags(web) == ["b"]
    assert oci.tags(api) == ["a", "b"]


def test_dry_run_changes_nothing_and_explains_every_decision(
    oci: RegistryClient, cli: Cli, namespace: str, repo: str
) -> None:
    images = push_tags(oci, repo, "v1", "dev-1")
    cli("retention", "set", namespace, "--keep-tag", "v*")

    output = cli("retention", "run", "--dry-run", "--namespace", namespace)

    assert oci.tags(repo) == ["dev-1", "v1"]
    lines = output.splitlines()
    assert f"keep tag {repo}:v1 ({images['v1'].digest}): matches v*" in lines, output
    assert any(
        line.startswith(f"would delete tag {repo}:dev-1 ({images['dev-1'].digest})")
        for line in lines
    ), output
    assert lines[-1].startswith("would delete 1 tags and 0 manifests in 1 repositories")


def test_real_run_from_the_command_line_lists_what_went(
    oci: RegistryClient, cli: Cli, namespace: str, repo: str
) -> None:
    push_tags(oci, repo, "old", "new")
    cli("retention", "set", namespace, "--keep-newest", "1")

    output = cli("retention", "run", "--namespace", namespace)

    assert oci.tags(repo) == ["new"]
    assert f"deleted tag {repo}:old" in output
    assert "keep tag" not in output
    assert output.splitlines()[-1].startswith("deleted 1 tags and 0 manifests")


def test_immutable_tags_survive_every_rule(
    oci: RegistryClient, cli: Cli, registry: RegistryServer, namespace: str, repo: str
) -> None:
    push_tags(oci, repo, "v1", "dev")
    cli("immutable", "add", namespace, "v*")
    cli("retention", "set", namespace, "--keep-newest", "0", "--untagged-days", "0")

    run = apply(registry, namespace, days_later=1)

    assert oci.tags(repo) == ["v1"]
    assert run.reason("v1").startswith("immutable")


# -- untagged manifests --------------------------------------------------------


def test_untagged_manifests_go_once_older_than_untagged_days(
    oci: RegistryClient, cli: Cli, registry: RegistryServer, namespace: str, repo: str
) -> None:
    loose = oci.push_image(repo)
    tagged = oci.push_image(repo, "latest")
    child = oci.push_image(repo)
    index = image_index([child])
    oci.push_manifest(repo, "multi", index)
    signature = oci.push_image(repo, subject=tagged, artifact_type="x/signature")
    cli("retention", "set", namespace, "--untagged-days", "7")

    early = apply(registry, namespace, days_later=1)
    assert early.report.manifests_deleted == 0
    assert early.reason(loose.digest) == "pushed less than 7 days ago"
    assert manifest_status(oci, repo, loose.digest) == 200

    late = apply(registry, namespace, days_later=8)
    assert late.report.manifests_deleted == 1
    assert manifest_status(oci, repo, loose.digest) == 404
    # Reached from tags: the index's child and the tagged image's referrer.
    for kept in (tagged, child, index, signature):
        assert manifest_status(oci, repo, kept.digest) == 200
    assert late.reason(signature.digest).startswith("reached from a kept manifest")


def test_an_image_losing_its_tag_goes_with_its_referrers(
    oci: RegistryClient, cli: Cli, registry: RegistryServer, namespace: str, repo: str
) -> None:
    old = oci.push_image(repo, "old")
    oci.push_image(repo, "new")
    signature = oci.push_image(repo, subject=old, artifact_type="x/signature")
    cli("retention", "set", namespace, "--keep-newest", "1", "--untagged-days", "7")

    preview = apply(registry, namespace, dry_run=True, days_later=8)
    assert (preview.report.tags_deleted, preview.report.manifests_deleted) == (1, 2)
    assert manifest_status(oci, repo, old.digest) == 200

    run = apply(registry, namespace, days_later=8)

    assert (run.report.tags_deleted, run.report.manifests_deleted) == (1, 2)
    assert oci.tags(repo) == ["new"]
    assert manifest_status(oci, repo, old.digest) == 404
    assert manifest_status(oci, repo, signature.digest) == 404


# -- pull times ------------------------------------------------------------------


@dataclass
class Pulled:
    """Two namespaces whose images were pulled, once the pulls are recorded."""

    tags_namespace: str
    tags_repo: str
    images: dict[str, Manifest]
    pins_namespace: str
    pins_repo: str
    pinned: Manifest
    unpinned: Manifest


@pytest.fixture(scope="module")
def pulled(registry: RegistryServer) -> Pulled:
    """Pulls made once per backend: the wait for their flush is paid once too."""
    names = [f"pull{uuid.uuid4().hex[:10]}" for _ in range(2)]
    with pytest.MonkeyPatch.context() as patch:
        for key, value in registry.env.items():
            patch.setenv(key, value)
        for name in names:
            run_dockyard(registry, "namespace", "create", name)
    tags_repo, pins_repo = (f"{name}/app" for name in names)

    with httpx.Client(base_url=registry.url, timeout=30.0) as http:
        oci = RegistryClient(http)
        images = push_tags(oci, tags_repo, "pulled", "checked", "idle")
        pinned, unpinned = oci.push_image(pins_repo), oci.push_image(pins_repo)
        assert http.head(f"/v2/{tags_repo}/manifests/checked").status_code == 200
        assert http.get(f"/v2/{tags_repo}/manifests/pulled").status_code == 200
        assert http.get(f"/v2/{pins_repo}/manifests/{pinned.digest}").status_code == 200

    wait_for_pull(registry, tags_repo, images["pulled"].digest)
    wait_for_pull(registry, pins_repo, pinned.digest)
    return Pulled(names[0], tags_repo, images, names[1], pins_repo, pinned, unpinned)


def test_recently_pulled_tags_are_kept_and_a_head_is_not_a_pull(
    oci: RegistryClient, cli: Cli, registry: RegistryServer, pulled: Pulled
) -> None:
    repo, images = pulled.tags_repo, pulled.images
    times = pull_times(registry, repo)
    assert times[images["pulled"].digest].pinned_at is None
    # The HEAD came before the GET, so its batch would have been written too.
    assert images["checked"].digest not in times
    cli("retention", "set", pulled.tags_namespace, "--keep-pulled-days", "30")

    later = apply(registry, pulled.tags_namespace, dry_run=True, days_later=31)
    run = apply(registry, pulled.tags_namespace)

    assert oci.tags(repo) == ["pulled"]
    assert run.reason("pulled").startswith("pulled ")
    # Past the window the pull no longer counts.
    assert later.report.tags_deleted == 3


def test_untagged_manifest_pulled_by_digest_is_kept_where_the_rule_asks(
    oci: RegistryClient, cli: Cli, registry: RegistryServer, pulled: Pulled
) -> None:
    namespace, repo = pulled.pins_namespace, pulled.pins_repo
    pinned = pull_times(registry, repo)[pulled.pinned.digest]
    assert pinned.pinned_at is not None
    cli("retention", "set", namespace, "--untagged-days", "7", "--keep-pinned")

    run = apply(registry, namespace, days_later=400)

    assert manifest_status(oci, repo, pulled.pinned.digest) == 200
    assert manifest_status(oci, repo, pulled.unpinned.digest) == 404
    assert run.reason(pulled.pinned.digest).startswith("pulled by digest")

    # With a pull window, the protection ends with it.
    cli(
        "retention", "set", namespace,
        "--untagged-days", "7", "--keep-pinned", "--keep-pulled-days", "30",
    )  # fmt: skip
    apply(registry, namespace, days_later=31)
    assert manifest_status(oci, repo, pulled.pinned.digest) == 404


def test_collector_leaves_untagged_manifests_to_the_rules(
    oci: RegistryClient, cli: Cli, registry: RegistryServer
) -> None:
    governed, pins, free = (f"gc{uuid.uuid4().hex[:10]}" for _ in range(3))
    for name in (governed, pins, free):
        cli("namespace", "create", name)
    waiting = oci.push_image(f"{governed}/app")
    pinned, unpinned = oci.push_image(f"{pins}/app"), oci.push_image(f"{pins}/app")
    loose = oci.push_image(f"{free}/app")
    assert oci.http.get(f"/v2/{pins}/app/manifests/{pinned.digest}").status_code == 200
    wait_for_pull(registry, f"{pins}/app", pinned.digest)
    cli("retention", "set", governed, "--untagged-days", "7")
    cli("retention", "set", pins, "--keep-pinned")

    cli("gc", "--keep-untagged", "0", "--grace", "0")

    # untagged_days decides, not the collector's keep_untagged.
    assert manifest_status(oci, f"{governed}/app", waiting.digest) == 200
    # keep_pinned alone protects the pinned manifest, and only that one.
    assert manifest_status(oci, f"{pins}/app", pinned.digest) == 200
    assert manifest_status(oci, f"{pins}/app", unpinned.digest) == 404
    # Where no rule applies, the collector's own settings hold.
    assert manifest_status(oci, f"{free}/app", loose.digest) == 404


# -- rules from the command line -------------------------------------------------


def test_rules_are_set_listed_replaced_and_removed(cli: Cli, namespace: str) -> None:
    cli("retention", "set", namespace, "--keep-newest", "10", "--keep-tag", "v*")
    cli("retention", "set", namespace, "--repository", "web", "--untagged-days", "3")
    replaced = cli("retention", "set", namespace, "--keep-newest", "5")

    assert replaced.strip() == f"{namespace}/*: keep_newest=5"
    assert cli("retention", "list", namespace).splitlines() == [
        f"{namespace}/*: keep_newest=5",
        f"{namespace}/web: untagged_days=3",
    ]
    cli("retention", "remove", namespace, "--repository", "web")
    assert cli("retention", "list", namespace).splitlines() == [
        f"{namespace}/*: keep_newest=5"
    ]
    audit = cli("audit", "list", "--namespace", namespace)
    assert "retention.set" in audit
    assert "retention.removed" in audit


def test_bad_rules_and_unknown_namespaces_are_refused(
    cli: Cli, namespace: str, capsys: pytest.CaptureFixture[str]
) -> None:
    cli("retention", "set", namespace, status=1)
    assert "at least one of" in capsys.readouterr().err
    cli("retention", "set", namespace, "--keep-newest", "-1", status=1)
    assert "keep_newest" in capsys.readouterr().err
    cli("retention", "set", "nosuchnamespace", "--keep-newest", "1", status=1)
    cli("retention", "remove", namespace, status=1)


# -- the server on its own -----------------------------------------------------------


@pytest.fixture(scope="module")
def scheduled(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RegistryServer]:
    env = {
        "DOCKYARD_REGISTRY_MAINTENANCE_INTERVAL": "1",
        "DOCKYARD_REGISTRY_RETENTION_INTERVAL": "1",
    }
    data = tmp_path_factory.mktemp("retention-scheduled") / "data"
    with RegistryServer(data, env=env) as running:
        yield running


def test_the_server_applies_the_rules_on_a_schedule(scheduled: RegistryServer) -> None:
    run_dockyard(scheduled, "namespace", "create", "team")
    run_dockyard(scheduled, "retention", "set", "team", "--keep-newest", "1")
    with httpx.Client(base_url=scheduled.url, timeout=30.0) as http:
        oci = RegistryClient(http)
        push_tags(oci, "team/app", "old", "new")

        deadline = time.monotonic() + 20
        while oci.tags("team/app") != ["new"] and time.monotonic() < deadline:
            time.sleep(0.25)

        assert oci.tags("team/app") == ["new"]
    assert "retention finished" in scheduled.logs()


def test_pulls_noted_in_memory_are_written_when_the_server_stops(
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    env = {"DOCKYARD_REGISTRY_PULL_FLUSH_INTERVAL": "3600"}
    server = RegistryServer(tmp_path_factory.mktemp("pulls") / "data", env=env)
    with server, httpx.Client(base_url=server.url, timeout=30.0) as http:
        oci = RegistryClient(http)
        image = oci.push_image("team/app", "latest")
        assert http.get("/v2/team/app/manifests/latest").status_code == 200
        assert pull_times(server, "team/app") == {}

    (found,) = pull_times(server, "team/app").items()
    assert found[0] == image.digest
    assert found[1].pinned_at is None
    assert abs(found[1].pulled_at - time.time()) < 60


# -- the management API ---------------------------------------------------------------

ADMIN_PASSWORD = "admin-pass-1"
PASSWORD = "user-pass-1"


@dataclass
class Team:
    server: RegistryServer
    namespace: str
    admin: httpx.Client
    maintainer: httpx.Client
    reader: httpx.Client
    outsider: httpx.Client

    @property
    def rules(self) -> str:
        return f"/api/v1/namespaces/{self.namespace}/retention"


@pytest.fixture(scope="module")
def secured(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RegistryServer]:
    env = {
        "DOCKYARD_AUTH_ENABLED": "true",
        "DOCKYARD_AUTH_ADMIN_PASSWORD": ADMIN_PASSWORD,
    }
    data = tmp_path_factory.mktemp("retention-api") / "data"
    with RegistryServer(data, env=env) as running:
        yield running


@pytest.fixture(scope="module")
def team(secured: RegistryServer) -> Iterator[Team]:
    def login(username: str, password: str = PASSWORD) -> httpx.Client:
        return httpx.Client(base_url=secured.url, auth=(username, password))

    suffix = uuid.uuid4().hex[:8]
    namespace = f"team{suffix}"
    with login("admin", ADMIN_PASSWORD) as admin:
        created = admin.post("/api/v1/namespaces", json={"name": namespace})
        assert created.status_code == 201, created.text
        for role in ("maintainer", "reader", "outsider"):
            user = {"username": f"{role}{suffix}", "password": PASSWORD}
            assert admin.post("/api/v1/users", json=user).status_code == 201
            if role != "outsider":
                member = {"kind": "user", "subject": f"{role}{suffix}", "role": role}
                path = f"/api/v1/namespaces/{namespace}/members"
                assert admin.put(path, json=member).status_code == 200
        with (
            login(f"maintainer{suffix}") as maintainer,
            login(f"reader{suffix}") as reader,
            login(f"outsider{suffix}") as outsider,
        ):
            yield Team(secured, namespace, admin, maintainer, reader, outsider)


def test_maintainers_manage_rules_and_readers_only_read_them(team: Team) -> None:
    rule = {"keep_newest": 3, "keep_tags": ["v*"], "untagged_days": 14}

    assert team.reader.put(team.rules, json=rule).status_code == 403
    assert team.outsider.get(team.rules).status_code == 404
    saved = team.maintainer.put(team.rules, json=rule)
    assert saved.status_code == 200, saved.text

    expected = {
        "repository_pattern": "*",
        "keep_newest": 3,
        "keep_tags": ["v*"],
        "keep_pulled_days": None,
        "untagged_days": 14,
        "keep_pinned": False,
    }
    assert saved.json() == expected
    assert team.reader.get(team.rules).json() == {"rules": [expected]}
    assert team.reader.delete(team.rules).status_code == 403
    run = team.reader.post(f"{team.rules}/run", json={"dry_run": True})
    assert run.status_code == 403

    assert team.maintainer.delete(team.rules).status_code == 204
    assert team.maintainer.delete(team.rules).status_code == 404
    events = team.admin.get("/api/v1/audit", params={"namespace": team.namespace})
    actions = {event["action"] for event in events.json()["events"]}
    assert {"retention.set", "retention.removed"} <= actions


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"keep_newest": -1},
        {"keep_newest": "3"},
        {"keep_tags": "v*"},
        {"keep_tags": [1]},
        {"keep_newest": 1, "colour": "red"},
        {"keep_pinned": "yes"},
    ],
)
def test_bad_rules_are_refused_with_400(team: Team, body: dict[str, object]) -> None:
    response = team.maintainer.put(team.rules, json=body)

    assert response.status_code == 400, response.text
    assert response.json()["errors"][0]["code"] == "UNSUPPORTED"


def test_a_run_through_the_api_previews_then_deletes(team: Team) -> None:
    repo = f"{team.namespace}/app"
    oci = RegistryClient(team.maintainer)
    push_tags(oci, repo, "old", "new")
    rule = {"keep_newest": 1}
    assert team.maintainer.put(team.rules, json=rule).status_code == 200

    preview = team.maintainer.post(f"{team.rules}/run", json={"dry_run": True})
    assert preview.status_code == 200, preview.text
    assert oci.tags(repo) == ["new", "old"]
    decisions = {d["reference"]: d for d in preview.json()["decisions"]}
    assert decisions["old"]["action"] == "delete"
    assert decisions["new"] == {
        "kind": "tag",
        "repository": repo,
        "reference": "new",
        "digest": decisions["new"]["digest"],
        "action": "keep",
        "reason": "one of the 1 newest",
    }

    applied = team.maintainer.post(f"{team.rules}/run", json={"dry_run": False})
    assert applied.json()["tags_deleted"] == 1
    assert oci.tags(repo) == ["new"]
    assert team.maintainer.post(f"{team.rules}/run", json={}).status_code == 400
