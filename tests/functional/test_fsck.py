"""`dockyard fsck` finds lost, damaged and stray blobs, and repairs them."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.support.server import RegistryServer


@pytest.fixture
def server(tmp_path: Path) -> Iterator[RegistryServer]:
    with RegistryServer(tmp_path / "data") as running:
        yield running


def push(server: RegistryServer, data: bytes) -> str:
    digest = "sha256:" + hashlib.sha256(data).hexdigest()
    response = httpx.post(
        f"{server.url}/v2/fsck/app/blobs/uploads/",
        params={"digest": digest},
        content=data,
    )
    assert response.status_code == 201, response.text
    return digest


def blob_file(server: RegistryServer, digest: str) -> Path:
    hexdigest = digest.split(":")[1]
    return server.data_dir / "blobs" / "sha256" / hexdigest[:2] / hexdigest


def fsck(server: RegistryServer, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "dockyard",
            "fsck",
            "--data-dir",
            str(server.data_dir),
            *args,
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_clean_registry_passes(server: RegistryServer) -> None:
    push(server, os.urandom(1000))
    result = fsck(server)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "checked 1 blob(s)" in result.stderr


def test_problems_are_found_and_repaired(server: RegistryServer) -> None:
    intact = push(server, os.urandom(1000))
    damaged_bytes = os.urandom(2000)
    damaged = push(server, damaged_bytes)
    lost = push(server, os.urandom(3000))
    blob_file(server, damaged).write_bytes(b"x" * 2000)
    blob_file(server, lost).unlink()
    stray = blob_file(server, "sha256:" + "ab" * 32)
    stray.parent.mkdir(parents=True, exist_ok=True)
    stray.write_bytes(b"left behind")

    found = fsck(server)

    assert found.returncode == 1
    kinds = {line.split("\t")[0]: line for line in found.stdout.splitlines()}
    assert damaged in kinds["corrupt"]
    assert lost in kinds["missing"]
    assert "ab" * 32 in kinds["unreferenced"]
    assert intact not in found.stdout

    repaired = fsck(server, "--repair")
    assert repaired.returncode == 0, repaired.stdout + repaired.stderr
    assert fsck(server).returncode == 0
    assert not stray.exists()

    # Forgotten blobs answer a clean 404 and can be pushed again.
    missing = httpx.head(f"{server.url}/v2/fsck/app/blobs/{damaged}")
    assert missing.status_code == 404
    push(server, damaged_bytes)
    again = httpx.get(f"{server.url}/v2/fsck/app/blobs/{damaged}")
    assert again.content == damaged_bytes
