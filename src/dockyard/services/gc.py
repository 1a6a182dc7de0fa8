"""Online garbage collection: unreachable manifests, unused links, orphan blobs.

The collector runs beside a serving registry, in three phases:

1. delete untagged manifests that nothing reaches any more;
2. remove blob links that no remaining manifest of their repository references;
3. delete blobs that no repository links: the rows, then the files.

It plans from reads, then deletes in batches: each write transaction takes up
to `GcOptions.batch_size` items and re-checks every item's condition in the
statements that delete (`metadata.gc_queries`), so a push racing the collector
either commits with all its blobs or fails with MANIFEST_BLOB_UNKNOWN. The
transactions are kept short (the batch shrinks when one runs long) and, on
SQLite, each is followed by a pause as long as the lock was held, so that
pushes waiting for the single writer's lock get their turn.

A blob's file goes in three steps, so that a concurrent upload of the same
content never ends with a row and no file: delete the row (only if still
unlinked), move the file to `trash/<digest>`, then look at the row again. If an
upload brought the row back meanwhile, the file is put back (unless the upload
already placed a new copy); otherwise the trash copy is deleted. A batch's
files are moved concurrently, then its rows are read once, then its files are
settled concurrently. A run that stops half-way leaves files in trash/, and the
next run settles them the same way before it starts.
"""

from __future__ import annotations

import logging
import time
from collections import defaultdict, deque
from collections.abc import (
    Awaitable,
    Callable,
    Collection,
    Iterable,
    Mapping,
    Sequence,
)
from dataclasses import dataclass, field
from functools import partial
from itertools import groupby
from operator import attrgetter
from typing import Literal, Protocol, TypeVar

import anyio
import sqlalchemy as sa

from dockyard.metadata import gc_queries, retention
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
# Items deleted per write transaction, at most.
DEFAULT_BATCH_SIZE = 256
# A phase starts with batches this small and doubles them while they are quick.
FIRST_BATCH_SIZE = 16
# How long one write transaction should hold the database: on SQLite every push
# waits for it. A batch that takes longer halves the next one.
TRANSACTION_TARGET = 0.05
# Storage operations (moves to trash, restores, deletes) in flight at once.
STORAGE_CONCURRENCY = 16

# `lock` adds ".lock": one collector at a time per storage.
COLLECTOR_LOCK = f"{TRASH}/collector"


@dataclass(frozen=True, slots=True)
class GcOptions:
    dry_run: bool = False
    # Links and blob rows younger than this stay.
    grace: float = DEFAULT_GRACE
    # Unreachable manifests younger than this stay.
    keep_untagged: float = DEFAULT_KEEP_UNTAGGED
    # Items per write transaction, at most.
    batch_size: int = DEFAULT_BATCH_SIZE


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

T = TypeVar("T")


class Deleter(Protocol):
    """Deletes what it can of a batch, in one transaction; returns what went."""

    def __call__(self, conn: sa.Connection, batch: list[Removal]) -> list[Removal]: ...


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

    def step(self, count: int = 1) -> None:
        before, self.done = self.done, self.done + count
        now = time.monotonic()
        crossed = self.done // PROGRESS_ITEMS != before // PROGRESS_ITEMS
        if crossed or now - self._last >= PROGRESS_SECONDS:
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


