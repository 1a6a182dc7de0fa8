"""Online garbage collection: unreachable manifests, unused links, orphan blobs.

The collector runs beside a serving registry, in three phases:

1. per repository, delete untagged manifests that nothing reaches any more;
2. per repository, remove blob links that no remaining manifest references;
3. delete blobs that no repository links: the row, then the file.

Each deletion is its own short write transaction that re-checks its condition
(`metadata.gc_queries`), so pushes and pulls go on and a push racing the
collector either commits with all its blobs or fails with MANIFEST_BLOB_UNKNOWN.

A blob's file goes in three steps, so that a concurrent upload of the same
content never ends with a row and no file: delete the row (only if still
unlinked), move the file to `trash/<digest>`, then look at the row again. If an
upload brought the row back meanwhile, the file is put back (unless the upload
already placed a new copy); otherwise the trash copy is deleted. A run that
stops half-way leaves files in trash/, and the next run settles them the same
way before it starts.
"""

from __future__ import annotations

import logging
import time
from collections import defaultdict, deque
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from typing import Literal

from dockyard.metadata import gc_queries
from dockyard.metadata.executor import Executor
from dockyard.metadata.gc_queries import ManifestNode, RepositoryGraph
from dockyard.oci.digest import Digest
from dockyard.oci.errcodes import RegistryError
from dockyard.storage import StorageDriver
from dockyard.storage.base import StorageError
from dockyard.storage.paths import TRASH, blob_path, trash_path

logger = logging.getLogger(__name__)

# A blob uploaded for a manifest that is not pushed yet must survive; so must a
# child manifest pushed by digest before its index.
DEFAULT_GRACE = 3600.0
DEFAULT_KEEP_UNTAGGED = 3600.0
# Progress is reported every so many items, or so many seconds, whichever first.
PROGRESS_ITEMS = 1000
PROGRESS_SECONDS = 5.0

# `lock` adds ".lock": one collector at a time per storage.
COLLECTOR_LOCK = f"{TRASH}/collector"


@dataclass(frozen=True, slots=True)
class GcOptions:
    dry_run: bool = False
    # Links and blob rows younger than this stay.
    grace: float = DEFAULT_GRACE
    # Unreachable manifests younger than this stay.
    keep_untagged: float = DEFAULT_KEEP_UNTAGGED


Kind = Literal["manifest", "link", "blob"]


@dataclass(frozen=True, slots=True)
class Removal:
    """One thing collected (or that a dry run would collect)."""

    kind: Kind
    repository: str | None
    digest: str
    size: int


@dataclass(slots=True)
class GcReport:
    dry_run: bool
    manifests: int = 0
    manifest_bytes: int = 0
    links: int = 0
    blobs: int = 0
    blob_bytes: int = 0
    # Planned deletions whose condition no longer held (a push got there first).
    skipped: int = 0
    # Files put back because an upload brought their blob back meanwhile.
    restored: int = 0
    errors: int = 0

    def add(self, removal: Removal) -> None:
        if removal.kind == "manifest":
            self.manifests += 1
            self.manifest_bytes += removal.size
        elif removal.kind == "link":
            self.links += 1
        else:
            self.blobs += 1
            self.blob_bytes += removal.size


@dataclass(slots=True)
class RepositoryPlan:
    repository_id: int
    name: str
    # In an order where parents and subjects go before children and referrers.
    manifests: list[ManifestNode] = field(default_factory=list)
    links: list[str] = field(default_factory=list)


# -- planning (pure) ------------------------------------------------------------


def reachable_manifests(graph: RepositoryGraph) -> set[str]:
    """Tagged manifests, their children, and referrers of anything reachable."""
    referrers: dict[str, list[str]] = defaultdict(list)
    for node in graph.manifests.values():
        if node.subject is not None:
            referrers[node.subject].append(node.digest)

    reachable = {d for d in graph.tagged if d in graph.manifests}
    pending = deque(reachable)
    while pending:
        digest = pending.popleft()
        for other in (*graph.children.get(digest, ()), *referrers.get(digest, ())):
            if other in graph.manifests and other not in reachable:
                reachable.add(other)
                pending.append(other)
    return reachable


def plan_repository(
    graph: RepositoryGraph, manifest_cutoff: float, link_cutoff: float
) -> RepositoryPlan:
    """What to delete in one repository, in the order to delete it."""
    plan = RepositoryPlan(graph.repository_id, graph.name)
    plan.manifests = _deletable_manifests(graph, manifest_cutoff)

    gone = {node.digest for node in plan.manifests}
    used: set[str] = set()
    for manifest, targets in graph.references.items():
        if manifest not in gone:
            used.update(targets)
    plan.links = sorted(
        digest
        for digest, created_at in graph.links.items()
        if digest not in used and created_at < link_cutoff
    )
    return plan


