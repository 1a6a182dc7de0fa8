"""The blob storage a test's registries use, and a look inside it.

Both kinds that replicas can share: a folder (one machine) and an S3 bucket on
moto's server, chosen by a fixture parameter, "filesystem" or "s3". Tests
plant what a crashed process leaves and look for what the registry stored,
without going through the registry.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.support.s3 import ACCESS_KEY, SECRET_KEY, MotoServer


@dataclass(frozen=True)
class SharedStorage:
    name: str
    # What a registry needs in its environment to use this storage.
    env: dict[str, str]
    # Every stored path, as the registry names it.
    paths: Callable[[], list[str]]
    # Leave what a process that crashed while storing an upload leaves.
    plant_orphan: Callable[[str], None]

    def holds_upload(self, name: str) -> bool:
        """Whether anything of the named upload is stored."""
        return any(path.startswith(f"uploads/{name}") for path in self.paths())


def folder_storage(root: Path) -> SharedStorage:
    def paths() -> list[str]:
        return [str(p.relative_to(root)) for p in root.rglob("*") if p.is_file()]

    def plant_orphan(name: str) -> None:
        (root / "uploads").mkdir(parents=True, exist_ok=True)
        (root / "uploads" / name).write_bytes(b"partial")

    env = {"DOCKYARD_STORAGE_ROOT": str(root)}
    return SharedStorage("filesystem", env, paths, plant_orphan)


def bucket_storage(moto: MotoServer) -> SharedStorage:
    bucket = moto.create_bucket()

    def plant_orphan(name: str) -> None:
        # A first writer's piece, stored before the writer died: no state.
        key = f"uploads/{name}.upload/{os.urandom(8).hex()}"
        moto.client().put_object(Bucket=bucket, Key=key, Body=b"partial")

    env = {
        "DOCKYARD_STORAGE_DRIVER": "s3",
        "DOCKYARD_STORAGE_S3_BUCKET": bucket,
        "DOCKYARD_STORAGE_S3_ENDPOINT_URL": moto.url,
        "DOCKYARD_STORAGE_S3_ACCESS_KEY": ACCESS_KEY,
        "DOCKYARD_STORAGE_S3_SECRET_KEY": SECRET_KEY,
    }
    return SharedStorage("s3", env, lambda: moto.keys(bucket), plant_orphan)


def shared_storage(request: pytest.FixtureRequest, folder: Path) -> SharedStorage:
    """The storage a parametrized fixture asks for (`folder` for the filesystem)."""
    if request.param == "s3":
        return bucket_storage(request.getfixturevalue("moto"))
    return folder_storage(folder)
