"""`dockyard fsck`: check that storage and metadata agree, and that blobs are intact.

Findings:
- missing: a blob row whose file is gone;
- size: a file whose size differs from its row;
- corrupt: a file whose content does not hash to its digest;
- unreferenced: a file under blobs/ with no row (harmless: left by a crash or by
  an interrupted collection; garbage collection removes it);
- dangling: a manifest that names a blob its repository no longer sees.

With `repair`, missing, short and corrupt blobs are forgotten (rows removed, a
damaged file moved aside to quarantine/) so that they can be pushed again, and
unreferenced files are deleted.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial

from dockyard.metadata import fsck_queries
from dockyard.metadata.executor import Executor
from dockyard.oci.digest import Digest
from dockyard.services.hashing import hash_stored
from dockyard.storage import StorageDriver
from dockyard.storage.paths import BLOBS, blob_path

logger = logging.getLogger(__name__)

QUARANTINE = "quarantine"
PROGRESS_SECONDS = 5.0


@dataclass
class Finding:
    kind: str
    digest: str
    detail: str = ""
    repaired: bool = False


@dataclass
class FsckReport:
    checked: int = 0
    checked_bytes: int = 0
    findings: list[Finding] = field(default_factory=list)

    @property
    def clean(self) -> bool:
        return not self.findings


Progress = Callable[[int, int], None]


class Fsck:
    def __init__(self, db: Executor, storage: StorageDriver) -> None:
        self.db = db
        self.storage = storage

    async def run(
        self,
        *,
        verify_content: bool = True,
        repair: bool = False,
        progress: Progress | None = None,
    ) -> FsckReport:
        report = FsckReport()
        rows = await self.db.read(lambda conn: list(fsck_queries.iter_blobs(conn)))
        last_progress = time.monotonic()
        for digest, size in rows:
            finding = await self._check_blob(digest, size, verify_content)
            report.checked += 1
            report.checked_bytes += size
            if finding is not None:
                if repair:
                    await self._repair(finding)
                report.findings.append(finding)
            if progress and time.monotonic() - last_progress > PROGRESS_SECONDS:
                progress(report.checked, len(rows))
                last_progress = time.monotonic()
        await self._unreferenced(report, repair)
        for repository, manifest, blob in await self.db.read(
            fsck_queries.dangling_references
        ):
            report.findings.append(
                Finding("dangling", blob, f"{repository}@{manifest} names it")
            )
        return report

    async def _check_blob(
        self, digest: str, size: int, verify_content: bool
    ) -> Finding | None:
        parsed = Digest.parse(digest)
        path = blob_path(parsed)
        stored = await self.storage.stat(path)
        if stored is None:
            return Finding("missing", digest, "no file in storage")
        if stored != size:
            return Finding("size", digest, f"file has {stored} bytes, row says {size}")
        if verify_content:
            actual = await hash_stored(self.storage, path, parsed.algorithm)
            if actual != parsed.hex:
                return Finding("corrupt", digest, f"content hashes to {actual}")
        return None

    async def _repair(self, finding: Finding) -> None:
        path = blob_path(Digest.parse(finding.digest))
        if finding.kind in ("size", "corrupt"):
            # Kept aside rather than deleted: an operator may want to look.
            await self.storage.commit(path, f"{QUARANTINE}/{finding.digest}")
        await self.db.write(partial(fsck_queries.forget_blob, digest=finding.digest))
        users = await self.db.read(
            partial(fsck_queries.manifests_using, digest=finding.digest)
        )
        if users:
            finding.detail += f"; manifests to push again: {len(users)}"
        finding.repaired = True
        logger.warning(
            "blob forgotten by fsck",
            extra={"digest": finding.digest, "kind": finding.kind},
        )

    async def _unreferenced(self, report: FsckReport, repair: bool) -> None:
        paths = [path async for path in self.storage.list(BLOBS)]
        by_digest = {_digest_of(path): path for path in paths}
        known: set[str] = set()
        names = [d for d in by_digest if d]
        for start in range(0, len(names), fsck_queries.PAGE):
            batch = names[start : start + fsck_queries.PAGE]
            known |= await self.db.read(
                partial(fsck_queries.known_blobs, digests=batch)
            )
        for digest, path in by_digest.items():
            if digest is None or digest in known:
                continue
            finding = Finding("unreferenced", digest, path)
            if repair:
                await self.storage.delete(path)
                finding.repaired = True
            report.findings.append(finding)


def _digest_of(path: str) -> str | None:
    """`blobs/sha256/ab/abcd...` is `sha256:abcd...`."""
    parts = path.split("/")
    if len(parts) != 4 or parts[0] != BLOBS:
        return None
    return f"{parts[1]}:{parts[3]}"
