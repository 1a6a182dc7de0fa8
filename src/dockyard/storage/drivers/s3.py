"""Blobs and uploads as objects in an S3 bucket (AWS or any S3-compatible store).

An upload in progress is not one object: S3 cannot append. It is a small set
of objects beside the upload's path, described by a state document that is
rewritten, in one PUT, each time a writer closes:

    <prefix><path>.upload/
      state.json        {"pieces": [{"key": ..., "size": ...}, ...]}
      <uuid>            a piece: a run of the upload's bytes, in state order

Every piece but the last is at least `MIN_PART` (5 MiB), the smallest part a
multipart upload accepts, so `commit` assembles the blob with server-side
part copies and never moves the bytes through this process. A writer keeps
about `part_size` bytes in memory and stores each full part as a piece; when
it closes, what is left becomes the last piece even if it is small, and the
next writer reads that small piece back (under 5 MiB) and continues from it.
Truncating to an offset inside a piece reads back that piece's kept prefix (at
most `part_size`). `list` and `scan` show an upload in progress by its own path
(as written when its newest object was) and hide the `.upload/` objects.

Pieces have unique names and the state is replaced in one request, so a
writer that dies half-way leaves the previous state whole; its orphaned pieces
go when the upload is committed or deleted. A first writer that dies before
any state exists leaves pieces alone; they still list as an upload, so the
orphan sweep finds and deletes them.

A committed blob appears at its path only when CompleteMultipartUpload (or a
CopyObject) succeeds, so no reader ever sees a partial blob. `commit` also
moves a stored object (garbage collection's trash), by server-side copy.

`lock` excludes the requests of this process only (S3 has no lock to offer);
the upload service adds a lock in the metadata database that every replica
sees, since `lock_spans_processes` is false.
"""

from __future__ import annotations

import contextlib
import json
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

import anyio
import boto3
from anyio import to_thread
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from dockyard.storage.base import (
    LockTimeout,
    PathNotFound,
    StorageDriver,
    StorageError,
    StoredEntry,
    UploadWriter,
)
from dockyard.storage.registry import register

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

MiB = 1024 * 1024
# S3's floor for every part of a multipart upload but the last.
MIN_PART = 5 * MiB
# S3's ceiling on the parts of one multipart upload: each piece is one part.
MAX_PARTS = 10_000
# Bytes a writer gathers before storing them as a piece; also the largest part
# of a committed blob. Uploads sent in large chunks fit up to MAX_PARTS * 16 MiB
# (about 156 GiB); one sent as many 5 MiB chunks fits up to about 48 GiB.
DEFAULT_PART_SIZE = 16 * MiB
# CopyObject copies objects up to 5 GiB; larger ones go part by part.
MAX_COPY = 5 * 1024 * MiB
COPY_PART = 512 * MiB
READ_CHUNK = 1 * MiB
# How long a presigned redirect stays valid.
REDIRECT_EXPIRES = 20 * 60
LOCK_TIMEOUT = 60.0
UPLOAD_SUFFIX = ".upload/"
STATE_NAME = "state.json"
NOT_FOUND_CODES = frozenset({"NoSuchKey", "404", "NotFound"})

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class _Piece:
    key: str  # full object key, prefix included
    size: int


@dataclass(frozen=True, slots=True)
class _Source:
    """One part of a server-side copy: a whole object, or a byte range of it."""

    key: str
    range: str | None  # "bytes=first-last", as UploadPartCopy takes it