def _deletable_manifests(
    graph: RepositoryGraph, manifest_cutoff: float
) -> list[ManifestNode]:
    # A manifest can go once everything that could reach it (its parents and
    # its subject) has gone: the deletion's own re-check tests exactly that.
    # Kahn's algorithm over the unreachable manifests gives that order; one kept
    # (too young) keeps everything below it.
    reachable = reachable_manifests(graph)
    unreachable = set(graph.manifests) - reachable
    above: dict[str, set[str]] = {digest: set() for digest in unreachable}
    for parent, children in graph.children.items():
        for child in children & unreachable:
            if parent in graph.manifests:
                above[child].add(parent)
    for digest in unreachable:
        subject = graph.manifests[digest].subject
        if subject is not None and subject in graph.manifests:
            above[digest].add(subject)

    below: dict[str, list[str]] = defaultdict(list)
    for digest, predecessors in above.items():
        for predecessor in predecessors:
            below[predecessor].append(digest)
    waiting = {digest: len(predecessors) for digest, predecessors in above.items()}
    ready = deque(sorted(d for d, count in waiting.items() if count == 0))
    order: list[ManifestNode] = []
    while ready:
        node = graph.manifests[ready.popleft()]
        if node.created_at >= manifest_cutoff:
            continue
        order.append(node)
        for successor in below.get(node.digest, ()):
            waiting[successor] -= 1
            if waiting[successor] == 0:
                ready.append(successor)
    return order


# -- the collector ------------------------------------------------------------


class Progress:
    """Calls `report(phase, done, total)` every so many items or seconds."""

    def __init__(
        self, report: Callable[[str, int, int], None] | None, phase: str, total: int
    ) -> None:
        self._report = report
        self.phase = phase
        self.total = total
        self.done = 0
        self._last = time.monotonic()

    def step(self) -> None:
        self.done += 1
        now = time.monotonic()
        if self.done % PROGRESS_ITEMS == 0 or now - self._last >= PROGRESS_SECONDS:
            self._emit(now)

    def finish(self) -> None:
        self._emit(time.monotonic())

    def _emit(self, now: float) -> None:
        self._last = now
        logger.info(
            "gc progress",
            extra={"phase": self.phase, "done": self.done, "total": self.total},
        )
        if self._report is not None:
            self._report(self.phase, self.done, self.total)


