"""The storage-driver contract: every driver runs every test here.

Paths look like the ones `dockyard.storage.paths` builds, and writes follow
the upload service: a writer opened at the committed offset, buffers written,
closed, and a commit once the digest is verified.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from pathlib import Path

import anyio
import httpx
import pytest
from botocore.exceptions import ClientError

from dockyard.storage.base import LockTimeout, PathNotFound, StorageDriver, StorageError
from dockyard.storage.drivers import s3
from dockyard.storage.drivers.filesystem import FilesystemDriver
from tests.support.s3 import MotoServer

pytestmark = pytest.mark.anyio

MiB = 1024 * 1024
UPLOAD = "uploads/0123456789abcdef"
BLOB = "blobs/sha256/ab/ab" + "0" * 62


def payload(size: int) -> bytes:
    # Random bytes: a misplaced range cannot match by accident.
    return os.urandom(size)


async def read_all(
    driver: StorageDriver, path: str, offset: int = 0, length: int | None = None
) -> bytes:
    return b"".join([chunk async for chunk in driver.read(path, offset, length)])


async def append(
    driver: StorageDriver, path: str, offset: int, chunks: list[bytes]
) -> None:
    writer = await driver.open_writer(path, offset)
    try:
        for chunk in chunks:
            await writer.write(chunk)
    finally:
        await writer.close()


async def store(driver: StorageDriver, target: str, data: bytes) -> None:
    await append(
        driver, UPLOAD, 0, [data[i : i + MiB] for i in range(0, len(data), MiB)]
    )
    await driver.commit(UPLOAD, target)


async def test_stat_of_missing_path_is_none(driver: StorageDriver) -> None:
    assert await driver.stat(BLOB) is None
    assert await driver.stat(UPLOAD) is None


async def test_read_of_missing_path_raises_path_not_found(
    driver: StorageDriver,
) -> None:
    with pytest.raises(PathNotFound):
        await read_all(driver, BLOB)


async def test_committed_blob_has_its_size_and_bytes(driver: StorageDriver) -> None:
    data = payload(3 * MiB + 17)
    await store(driver, BLOB, data)

    assert await driver.stat(BLOB) == len(data)
    assert await read_all(driver, BLOB) == data
    assert await driver.stat(UPLOAD) is None


@pytest.mark.parametrize(
    ("offset", "length"),
    [
        (0, None),
        (0, 1),
        (1, 10),
        (MiB - 1, 2),
        (MiB, MiB),
        (2 * MiB + 5, None),
        (0, 0),
        (3 * MiB - 1, 1),
        (3 * MiB, None),
        (3 * MiB - 4, 100),
    ],
)
async def test_ranged_reads_are_byte_exact(
    driver: StorageDriver, offset: int, length: int | None
) -> None:
    data = payload(3 * MiB)
    await store(driver, BLOB, data)

    end = None if length is None else offset + length
    assert await read_all(driver, BLOB, offset, length) == data[offset:end]


async def test_empty_upload_commits_an_empty_blob(driver: StorageDriver) -> None:
    await append(driver, UPLOAD, 0, [])
    assert await driver.stat(UPLOAD) == 0

    await driver.commit(UPLOAD, BLOB)

    assert await driver.stat(BLOB) == 0
    assert await read_all(driver, BLOB) == b""


async def test_upload_in_progress_reads_back_before_commit(
    driver: StorageDriver,
) -> None:
    first, second = payload(100), payload(6 * MiB + 3)
    await append(driver, UPLOAD, 0, [first])
    await append(driver, UPLOAD, len(first), [second])
    data = first + second

    assert await driver.stat(UPLOAD) == len(data)
    assert await read_all(driver, UPLOAD) == data
    assert await read_all(driver, UPLOAD, 50, 100) == data[50:150]
    across = 5 * MiB - 10
    assert await read_all(driver, UPLOAD, across, 20) == data[across : across + 20]
    assert await read_all(driver, UPLOAD, across) == data[across:]


async def test_open_writer_at_an_offset_drops_the_rest_and_appends(
    driver: StorageDriver,
) -> None:
    # A torn chunk: bytes reached storage but the session never recorded them.
    kept, torn, resent = payload(1000), payload(500), payload(700)
    await append(driver, UPLOAD, 0, [kept])
    await append(driver, UPLOAD, len(kept), [torn])

    await append(driver, UPLOAD, len(kept), [resent])

    assert await driver.stat(UPLOAD) == len(kept) + len(resent)
    await driver.commit(UPLOAD, BLOB)
    assert await read_all(driver, BLOB) == kept + resent


async def test_open_writer_truncates_inside_a_large_write(
    driver: StorageDriver,
) -> None:
    data, tail = payload(12 * MiB + 1), payload(2 * MiB)
    await append(driver, UPLOAD, 0, [data])
    cut = 7 * MiB + 3

    await append(driver, UPLOAD, cut, [tail])

    assert await driver.stat(UPLOAD) == cut + len(tail)
    await driver.commit(UPLOAD, BLOB)
    assert await read_all(driver, BLOB) == data[:cut] + tail


async def test_open_writer_at_zero_starts_over(driver: StorageDriver) -> None:
    await append(driver, UPLOAD, 0, [payload(6 * MiB)])
    fresh = payload(10)

    await append(driver, UPLOAD, 0, [fresh])

    await driver.commit(UPLOAD, BLOB)
    assert await read_all(driver, BLOB) == fresh


async def test_many_small_chunks_over_many_sessions(driver: StorageDriver) -> None:
    chunks = [payload(size) for size in (1, 7, 4096, 65536, 3, 1 << 20, 11) * 4]
    offset = 0
    for start in range(0, len(chunks), 3):
        batch = chunks[start : start + 3]
        await append(driver, UPLOAD, offset, batch)
        offset += sum(map(len, batch))

    await driver.commit(UPLOAD, BLOB)

    assert await read_all(driver, BLOB) == b"".join(chunks)


async def test_large_upload_in_megabyte_buffers_spans_several_parts(
    driver: StorageDriver,
) -> None:
    data = payload(17 * MiB + 123)
    await store(driver, BLOB, data)

    assert await driver.stat(BLOB) == len(data)
    assert await read_all(driver, BLOB) == data
    assert (
        await read_all(driver, BLOB, 5 * MiB - 2, 4) == data[5 * MiB - 2 : 5 * MiB + 2]
    )


async def test_large_upload_resumed_by_another_process(
    open_driver: Callable[[], StorageDriver],
) -> None:
    first, second = payload(6 * MiB + 5), payload(5 * MiB + 9)
    await append(open_driver(), UPLOAD, 0, [first])

    other = open_driver()
    await append(other, UPLOAD, len(first), [second[:MiB], second[MiB:]])
    await other.commit(UPLOAD, BLOB)

    assert await read_all(open_driver(), BLOB) == first + second


async def test_commit_onto_an_existing_blob_keeps_one_copy(
    driver: StorageDriver,
) -> None:
    data = payload(2 * MiB)
    await store(driver, BLOB, data)

    await store(driver, BLOB, data)

    assert await driver.stat(BLOB) == len(data)
    assert await read_all(driver, BLOB) == data
    assert await driver.stat(UPLOAD) is None
    assert [path async for path in driver.list("blobs")] == [BLOB]


async def test_commit_keeping_the_source_allows_a_second_commit(
    driver: StorageDriver,
) -> None:
    # Uploads keep their copy until the blob's row is written, in case the
    # garbage collector removes the stored copy meanwhile.
    data = payload(2 * MiB + 5)
    await append(driver, UPLOAD, 0, [data])

    await driver.commit(UPLOAD, BLOB, keep_source=True)
    assert await read_all(driver, BLOB) == data
    assert await read_all(driver, UPLOAD) == data
    # No second name left behind, among the blobs or beside the upload.
    assert [path async for path in driver.list("blobs")] == [BLOB]
    assert [path async for path in driver.list("uploads")] == [UPLOAD]

    await driver.delete(BLOB)
    await driver.commit(UPLOAD, BLOB)
    assert await read_all(driver, BLOB) == data
    assert await driver.stat(UPLOAD) is None


async def test_commit_keeping_the_source_leaves_an_existing_blob(
    driver: StorageDriver,
) -> None:
    data = payload(MiB)
    await store(driver, BLOB, data)
    await append(driver, UPLOAD, 0, [data])

    await driver.commit(UPLOAD, BLOB, keep_source=True)

    assert await read_all(driver, BLOB) == data
    assert await driver.stat(UPLOAD) == len(data)


async def test_commit_replaces_a_damaged_blob(driver: StorageDriver) -> None:
    await store(driver, BLOB, payload(10))
    data = payload(MiB)

    await store(driver, BLOB, data)

    assert await read_all(driver, BLOB) == data


async def test_commit_moves_a_stored_object(driver: StorageDriver) -> None:
    # Garbage collection moves blobs to a trash folder and back this way.
    data, trash = payload(2 * MiB + 1), "trash/sha256:ab" + "0" * 62
    await store(driver, BLOB, data)

    await driver.commit(BLOB, trash)

    assert await driver.stat(BLOB) is None
    assert await read_all(driver, trash) == data


async def test_commit_of_a_stored_object_keeps_an_existing_target(
    driver: StorageDriver,
) -> None:
    data, trash = payload(1000), "trash/sha256:ab" + "0" * 62
    await store(driver, BLOB, data)
    await store(driver, trash, data)

    await driver.commit(trash, BLOB)

    assert await driver.stat(trash) is None
    assert await read_all(driver, BLOB) == data


async def test_delete_is_idempotent(driver: StorageDriver) -> None:
    await store(driver, BLOB, payload(10))
    await append(driver, UPLOAD, 0, [payload(6 * MiB)])

    for _ in range(2):
        await driver.delete(BLOB)
        await driver.delete(UPLOAD)

    assert await driver.stat(BLOB) is None
    assert await driver.stat(UPLOAD) is None
    assert [path async for path in driver.list("")] == []


async def test_list_yields_every_path_under_a_prefix(driver: StorageDriver) -> None:
    blobs = [f"blobs/sha256/{h[:2]}/{h}" for h in ("aa" * 32, "ab" * 32, "cd" * 32)]
    for blob in blobs:
        await store(driver, blob, payload(5))
    await append(driver, "uploads/pending", 0, [payload(5)])

    assert sorted([p async for p in driver.list("blobs")]) == sorted(blobs)
    assert sorted([p async for p in driver.list("blobs/sha256/ab")]) == [blobs[1]]
    assert [p async for p in driver.list("uploads")] == ["uploads/pending"]
    assert [p async for p in driver.list("missing")] == []


async def test_scan_gives_every_path_with_the_time_it_was_written(
    driver: StorageDriver,
) -> None:
    # Object stores keep whole seconds: allow for the truncation.
    before = time.time() - 1
    await store(driver, BLOB, payload(5))
    await append(driver, "uploads/pending", 0, [payload(6 * MiB)])
    after = time.time() + 1

    entries = [entry async for entry in driver.scan("")]

    assert sorted(path for path, _ in entries) == [BLOB, "uploads/pending"]
    assert all(before <= modified <= after for _, modified in entries)
    assert [entry.path async for entry in driver.scan("uploads")] == ["uploads/pending"]


async def test_an_upload_is_as_new_as_its_last_write(driver: StorageDriver) -> None:
    await append(driver, UPLOAD, 0, [payload(10)])
    [(_, first)] = [entry async for entry in driver.scan("uploads")]
    await anyio.sleep(1.1)

    await append(driver, UPLOAD, 10, [payload(10)])

    [(_, second)] = [entry async for entry in driver.scan("uploads")]
    assert second > first


async def test_lock_is_exclusive_until_released(driver: StorageDriver) -> None:
    events: list[str] = []
    held = anyio.Event()

    async def first() -> None:
        async with driver.lock(UPLOAD):
            events.append("first acquired")
            held.set()
            await anyio.sleep(0.2)
            events.append("first released")

    async def second() -> None:
        await held.wait()
        async with driver.lock(UPLOAD):
            events.append("second acquired")

    with anyio.fail_after(10):
        async with anyio.create_task_group() as group:
            group.start_soon(first)
            group.start_soon(second)

    assert events == ["first acquired", "first released", "second acquired"]


async def test_locks_on_different_paths_do_not_wait(driver: StorageDriver) -> None:
    with anyio.fail_after(5):
        async with driver.lock(UPLOAD), driver.lock("uploads/other"):
            pass
        async with driver.lock(UPLOAD):
            pass  # released and reacquirable


async def test_lock_spans_processes_exactly_when_the_driver_says_so(
    open_driver: Callable[[], StorageDriver],
) -> None:
    # Two instances on one store stand for two processes. A driver whose lock
    # does not reach across them leaves that to the upload service.
    first, second = open_driver(), open_driver()
    async with first.lock(UPLOAD):
        with anyio.move_on_after(0.3) as waiting:
            async with second.lock(UPLOAD):
                pass

    assert waiting.cancelled_caught == first.lock_spans_processes


async def test_redirect_url_fetches_the_blob_when_offered(
    driver: StorageDriver,
) -> None:
    data = payload(1000)
    await store(driver, BLOB, data)

    url = await driver.redirect_url(BLOB)

    if driver.name == "filesystem":
        assert url is None
        return
    assert url is not None
    async with httpx.AsyncClient() as client:
        response = await client.get(url)
    assert response.status_code == 200
    assert response.content == data


# S3 only: what the contract cannot see from the outside.


async def test_s3_commit_leaves_nothing_but_the_blob(moto: MotoServer) -> None:
    bucket = moto.create_bucket()
    driver = moto.driver(bucket)
    data = payload(11 * MiB)
    await append(driver, UPLOAD, 0, [data])
    await append(driver, UPLOAD, 6 * MiB, [data[6 * MiB :]])  # orphans a piece

    await driver.commit(UPLOAD, BLOB)
    await driver.delete(UPLOAD + ".lock")

    assert moto.keys(bucket) == [BLOB]
    assert await read_all(driver, BLOB) == data


async def test_s3_lists_the_pieces_of_a_first_writer_that_died(
    moto: MotoServer,
) -> None:
    # A full part reaches the bucket as soon as it is written; the state only
    # when the writer closes, which a crashed process never does.
    bucket = moto.create_bucket()
    driver = moto.driver(bucket)
    writer = await driver.open_writer(UPLOAD, 0)
    await writer.write(payload(6 * MiB))

    assert await driver.stat(UPLOAD) is None
    assert [path async for path in driver.list("uploads")] == [UPLOAD]
    await driver.delete(UPLOAD)
    assert moto.keys(bucket) == []


async def test_s3_keys_live_under_the_prefix(moto: MotoServer) -> None:
    bucket = moto.create_bucket()
    driver = moto.driver(bucket, prefix="/registry/")
    await store(driver, BLOB, payload(10))
    await append(driver, "uploads/pending", 0, [payload(10)])

    assert all(key.startswith("registry/") for key in moto.keys(bucket))
    assert [path async for path in driver.list("blobs")] == [BLOB]
    assert [path async for path in driver.list("uploads")] == ["uploads/pending"]


@pytest.mark.parametrize("size", [10, 12 * MiB])
async def test_s3_server_side_encryption_reaches_every_object(
    moto: MotoServer, size: int
) -> None:
    bucket = moto.create_bucket()
    driver = moto.driver(bucket, sse="AES256")
    await append(driver, UPLOAD, 0, [payload(size)])
    client = moto.client()
    for key in moto.keys(bucket):
        head = client.head_object(Bucket=bucket, Key=key)
        assert head.get("ServerSideEncryption") == "AES256", key

    await driver.commit(UPLOAD, BLOB)

    head = client.head_object(Bucket=bucket, Key=BLOB)
    assert head.get("ServerSideEncryption") == "AES256"


async def test_s3_redirect_is_off_unless_enabled(moto: MotoServer) -> None:
    driver = moto.driver()
    await store(driver, BLOB, payload(10))

    assert await driver.redirect_url(BLOB) is None


async def test_s3_advertises_the_multipart_minimum(moto: MotoServer) -> None:
    assert moto.driver().chunk_min_length == 5 * MiB


async def test_s3_errors_come_out_as_storage_errors(moto: MotoServer) -> None:
    driver = moto.driver("no-such-bucket")

    with pytest.raises(StorageError) as stat_error:
        await driver.stat(BLOB)
    with pytest.raises(StorageError) as write_error:
        await append(driver, UPLOAD, 0, [b"x"])

    for error in (stat_error.value, write_error.value):
        assert not isinstance(error, PathNotFound)
        assert isinstance(error.__cause__, ClientError)


async def test_s3_writer_refuses_to_leave_a_hole(moto: MotoServer) -> None:
    driver = moto.driver()
    await append(driver, UPLOAD, 0, [b"abc"])

    with pytest.raises(StorageError):
        await driver.open_writer(UPLOAD, 10)


async def test_s3_lock_gives_up_after_the_timeout(
    moto: MotoServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(s3, "LOCK_TIMEOUT", 0.1)
    driver = moto.driver()

    async with driver.lock(UPLOAD):
        with pytest.raises(LockTimeout):
            async with driver.lock(UPLOAD):
                pass


async def test_s3_moves_objects_beyond_the_copy_limit_in_ranges(
    moto: MotoServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    # CopyObject stops at 5 GiB; shrink the limits to see the ranged path.
    monkeypatch.setattr(s3, "MAX_COPY", 6 * MiB)
    monkeypatch.setattr(s3, "COPY_PART", 5 * MiB)
    bucket = moto.create_bucket()
    driver = moto.driver(bucket)
    data = payload(13 * MiB + 1)
    await store(driver, BLOB, data)

    await driver.commit(BLOB, "trash/moved")

    assert moto.keys(bucket) == ["trash/moved"]
    assert await read_all(driver, "trash/moved") == data


async def test_filesystem_paths_cannot_climb_out_of_the_root(tmp_path: Path) -> None:
    driver = FilesystemDriver(tmp_path / "root")
    (tmp_path / "outside").write_bytes(b"secret")
    for path in ("../outside", "blobs/../../outside", "/etc/passwd"):
        with pytest.raises(StorageError):
            await driver.stat(path)
    assert await driver.stat("blobs/../missing") is None  # stays inside: fine