def _ranges(key: str, size: int) -> list[_Source]:
    """A stored object as copy sources: whole when CopyObject can take it."""
    if size <= MAX_COPY:
        return [_Source(key, None)]
    part = max(COPY_PART, -(-size // MAX_PARTS))
    return [
        _Source(key, f"bytes={start}-{min(start + part, size) - 1}")
        for start in range(0, size, part)
    ]


def _translate(action: str, path: str, exc: Exception) -> StorageError:
    if isinstance(exc, ClientError):
        code = str(exc.response.get("Error", {}).get("Code", ""))
        if code in NOT_FOUND_CODES:
            return PathNotFound(path)
        return StorageError(f"failed to {action} {path}: {code or exc}")
    return StorageError(f"failed to {action} {path}: {exc}")


class _Lock:
    """One path's lock and the number of tasks holding or awaiting it.

    A semaphore rather than a Lock: like the filesystem driver's flock it has no
    owning task, so a request that nests two acquisitions waits (and times out)
    instead of failing with a RuntimeError.
    """

    def __init__(self) -> None:
        self.lock = anyio.Semaphore(1)
        self.users = 0


class S3Driver(StorageDriver):
    name = "s3"
    chunk_min_length = MIN_PART
    lock_spans_processes = False

    def __init__(
        self,
        bucket: str,
        endpoint_url: str | None = None,
        region: str = "us-east-1",
        access_key: str | None = None,
        secret_key: str | None = None,
        prefix: str = "",
        redirect: bool = False,
        sse: str | None = None,
        sse_kms_key_id: str | None = None,
        part_size: int = DEFAULT_PART_SIZE,
    ) -> None:
        if part_size < MIN_PART:
            raise ValueError(f"part_size must be at least {MIN_PART} bytes")
        self.bucket = bucket
        self.prefix = prefix.strip("/") + "/" if prefix.strip("/") else ""
        self.redirect = redirect
        self.part_size = part_size
        self._encryption: dict[str, str] = {}
        if sse:
            self._encryption["ServerSideEncryption"] = sse
        if sse_kms_key_id:
            self._encryption["SSEKMSKeyId"] = sse_kms_key_id
        # Path-style addressing for custom endpoints: S3-compatible stores on a
        # bare host or IP rarely resolve bucket subdomains. Checksums only where
        # S3 requires them: many S3-compatible stores reject the CRC headers
        # that botocore (1.36 and later) adds to every upload by default.
        config = Config(
            region_name=region,
            signature_version="s3v4",
            retries={"max_attempts": 5, "mode": "standard"},
            max_pool_connections=32,
            s3={"addressing_style": "path" if endpoint_url else "auto"},
            request_checksum_calculation="when_required",
            response_checksum_validation="when_required",
        )
        self._client: S3Client = boto3.session.Session().client(
            "s3",
            endpoint_url=endpoint_url,
            aws_access_key_id=access_key,
            aws_secret_access_key=secret_key,
            config=config,
        )
        self._locks: dict[str, _Lock] = {}

    # -- keys and calls -----------------------------------------------------

    def _key(self, path: str) -> str:
        if not path or path.startswith("/") or ".." in path.split("/"):
            raise StorageError(f"path {path!r} is not a relative storage path")
        return self.prefix + path

    def _upload_dir(self, path: str) -> str:
        return self._key(path) + UPLOAD_SUFFIX

    async def _call(
        self, action: str, path: str, function: Callable[..., T], **kwargs: Any
    ) -> T:
        def run() -> T:
            return function(**kwargs)

        try:
            return await to_thread.run_sync(run)
        except (ClientError, BotoCoreError) as exc:
            raise _translate(action, path, exc) from exc

    # -- upload state ---------------------------------------------------------

    async def _load_state(self, path: str) -> list[_Piece] | None:
        key = self._upload_dir(path) + STATE_NAME
        try:
            body = await self._get_bytes("read upload state of", path, key)
        except PathNotFound:
            return None
        try:
            document = json.loads(body)
            return [_Piece(str(p["key"]), int(p["size"])) for p in document["pieces"]]
        except (ValueError, KeyError, TypeError) as exc:
            raise StorageError(f"upload state of {path} is damaged") from exc

    async def _save_state(self, path: str, pieces: list[_Piece]) -> None:
        document = {"pieces": [{"key": p.key, "size": p.size} for p in pieces]}
        await self._put(
            path, self._upload_dir(path) + STATE_NAME, json.dumps(document).encode()
        )

    async def _put(self, path: str, key: str, data: bytes) -> None:
        await self._call(
            "write",
            path,
            self._client.put_object,
            Bucket=self.bucket,
            Key=key,
            Body=data,
            **self._encryption,
        )

    async def _get_range(self, path: str, key: str, start: int, end: int) -> bytes:
        """Bytes [start, end) of one object."""
        if end <= start:
            return b""
        return await self._get_bytes("read", path, key, f"bytes={start}-{end - 1}")

    async def _get_bytes(
        self, action: str, path: str, key: str, byte_range: str = ""
    ) -> bytes:
        """A small object (or range) read whole, in one trip to a thread."""

        request: dict[str, Any] = {"Bucket": self.bucket, "Key": key}
        if byte_range:
            request["Range"] = byte_range

        def get() -> bytes:
            return self._client.get_object(**request)["Body"].read()

        return await self._call(action, path, get)

    # -- the driver interface -----------------------------------------------

    async def stat(self, path: str) -> int | None:
        size = await self._stat_object(path)
        if size is not None:
            return size
        # Not an object: perhaps an upload in progress.
        pieces = await self._load_state(path)
        if pieces is None:
            return None
        return sum(piece.size for piece in pieces)

    async def read(
        self, path: str, offset: int = 0, length: int | None = None
    ) -> AsyncIterator[bytes]:
        if length == 0:
            return
        end = None if length is None else offset + length
        try:
            async for chunk in self._read_object(path, self._key(path), offset, end):
                yield chunk
            return
        except PathNotFound:
            pieces = await self._load_state(path)
            if pieces is None:
                raise
        # An upload in progress: its bytes are spread over the pieces.
        start = 0
        for piece in pieces:
            stop = start + piece.size
            low, high = max(offset, start), stop if end is None else min(end, stop)
            if low < high:
                chunks = self._read_object(path, piece.key, low - start, high - start)
                async for chunk in chunks:
                    yield chunk
            start = stop

    async def _read_object(
        self, path: str, key: str, offset: int, end: int | None
    ) -> AsyncIterator[bytes]:
        request: dict[str, Any] = {"Bucket": self.bucket, "Key": key}
        if offset or end is not None:
            request["Range"] = f"bytes={offset}-{'' if end is None else end - 1}"
        try:
            response = await self._call(
                "read", path, self._client.get_object, **request
            )
        except StorageError as exc:
            # A range that starts at or past the end reads as nothing, as a
            # file would; a missing object is still an error.
            cause = exc.__cause__
            if (
                isinstance(cause, ClientError)
                and cause.response.get("Error", {}).get("Code") == "InvalidRange"
            ):
                return
            raise
        body = response["Body"]
        try:
            while True:
                try:
                    chunk = await to_thread.run_sync(body.read, READ_CHUNK)
                except (BotoCoreError, OSError) as exc:
                    raise StorageError(f"failed to read {path}: {exc}") from exc
                if not chunk:
                    break
                yield chunk
        finally:
            body.close()

    async def redirect_url(self, path: str) -> str | None:
        if not self.redirect:
            return None
        try:
            return self._client.generate_presigned_url(
                "get_object",
                Params={"Bucket": self.bucket, "Key": self._key(path)},
                ExpiresIn=REDIRECT_EXPIRES,
            )
        except (ClientError, BotoCoreError) as exc:
            raise _translate("sign a URL for", path, exc) from exc

    @asynccontextmanager
    async def lock(self, path: str) -> AsyncIterator[None]:
        """Exclusive within this process only (see the module docstring)."""
        entry = self._locks.setdefault(path, _Lock())
        entry.users += 1
        try:
            try:
                with anyio.fail_after(LOCK_TIMEOUT):
                    await entry.lock.acquire()
            except TimeoutError as exc:
                raise LockTimeout(f"upload {path} is busy") from exc
            try:
                yield
            finally:
                entry.lock.release()
        finally:
            entry.users -= 1
            if entry.users == 0:
                del self._locks[path]

    async def open_writer(self, path: str, offset: int) -> UploadWriter:
        pieces = await self._load_state(path) or []
        size = sum(piece.size for piece in pieces)
        if offset > size:
            raise StorageError(
                f"cannot write {path} at {offset}: it holds only {size} bytes"
            )

        # Keep the full pieces wholly before the offset. From the first piece
        # that holds the offset, or is too small to be followed by more data
        # (the last one, usually), the bytes before the offset come back into
        # the writer's buffer, to be stored again with what follows.
        kept: list[_Piece] = []
        dropped: list[_Piece] = []
        buffer = bytearray()
        start = 0
        for piece in pieces:
            stop = start + piece.size
            if not dropped and stop <= offset and piece.size >= MIN_PART:
                kept.append(piece)
            else:
                if start < offset:
                    end = min(piece.size, offset - start)
                    buffer += await self._get_range(path, piece.key, 0, end)
                dropped.append(piece)
            start = stop
        return _S3Writer(self, path, kept, dropped, buffer)

    async def commit(
        self, upload: str, target: str, *, keep_source: bool = False
    ) -> None:
        """Assemble an upload's pieces at `target`, or move a stored object there.

        Moving a stored object (garbage collection moves blobs to and from a
        trash folder) is a server-side copy followed by a delete.
        """
        pieces = await self._load_state(upload)
        if pieces is None:
            size = await self._stat_object(upload)
            if size is None:
                raise PathNotFound(upload)
            sources = _ranges(self._key(upload), size)
        else:
            size = sum(piece.size for piece in pieces)
            sources = [_Source(piece.key, None) for piece in pieces]
        # Content-addressed: a complete copy already in place is the same bytes.
        if await self._stat_object(target) != size:
            await self._copy(upload, target, sources)
        if not keep_source:
            await self.delete(upload)

    async def _stat_object(self, path: str) -> int | None:
        try:
            head = await self._call(
                "stat",
                path,
                self._client.head_object,
                Bucket=self.bucket,
                Key=self._key(path),
            )
        except PathNotFound:
            return None
        return int(head["ContentLength"])

    async def _copy(self, upload: str, target: str, sources: list[_Source]) -> None:
        """Write the concatenated sources to `target`, server-side, atomically."""
        key = self._key(target)
        if not sources:
            await self._put(target, key, b"")
            return
        if len(sources) == 1 and sources[0].range is None:
            await self._call(
                "commit",
                upload,
                self._client.copy_object,
                Bucket=self.bucket,
                Key=key,
                CopySource={"Bucket": self.bucket, "Key": sources[0].key},
                **self._encryption,
            )
            return

        if len(sources) > MAX_PARTS:
            raise StorageError(
                f"cannot commit {upload}: {len(sources)} pieces, S3 takes {MAX_PARTS}"
            )
        created = await self._call(
            "commit",
            upload,
            self._client.create_multipart_upload,
            Bucket=self.bucket,
            Key=key,
            **self._encryption,
        )
        upload_id = created["UploadId"]
        try:
            parts = []
            for number, source in enumerate(sources, start=1):
                ranged = {"CopySourceRange": source.range} if source.range else {}
                copied = await self._call(
                    "commit",
                    upload,
                    self._client.upload_part_copy,
                    Bucket=self.bucket,
                    Key=key,
                    UploadId=upload_id,
                    PartNumber=number,
                    CopySource={"Bucket": self.bucket, "Key": source.key},
                    **ranged,
                )
                etag = copied["CopyPartResult"]["ETag"]
                parts.append({"PartNumber": number, "ETag": etag})
            await self._call(
                "commit",
                upload,
                self._client.complete_multipart_upload,
                Bucket=self.bucket,
                Key=key,
                UploadId=upload_id,
                MultipartUpload={"Parts": parts},
            )
        except StorageError:
            # The target never appeared; drop the parts S3 would keep (and bill).
            await self._abort(target, key, upload_id)
            raise

    async def _abort(self, path: str, key: str, upload_id: str) -> None:
        # Best effort: a bucket lifecycle rule for incomplete multipart uploads
        # is the backstop when this fails too.
        with contextlib.suppress(StorageError):
            await self._call(
                "abort",
                path,
                self._client.abort_multipart_upload,
                Bucket=self.bucket,
                Key=key,
                UploadId=upload_id,
            )

    async def delete(self, path: str) -> None:
        keys = [self._key(path)]
        async for key in self._keys(self._upload_dir(path), path):
            keys.append(key)
        await self._delete_keys(path, keys)

    async def _delete_keys(self, path: str, keys: list[str]) -> None:
        # DeleteObjects takes at most 1,000 keys; a missing key is not an error.
        for start in range(0, len(keys), 1000):
            batch = [{"Key": key} for key in keys[start : start + 1000]]
            response = await self._call(
                "delete",
                path,
                self._client.delete_objects,
                Bucket=self.bucket,
                Delete={"Objects": batch, "Quiet": True},
            )
            if response.get("Errors"):
                first = response["Errors"][0]
                raise StorageError(
                    f"failed to delete {first.get('Key')}: {first.get('Code')}"
                )

    async def _keys(self, key_prefix: str, path: str) -> AsyncIterator[str]:
        async for key, _modified in self._listing(key_prefix, path):
            yield key

    async def _listing(
        self, key_prefix: str, path: str
    ) -> AsyncIterator[tuple[str, float]]:
        """Every key under a prefix, in key order, with its modification time."""
        request: dict[str, Any] = {"Bucket": self.bucket, "Prefix": key_prefix}
        while True:
            page = await self._call(
                "list", path, self._client.list_objects_v2, **request
            )
            for item in page.get("Contents", []):
                yield item["Key"], item["LastModified"].timestamp()
            if not page.get("IsTruncated"):
                return
            request["ContinuationToken"] = page["NextContinuationToken"]

    async def scan(self, prefix: str) -> AsyncIterator[StoredEntry]:
        """Stored objects, and uploads in progress by their logical paths.

        An upload's objects share the key prefix `<path>.upload/`, so they list
        one after another; they make one entry, as new as the newest of them.
        S3 keeps whole seconds: an object may look up to a second older.
        """
        current: StoredEntry | None = None
        async for key, modified in self._listing(self.prefix + prefix, prefix):
            path = key[len(self.prefix) :]
            marker = path.rfind(UPLOAD_SUFFIX)
            if marker >= 0:
                path = path[:marker]
            if current is not None and current.path == path:
                current = StoredEntry(path, max(current.modified, modified))
                continue
            if current is not None:
                yield current
            current = StoredEntry(path, modified)
        if current is not None:
            yield current


class _S3Writer(UploadWriter):
    """Buffers up to a part, stores full parts as pieces, records on close."""

    def __init__(
        self,
        driver: S3Driver,
        path: str,
        kept: list[_Piece],
        dropped: list[_Piece],
        buffer: bytearray,
    ) -> None:
        self._driver = driver
        self._path = path
        self._pieces = kept
        self._dropped = dropped
        self._buffer = buffer
        self._closed = False
        self._touched = bool(dropped) or bool(buffer)

    async def write(self, data: bytes) -> None:
        if self._closed:
            raise StorageError(f"writer for {self._path} is closed")
        self._buffer += data
        self._touched = self._touched or bool(data)
        while len(self._buffer) >= self._driver.part_size:
            await self._store(bytes(self._buffer[: self._driver.part_size]))
            del self._buffer[: self._driver.part_size]

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        if not self._touched and self._pieces:
            return  # nothing changed: the stored state already says it all
        if self._buffer:
            await self._store(bytes(self._buffer))
            self._buffer.clear()
        await self._driver._save_state(self._path, self._pieces)
        if self._dropped:
            keys = [piece.key for piece in self._dropped]
            await self._driver._delete_keys(self._path, keys)

    async def _store(self, data: bytes) -> None:
        key = self._driver._upload_dir(self._path) + uuid.uuid4().hex
        await self._driver._put(self._path, key, data)
        self._pieces.append(_Piece(key, len(data)))


register("s3")(S3Driver)