class BatchSize:
    """How many items the next write transaction takes.

    It starts at FIRST_BATCH_SIZE and doubles up to the limit while a batch's
    statements take under half of TRANSACTION_TARGET; statements that take
    longer than the target (a large table to check, a busy database) halve it,
    so a slow statement costs waiting pushes about the target, not seconds.
    """

    def __init__(self, limit: int) -> None:
        self.limit = max(1, limit)
        self.size = min(self.limit, FIRST_BATCH_SIZE)

    def record(self, seconds: float) -> None:
        if seconds > TRANSACTION_TARGET:
            self.size = max(1, self.size // 2)
        elif seconds < TRANSACTION_TARGET / 2:
            self.size = min(self.limit, self.size * 2)


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
        rules = await self.executor.read(retention.list_rules)
        progress = Progress(self._on_progress, "plan", len(repositories))
        plans = []
        for repository_id, name in repositories:
            graph = await self.executor.read(
                partial(_load, repository_id=repository_id, name=name, rules=rules)
            )
            plan = plan_repository(graph, manifest_cutoff, link_cutoff)
            if plan.manifests or plan.links:
                plans.append(plan)
            progress.step()
        progress.finish()
        return plans

    async def _plan_only(self) -> None:
        plans = await self._plans()
        for removal in [*_manifest_removals(plans), *_link_removals(plans)]:
            self._removed(removal)

        unlinked: dict[str, set[int]] = defaultdict(set)
        for plan in plans:
            for digest in plan.links:
                unlinked[digest].add(plan.repository_id)

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
        ids = {plan.name: plan.repository_id for plan in plans}

        # Every manifest first: a link stays while a manifest still uses it.
        await self._delete(
            "manifests",
            _manifest_removals(plans),
            _per_repository(
                gc_queries.delete_unreachable_manifests, ids, manifest_cutoff
            ),
        )
        await self._delete(
            "links",
            _link_removals(plans),
            _per_repository(gc_queries.unlink_unreferenced_blobs, ids, link_cutoff),
        )

        orphans = await self.executor.read(
            partial(gc_queries.orphan_blobs, cutoff=link_cutoff)
        )
        await self._delete(
            "blobs",
            [Removal("blob", None, blob.digest, blob.size) for blob in orphans],
            partial(_orphan_blobs, cutoff=link_cutoff),
            then=self._remove_files,
        )

    async def _delete(
        self,
        phase: str,
        items: list[Removal],
        delete: Deleter,
        then: Callable[[list[Removal]], Awaitable[None]] | None = None,
    ) -> None:
        """Delete `items` in order, a batch per write transaction.

        `then` gets what each batch deleted (blob rows whose files must go) and
        runs while the next batch's transaction does, one batch at a time.
        """
        progress = Progress(self._on_progress, phase, len(items))
        size = BatchSize(self.options.batch_size)
        position = 0
        previous = anyio.Event()
        previous.set()
        async with anyio.create_task_group() as group:
            while position < len(items):
                batch = items[position : position + size.size]
                position += len(batch)
                gone = await self._write(partial(delete, batch=batch), size)

                deleted = set(gone)
                for removal in batch:
                    if removal in deleted:
                        self._removed(removal)
                    else:
                        self.report.skipped += 1
                await previous.wait()
                previous = anyio.Event()
                step = partial(progress.step, len(batch))
                group.start_soon(_follow_up, then, gone, step, previous)
        progress.finish()

    async def _write(self, change: Callable[[sa.Connection], T], size: BatchSize) -> T:
        spans: list[float] = []

        def timed(conn: sa.Connection) -> T:
            # The lock is held from here (after BEGIN) until the commit is done.
            spans.append(time.monotonic())
            try:
                return change(conn)
            finally:
                spans.append(time.monotonic())

        result = await self.executor.write(timed)
        began, statements = spans
        # The statements' time grows with the batch; the commit's does not.
        size.record(statements - began)
        if self.executor.dialect == "sqlite":
            # One writer at a time, and waiting writers poll for the lock: leave
            # it free at least as long as this batch held it.
            await anyio.sleep(time.monotonic() - began)
        return result

    async def _remove_files(self, removed: list[Removal]) -> None:
        """Move the files of deleted blob rows to trash, then settle them."""
        moved: list[str] = []

        async def move(digest: str) -> None:
            target = blob_path(Digest.parse(digest))
            if await self.storage.stat(target) is not None:
                # commit: a rename, or dropping the source if trash has it.
                await self.storage.commit(target, trash_path(digest))
                moved.append(digest)

        # A file that fails to move is counted; its row is gone, and the next
        # run settles whatever reached trash/.
        await self._each(move, [removal.digest for removal in removed])
        await self._settle(moved)

    async def _settle(self, digests: list[str]) -> None:
        """Restore the trashed files whose blob came back, delete the others.

        Every digest's file is in trash/ when this starts, and the rows are
        read only then: an upload that re-created a row before the read finds
        its file restored, one after it placed its own copy (see
        `services.uploads`).
        """
        if not digests:
            return
        back = await self.executor.read(
            partial(gc_queries.existing_blobs, digests=digests)
        )

        async def settle(digest: str) -> None:
            trash = trash_path(digest)
            if digest in back:
                # commit keeps an existing target: the upload placed a new copy.
                await self.storage.commit(trash, blob_path(Digest.parse(digest)))
                self.report.restored += 1
                logger.info("blob file restored", extra={"digest": digest})
            else:
                await self.storage.delete(trash)

        await self._each(settle, digests)

    async def _settle_trash(self) -> None:
        """Finish what an interrupted run left in trash/."""
        pending: list[str] = []
        async for path in self.storage.list(TRASH):
            digest = path.rsplit("/", 1)[-1]
            if digest.endswith(".lock"):
                continue
            try:
                Digest.parse(digest)
            except RegistryError:
                continue
            pending.append(digest)
            if len(pending) >= self.options.batch_size:
                await self._settle(pending)
                pending = []
        await self._settle(pending)

    async def _each(
        self, action: Callable[[str], Awaitable[None]], digests: Iterable[str]
    ) -> None:
        """Run `action` on every digest, STORAGE_CONCURRENCY at a time.

        A storage failure is logged and counted, and the others go on.
        """
        limiter = anyio.CapacityLimiter(STORAGE_CONCURRENCY)

        async def guarded(digest: str) -> None:
            async with limiter:
                try:
                    await action(digest)
                except (StorageError, RegistryError):
                    self.report.errors += 1
                    logger.exception(
                        "failed to remove blob file", extra={"digest": digest}
                    )

        async with anyio.create_task_group() as group:
            for digest in digests:
                group.start_soon(guarded, digest)


async def _follow_up(
    then: Callable[[list[Removal]], Awaitable[None]] | None,
    gone: list[Removal],
    step: Callable[[], None],
    finished: anyio.Event,
) -> None:
    try:
        if then is not None and gone:
            await then(gone)
        step()
    finally:
        finished.set()


def _manifest_removals(plans: list[RepositoryPlan]) -> list[Removal]:
    return [
        Removal("manifest", plan.name, node.digest, node.size)
        for plan in plans
        for node in plan.manifests
    ]


def _link_removals(plans: list[RepositoryPlan]) -> list[Removal]:
    return [
        Removal("link", plan.name, digest, 0) for plan in plans for digest in plan.links
    ]


def _per_repository(
    delete: Callable[[sa.Connection, int, list[str], float], list[str]],
    ids: Mapping[str, int],
    cutoff: float,
) -> Deleter:
    """A batch deletion that runs `delete` on each repository's share."""

    def run(conn: sa.Connection, batch: list[Removal]) -> list[Removal]:
        gone: list[Removal] = []
        for name, group in groupby(batch, key=attrgetter("repository")):
            items = list(group)
            digests = [removal.digest for removal in items]
            gone += _those(items, delete(conn, ids[name], digests, cutoff))
        return gone

    return run


def _orphan_blobs(
    conn: sa.Connection, batch: list[Removal], cutoff: float
) -> list[Removal]:
    digests = [removal.digest for removal in batch]
    return _those(batch, gc_queries.delete_orphan_blobs(conn, digests, cutoff))


def _those(items: list[Removal], digests: Collection[str]) -> list[Removal]:
    """The items whose digest is among `digests`, in their order."""
    wanted = set(digests)
    return [removal for removal in items if removal.digest in wanted]


def _load(
    conn: sa.Connection,
    repository_id: int,
    name: str,
    rules: Sequence[retention.RetentionRule],
) -> RepositoryGraph:
    """A repository's graph, with what retention rules keep counted as roots."""
    graph = gc_queries.load_repository(conn, repository_id, name)
    if rules:
        graph.tagged |= retention.collector_exempt(conn, graph, rules, time.time())
    return graph
