"""Blob files for the transfer workloads."""

from __future__ import annotations

import hashlib
import os
import struct
from dataclasses import dataclass
from pathlib import Path

MIB = 1024 * 1024
CHUNK = 4 * MIB


@dataclass(frozen=True)
class BlobFile:
    """A blob written to disk, with its digest."""

    path: Path
    size: int
    digest: str


def make_blob_file(path: Path, size: int, tag: int) -> BlobFile:
    """Write ``size`` incompressible bytes to ``path``, unique for ``tag``.

    os.urandom runs at about 150 MiB/s here, so one random 4 MiB pool is reused
    and every chunk starts with its own header: no two chunks and no two tags
    produce the same bytes, and none of it compresses.
    """
    pool = os.urandom(CHUNK)
    sha = hashlib.sha256()
    written = 0
    with path.open("wb") as out:
        for index in range((size + CHUNK - 1) // CHUNK):
            header = struct.pack("<QQ", tag, index)
            chunk = (header + pool[len(header) :])[: size - written]
            out.write(chunk)
            sha.update(chunk)
            written += len(chunk)
    return BlobFile(path=path, size=size, digest="sha256:" + sha.hexdigest())


def blob_digest(data: bytes) -> str:
    """The OCI digest of ``data``."""
    return "sha256:" + hashlib.sha256(data).hexdigest()
