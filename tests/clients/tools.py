"""Run the real OCI command-line clients (skopeo, podman) from tests.

Each wrapper keeps its state in a test's temporary folder and talks plain HTTP
to a registry on loopback, using the flags noted in shared/CLIENTS.md.
"""

from __future__ import annotations

import importlib
import json
import os
import shutil
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any, NoReturn, TypeAlias
from urllib.parse import urlsplit

import pytest

from tests.support.server import RegistryServer

COMMAND_TIMEOUT = 120.0


@dataclass(frozen=True)
class ExternalRegistry:
    """A registry this test session did not start, known by its base URL."""

    url: str

    @property
    def host(self) -> str:
        return urlsplit(self.url).netloc


Registry: TypeAlias = RegistryServer | ExternalRegistry


def require_tool(name: str) -> str:
    """Return the path of binary `name`, or stop the test if it is missing.

    Missing clients skip the test on a developer's machine but fail it in CI
    (the `CI` environment variable is set there): the client suite must never
    pass silently by running nothing.
    """
    path = shutil.which(name)
    if path is not None:
        return path
    _missing(f"{name} is not installed (apt-get install -y {name})")


def require_module(name: str) -> ModuleType:
    """Import a Python client library, with the same skip/fail rule as tools."""
    try:
        return importlib.import_module(name)
    except ImportError as exc:
        _missing(f"{name} cannot be imported ({exc}); pip install '.[test]'")


def _missing(message: str) -> NoReturn:
    if os.environ.get("CI"):
        pytest.fail(f"{message}; the client suite must run in CI")
    pytest.skip(message)


def run_tool(command: list[str], *, env: Mapping[str, str] | None = None) -> bytes:
    """Run `command` and return its stdout; fail the test if it exits non-zero."""
    result = subprocess.run(
        command,
        capture_output=True,
        env={**os.environ, **(env or {})},
        stdin=subprocess.DEVNULL,
        timeout=COMMAND_TIMEOUT,
        check=False,
    )
    if result.returncode != 0:
        pytest.fail(
            f"{' '.join(command)} exited with {result.returncode}\n"
            f"stdout:\n{_tail(result.stdout)}\nstderr:\n{_tail(result.stderr)}"
        )
    return result.stdout


def _tail(output: bytes) -> str:
    return output[-4000:].decode(errors="replace")


def write_registries_conf(path: Path, insecure_host: str) -> Path:
    """A containers-registries.conf(5) that marks `insecure_host` as HTTP."""
    path.write_text(
        "unqualified-search-registries = []\n\n"
        "[[registry]]\n"
        f'location = "{insecure_host}"\n'
        "insecure = true\n"
    )
    return path


def client_environment(folder: Path, insecure_host: str) -> dict[str, str]:
    """Variables for container tools: our registries.conf, an empty auth file."""
    conf = write_registries_conf(folder / "registries.conf", insecure_host)
    auth_file = folder / "auth.json"
    auth_file.write_text('{"auths": {}}')
    return {
        "CONTAINERS_REGISTRIES_CONF": str(conf),
        "REGISTRY_AUTH_FILE": str(auth_file),
    }


class Skopeo:
    """skopeo with a private registries.conf and TLS verification off."""

    def __init__(
        self, binary: str, registries_conf: Path, env: Mapping[str, str]
    ) -> None:
        self.binary = binary
        self.registries_conf = registries_conf
        self.env = dict(env)

    def run(self, *args: str) -> bytes:
        command = [self.binary, "--registries-conf", str(self.registries_conf)]
        return run_tool([*command, *args], env=self.env)

    def copy(self, source: str, destination: str, *, all_images: bool = False) -> None:
        flags = ["--src-tls-verify=false", "--dest-tls-verify=false"]
        if all_images:
            flags.append("--all")
        self.run("copy", "--quiet", *flags, source, destination)

    def inspect(self, reference: str) -> dict[str, Any]:
        output = self.run("inspect", "--tls-verify=false", reference)
        document: dict[str, Any] = json.loads(output)
        return document

    def inspect_raw(self, reference: str) -> bytes:
        return self.run("inspect", "--raw", "--tls-verify=false", reference)

    def list_tags(self, repository: str) -> list[str]:
        output = self.run("list-tags", "--tls-verify=false", repository)
        tags: list[str] = json.loads(output)["Tags"]
        return tags

    def delete(self, reference: str) -> None:
        self.run("delete", "--tls-verify=false", reference)


class Podman:
    """podman on a private vfs store, as root, without a daemon.

    Images live under `root`; sockets and locks under `runroot`, which podman
    wants shorter than 50 characters (pytest's tmp_path is often longer).
    """

    def __init__(
        self, binary: str, root: Path, runroot: Path, env: Mapping[str, str]
    ) -> None:
        self.binary = binary
        self.root = root
        self.runroot = runroot
        self.env = dict(env)

    def global_flags(self) -> list[str]:
        return [
            "--storage-driver", "vfs",
            "--root", str(self.root),
            "--runroot", str(self.runroot / "run"),
            "--tmpdir", str(self.runroot / "tmp"),
            "--events-backend", "none",
            "--cgroup-manager", "cgroupfs",
        ]  # fmt: skip

    def __call__(self, *args: str) -> str:
        command = [self.binary, *self.global_flags(), *args]
        return run_tool(command, env=self.env).decode().strip()

    def inspect_image(self, reference: str) -> dict[str, Any]:
        documents: list[dict[str, Any]] = json.loads(
            self("image", "inspect", reference)
        )
        return documents[0]
