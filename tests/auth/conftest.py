"""Shared pieces of the access-control suite: servers with auth on, accounts, tokens.

Each module starts its own registries (module-scoped fixtures) and sets up its
accounts with the real `dockyard` command line on the server's data folder,
which works on the database while the server runs. The helpers here are plain
functions that the modules import; each module keeps its own fixtures, as each
sets its registry up differently.
"""

from __future__ import annotations

import json
import re
import ssl
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import jwt
import pytest

from tests.support.server import READY_TIMEOUT, RegistryServer

CLI_TIMEOUT = 120.0
SERVICE = "dockyard"
HTTP_TIMEOUT = 30.0


@dataclass(frozen=True)
class Account:
    """A username and password (or robot secret) a client logs in with."""

    username: str
    password: str

    @property
    def basic(self) -> tuple[str, str]:
        return (self.username, self.password)

    @property
    def creds(self) -> str:
        """The `user:password` form skopeo's `--creds` takes."""
        return f"{self.username}:{self.password}"


ADMIN = Account("admin", "admin-Xq7-secret-pass")


class AuthServer(RegistryServer):
    """A registry with authentication on, plain HTTP or TLS.

    With auth on, `/v2/` answers 401 to an anonymous caller, so readiness means
    "answers the version check at all". Given a `tls` context (trusting the
    test CA, holding a client certificate if the server wants one), the server
    is reached over HTTPS.
    """

    def __init__(
        self,
        data_dir: Path,
        *,
        env: dict[str, str] | None = None,
        extra_args: tuple[str, ...] = (),
        tls: ssl.SSLContext | None = None,
    ) -> None:
        super().__init__(data_dir, env=env, extra_args=extra_args)
        self.tls = tls
        self.scheme = "https" if tls is not None else "http"

    @property
    def verify(self) -> ssl.SSLContext | bool:
        return self.tls if self.tls is not None else True

    @property
    def url(self) -> str:
        return f"{self.scheme}://{self.host}"

    @property
    def token_url(self) -> str:
        return f"{self.url}/auth/token"

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + READY_TIMEOUT
        while time.monotonic() < deadline:
            assert self.process is not None
            if self.process.poll() is not None:
                raise RuntimeError(
                    f"dockyard exited with {self.process.returncode}:\n"
                    + self.logs()[-4000:]
                )
            try:
                response = httpx.get(f"{self.url}/v2/", timeout=1.0, verify=self.verify)
                if response.status_code in (200, 401):
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.1)
        self.stop()
        raise RuntimeError("dockyard did not become ready in time")

    def client(self, account: Account | None = None) -> httpx.Client:
        """An httpx client for this server, logging in with HTTP Basic if given."""
        return httpx.Client(
            base_url=self.url,
            auth=account.basic if account else None,
            timeout=HTTP_TIMEOUT,
            verify=self.verify,
        )


def auth_server(
    folder: Path, env: dict[str, str] | None = None, **options: Any
) -> AuthServer:
    """An (unstarted) registry with auth on and the bootstrap administrator."""
    settings = {
        "DOCKYARD_AUTH_ENABLED": "true",
        "DOCKYARD_AUTH_ADMIN_PASSWORD": ADMIN.password,
        **(env or {}),
    }
    return AuthServer(folder / "data", env=settings, **options)


# -- the command line ------------------------------------------------------------


def dockyard(data_dir: Path, *args: str) -> str:
    """Run `python -m dockyard ARGS --data-dir DATA` and return its stdout.

    Arguments after a "--" stay after it: key ids may start with a dash.
    """
    options, rest = args, ()
    if "--" in args:
        split = args.index("--")
        options, rest = args[:split], args[split:]
    command = [sys.executable, "-m", "dockyard", *options]
    command += ["--data-dir", str(data_dir), *rest]
    result = subprocess.run(
        command, capture_output=True, text=True, timeout=CLI_TIMEOUT, check=False
    )
    if result.returncode != 0:
        pytest.fail(
            f"{' '.join(command)} exited with {result.returncode}\n"
            f"stdout:\n{result.stdout[-4000:]}\nstderr:\n{result.stderr[-4000:]}"
        )
    return result.stdout