class GarbageCollector:
    """Collects a registry's garbage while it serves; see the module docstring."""

    def __init__(
        self,
        executor: Executor,
        storage: StorageDriver,
        options: GcOptions,
        on_removal: Callable[[Removal], None] | None = None,
        on_progress: Callable[[str, int, int], None] | None = None,
    ) -> None:
        self.executor = executor
        self.storage = storage
        self.options = options
        self._on_removal = on_removal
        self._on_progress = on_progress
        self.report = GcReport(options.dry_run)

    async def run(self) -> GcReport:
        started = time.monotonic()
        if self.options.dry_run:
            await self._plan_only()
        else:
            # Two collectors would settle each other's trash too early.
            async with self.storage.lock(COLLECTOR_LOCK):
                await self._collect()
        logger.info(
            "gc finished",
            extra={
                "dry_run": self.options.dry_run,
                "manifests": self.report.manifests,
                "links": self.report.links,
                "blobs": self.report.blobs,
                "freed_bytes": self.report.blob_bytes,
                "skipped": self.report.skipped,
                "restored": self.report.restored,
                "errors": self.report.errors,
                "seconds": round(time.monotonic() - started, 3),
            },
        )
        return self.report

    def _cutoffs(self) -> tuple[float, float]:
        now = time.time()
        return now - self.options.keep_untagged, now - self.options.grace

    def _removed(self, removal: Removal) -> None:
        self.report.add(removal)
        if self._on_removal is not None:
            self._on_removal(removal)

    async def _plans(self) -> list[RepositoryPlan]:
        manifest_cutoff, link_cutoff = self._cutoffs()
        repositories = await self.executor.read(gc_queries.repository_list)
        progress = Progress(self._on_progress, "plan", len(repositories))
        plans = []
        for repository_id, name in repositories:
            graph = await self.executor.read(
                partial(
                    gc_queries.load_repository, repository_id=repository_id, name=name
                )
            )
            plan = plan_repository(graph, manifest_cutoff, link_cutoff)
            if plan.manifests or plan.links:
                plans.append(plan)
            progress.step()
        progress.finish()
        return plans

    async def _plan_only(self) -> None:
        plans = await self._plans()
        unlinked: dict[str, set[int]] = defaultdict(set)
        for plan in plans:
            for node in plan.manifests:
                self._removed(Removal("manifest", plan.name, node.digest, node.size))
            for digest in plan.links:
                unlinked[digest].add(plan.repository_id)
                self._removed(Removal("link", plan.name, digest, 0))

        _, cutoff = self._cutoffs()
        candidates = await self.executor.read(
            partial(gc_queries.blob_links, cutoff=cutoff)
        )
        for digest, (size, linked_by) in sorted(candidates.items()):
            if not linked_by - unlinked.get(digest, set()):
                self._removed(Removal("blob", None, digest, size))

    async def _collect(self) -> None:
        await self._settle_trash()
        plans = await self._plans()
        manifest_cutoff, link_cutoff = self._cutoffs()

        total = sum(len(plan.manifests) + len(plan.links) for plan in plans)
        progress = Progress(self._on_progress, "repositories", total)
        for plan in plans:
            await self._collect_repository(plan, manifest_cutoff, link_cutoff, progress)
        progress.finish()

        orphans = await self.executor.read(
            partial(gc_queries.orphan_blobs, cutoff=link_cutoff)
        )
        progress = Progress(self._on_progress, "blobs", len(orphans))
        for blob in orphans:
            await self._collect_blob(blob, link_cutoff)
            progress.step()
        progress.finish()

    async def _collect_repository(
        self,
        plan: RepositoryPlan,
        manifest_cutoff: float,
        link_cutoff: float,
        progress: Progress,
    ) -> None:
        for node in plan.manifests:
            deleted = await self.executor.write(
                partial(
                    gc_queries.delete_unreachable_manifest,
                    repository_id=plan.repository_id,
                    digest=node.digest,
                    cutoff=manifest_cutoff,
                )
            )
            if deleted:
                self._removed(Removal("manifest", plan.name, node.digest, node.size))
            else:
                self.report.skipped += 1
            progress.step()

        for digest in plan.links:
            unlinked = await self.executor.write(
                partial(
                    gc_queries.unlink_unreferenced_blob,
                    repository_id=plan.repository_id,
                    digest=digest,
                    cutoff=link_cutoff,
                )
            )
            if unlinked:
                self._removed(Removal("link", plan.name, digest, 0))
            else:
                self.report.skipped += 1
            progress.step()

    async def _collect_blob(self, blob: gc_queries.BlobRow, cutoff: float) -> None:
        deleted = await self.executor.write(
            partial(gc_queries.delete_orphan_blob, digest=blob.digest, cutoff=cutoff)
        )
        if not deleted:
            self.report.skipped += 1
            return
        self._removed(Removal("blob", None, blob.digest, blob.size))
        try:
            await self._remove_file(blob.digest)
        except (StorageError, RegistryError):
            # The row is gone; the next run settles whatever is left in trash/.
            self.report.errors += 1
            logger.exception(
                "failed to remove blob file", extra={"digest": blob.digest}
            )

    async def _remove_file(self, digest: str) -> None:
        target = blob_path(Digest.parse(digest))
        trash = trash_path(digest)
        if await self.storage.stat(target) is not None:
            # commit: a rename, or dropping the source if trash already has it.
            await self.storage.commit(target, trash)
        await self._settle(digest, trash)

    async def _settle(self, digest: str, trash: str) -> None:
        """Restore a trashed file if its blob came back, else delete it."""
        if await self.storage.stat(trash) is None:
            return
        if await self.executor.read(partial(gc_queries.blob_exists, digest=digest)):
            # commit keeps an existing target: the upload placed a new copy.
            await self.storage.commit(trash, blob_path(Digest.parse(digest)))
            self.report.restored += 1
            logger.info("blob file restored", extra={"digest": digest})
        else:
            await self.storage.delete(trash)

    async def _settle_trash(self) -> None:
        """Finish what an interrupted run left in trash/."""
        async for path in self.storage.list(TRASH):
            digest = path.rsplit("/", 1)[-1]
            if digest.endswith(".lock"):
                continue
            try:
                Digest.parse(digest)
            except RegistryError:
                continue
            await self._settle(digest, path)
