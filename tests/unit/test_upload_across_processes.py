"""An upload sent in PATCHes to one process and finished by an empty PUT in another.

Clients often send the PUT on a new connection, which may reach another server
worker than the one holding the running hash. The digest recorded with the last
PATCH lets that worker finish without reading the blob back.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import AsyncIterator
from pathlib import Path

import anyio
import pytest

from dockyard.metadata import migrate
from dockyard.metadata.engine import default_url
from dockyard.oci import errcodes
from dockyard.oci.digest import Digest
from dockyard.oci.errcodes import RegistryError
from dockyard.services import uploads as uploads_module
from dockyard.services.container import Services, build_services
from dockyard.settings import Settings

REPOSITORY = "acme/app"


def worker(data_dir: Path) -> Services:
    """What one server process builds for itself: its own running hashes."""
    return build_services(Settings(data_dir=data_dir))


async def body(*parts: bytes) -> AsyncIterator[bytes]:
    for part in parts:
        yield part


def digest_of(data: bytes) -> Digest:
    return Digest("sha256", hashlib.sha256(data).hexdigest())


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    migrate.upgrade(default_url(tmp_path))
    return tmp_path


@pytest.fixture
def no_rehash(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Record every time a finished upload is read back to be hashed."""
    reads: list[str] = []
    real = uploads_module.hash_stored

    async def counting(storage: object, path: str, algorithm: str) -> str:
        reads.append(path)
        return await real(storage, path, algorithm)  # type: ignore[arg-type]

    monkeypatch.setattr(uploads_module, "hash_stored", counting)
    return reads


async def patch_in_one_put_in_another(
    data_dir: Path, patches: list[bytes], final: bytes, digest: Digest
) -> str:
    first, second = worker(data_dir), worker(data_dir)
    try:
        upload = await first.uploads.start(REPOSITORY, "sha256")
        for part in patches:
            await first.uploads.append(REPOSITORY, upload.id, body(part))
        blob = await second.uploads.finish(REPOSITORY, upload.id, digest, body(final))
        return blob.digest
    finally:
        await first.close()
        await second.close()


def test_empty_put_in_another_process_needs_no_second_hash(
    data_dir: Path, no_rehash: list[str]
) -> None:
    parts = [os.urandom(300_000), os.urandom(200_000)]
    whole = b"".join(parts)
    stored = anyio.run(
        patch_in_one_put_in_another, data_dir, parts, b"", digest_of(whole)
    )
    assert stored == str(digest_of(whole))
    assert no_rehash == []
    blob = next((data_dir / "blobs").rglob(digest_of(whole).hex))
    assert blob.read_bytes() == whole


def test_wrong_digest_is_still_refused_without_a_second_hash(
    data_dir: Path, no_rehash: list[str]
) -> None:
    data = os.urandom(100_000)
    with pytest.raises(RegistryError) as refused:
        anyio.run(
            patch_in_one_put_in_another, data_dir, [data], b"", digest_of(b"other")
        )
    assert refused.value.error == errcodes.DIGEST_INVALID
    assert no_rehash == []


def test_put_with_bytes_in_another_process_hashes_the_whole_blob(
    data_dir: Path, no_rehash: list[str]
) -> None:
    head, tail = os.urandom(150_000), os.urandom(5_000)
    stored = anyio.run(
        patch_in_one_put_in_another, data_dir, [head], tail, digest_of(head + tail)
    )
    assert stored == str(digest_of(head + tail))
    assert len(no_rehash) == 1