# Many set-up commands in one interpreter: each `python -m dockyard` costs about
# a second of start-up, which a dozen accounts would multiply.
_BATCH = """
import json, sys
from dockyard.cli.main import main
for argv in json.loads(sys.argv[1]):
    if main(argv) != 0:
        sys.exit("dockyard " + " ".join(argv) + " failed")
"""


def dockyard_batch(data_dir: Path, commands: Sequence[Sequence[str]]) -> None:
    """Run several `dockyard` commands (the CLI's own entry point) in one process."""
    argvs = [[*command, "--data-dir", str(data_dir)] for command in commands]
    result = subprocess.run(
        [sys.executable, "-c", _BATCH, json.dumps(argvs)],
        capture_output=True,
        text=True,
        timeout=CLI_TIMEOUT,
        check=False,
    )
    if result.returncode != 0:
        pytest.fail(f"dockyard set-up failed:\n{result.stderr[-4000:]}")


def add_user(account: Account) -> list[str]:
    return ["user", "add", account.username, "--password", account.password]


def create_robot(data_dir: Path, name: str, *grants: str) -> Account:
    """Create `robot$<name>` with grants like 'acme/*=pull,push'."""
    arguments = [argument for grant in grants for argument in ("--grant", grant)]
    created = json.loads(dockyard(data_dir, "robot", "create", name, *arguments))
    assert created["name"] == f"robot${name}"
    return Account(created["name"], created["secret"])


def audit_output(data_dir: Path) -> str:
    """The raw output of `dockyard audit list --json` (one JSON object a line)."""
    return dockyard(data_dir, "audit", "list", "--json", "--limit", "100000")


def audit_events(data_dir: Path) -> list[dict[str, Any]]:
    lines = audit_output(data_dir).splitlines()
    return [json.loads(line) for line in lines if line.strip()]


def find_events(
    data_dir: Path, actions: set[str], **fields: str
) -> list[dict[str, Any]]:
    """Audit events with one of `actions` whose fields contain the given texts."""
    return [
        event
        for event in audit_events(data_dir)
        if event["action"] in actions
        and all(text in str(event.get(key)) for key, text in fields.items())
    ]


# -- tokens and challenges ---------------------------------------------------------


def request_token(
    server: AuthServer, account: Account | None, *scopes: str, **params: str
) -> dict[str, Any]:
    """GET the token endpoint with HTTP Basic (or anonymously); the JSON answer."""
    response = httpx.get(
        server.token_url,
        params={"service": SERVICE, "scope": list(scopes), **params},
        auth=account.basic if account else None,
        timeout=HTTP_TIMEOUT,
        verify=server.verify,
    )
    assert response.status_code == 200, response.text
    document: dict[str, Any] = response.json()
    return document


def token_for(server: AuthServer, account: Account | None, *scopes: str) -> str:
    token: str = request_token(server, account, *scopes)["token"]
    return token


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def claims_of(token: str) -> dict[str, Any]:
    """The JWT payload, read without checking the signature."""
    payload: dict[str, Any] = jwt.decode(token, options={"verify_signature": False})
    return payload


def granted_actions(token: str, repository: str) -> set[str]:
    actions: set[str] = set()
    for entry in claims_of(token).get("access", []):
        if entry.get("type") == "repository" and entry.get("name") == repository:
            actions.update(entry.get("actions", []))
    return actions


_CHALLENGE_PARAM = re.compile(r'(\w+)="([^"]*)"')


def challenge_of(response: httpx.Response) -> dict[str, str]:
    """The parameters of a `WWW-Authenticate: Bearer ...` header."""
    header = response.headers.get("www-authenticate", "")
    scheme, _, params = header.partition(" ")
    assert scheme.lower() == "bearer", header
    return dict(_CHALLENGE_PARAM.findall(params))


def error_code(response: httpx.Response) -> str:
    errors = response.json()["errors"]
    code: str = errors[0]["code"]
    return code
