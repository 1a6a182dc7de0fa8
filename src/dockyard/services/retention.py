"""Retention: delete the tags no rule keeps and the untagged manifests past an age.

A run goes repository by repository through those that a namespace's rules
cover. It plans from one read of the repository (pure, below), then deletes in
short write transactions that re-check each deletion. It deletes tags and
manifests only: the garbage collector frees the blobs afterwards.

What is kept:

- a tag that any matching rule keeps (one of the `keep_newest` newest by push
  time, a name matching `keep_tags`, a manifest pulled within
  `keep_pulled_days`), and every tag an immutable-tag rule covers;
- an untagged manifest pushed less than `untagged_days` ago (the longest of the
  matching rules), one pulled by digest while a `keep_pinned` rule applies, and
  everything a kept manifest reaches, as the collector sees reachability: the
  children of an index, the referrers of a subject.
"""

from __future__ import annotations

import dataclasses
import fnmatch
import logging
import time
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import partial
from typing import Literal

from dockyard.metadata import retention, tag_rules
from dockyard.metadata.executor import Executor
from dockyard.metadata.retention import (
    DAY,
    PullRow,
    RepositoryState,
    RetentionRule,
    TagRow,
)
from dockyard.metadata.tag_rules import TagRule
from dockyard.services.gc import plan_repository as plan_collection
from dockyard.services.gc import reachable_manifests

logger = logging.getLogger(__name__)

# Deletions per write transaction: short enough not to hold pushes up.
BATCH = 100
PROGRESS_REPOSITORIES = 100
PROGRESS_SECONDS = 5.0
# A cutoff nothing is older than: no blob link in the collector's plans, which
# retention only wants the manifests of, and no manifest where no rule says.
_NEVER = float("-inf")


@dataclass(frozen=True, slots=True)
class Decision:
    """What a run does with one tag or untagged manifest, and why."""

    kind: Literal["tag", "manifest"]
    repository: str
    # The tag's name, or the manifest's digest.
    reference: str
    digest: str
    delete: bool
    reason: str

    def target(self) -> str:
        separator = ":" if self.kind == "tag" else "@"
        return f"{self.repository}{separator}{self.reference}"


@dataclass(slots=True)
class RepositoryPlan:
    repository_id: int
    name: str
    decisions: list[Decision] = field(default_factory=list)
    tags: list[TagRow] = field(default_factory=list)
    # Parents and subjects before their children and referrers.
    manifests: list[str] = field(default_factory=list)
    # Only manifests pushed before this may go.
    cutoff: float = _NEVER


# -- planning (pure) ---------------------------------------------------------------


def plan_repository(
    state: RepositoryState,
    rules: Sequence[RetentionRule],
    immutable: Sequence[TagRule],
    now: float,
) -> RepositoryPlan:
    """What retention deletes in one repository, and why it keeps the rest."""
    graph = state.graph
    plan = RepositoryPlan(graph.repository_id, graph.name)
    _plan_tags(plan, state, rules, immutable, now)

    doomed = {tag.name for tag in plan.tags}
    surviving = {tag.digest for tag in state.tags if tag.name not in doomed}
    untagged = sorted(set(graph.manifests) - surviving)
    ages = [r.untagged_days for r in rules if r.untagged_days is not None]
    if not ages:
        # The collector decides about these; say so for those this run untags.
        for digest in untagged:
            if digest in graph.tagged:
                plan.decisions.append(
                    _manifest(plan, digest, False, "untagged now; no rule deletes it")
                )
        return plan

    days = max(ages)
    plan.cutoff = now - days * DAY
    pinned = {
        digest: pull.pinned_at
        for digest, pull in state.pulls.items()
        if pull.pinned_at is not None
        and digest in graph.manifests
        and _pin_protected(pull, rules, now)
    }
    view = dataclasses.replace(graph, tagged=surviving | set(pinned))
    reachable = reachable_manifests(view)
    plan.manifests = [
        node.digest for node in plan_collection(view, plan.cutoff, _NEVER).manifests
    ]

    going = set(plan.manifests)
    for digest in untagged:
        if digest in going:
            was = "its tags go in this run; " if digest in graph.tagged else ""
            reason = f"{was}untagged and pushed more than {days} days ago"
        elif digest in pinned:
            reason = f"pulled by digest {_ago(now, pinned[digest])} ago"
        elif digest in reachable:
            reason = "reached from a kept manifest (a child or a referrer)"
        elif graph.manifests[digest].created_at >= plan.cutoff:
            reason = f"pushed less than {days} days ago"
        else:
            reason = "reached from a younger untagged manifest"
        plan.decisions.append(_manifest(plan, digest, digest in going, reason))
    return plan


def _plan_tags(
    plan: RepositoryPlan,
    state: RepositoryState,
    rules: Sequence[RetentionRule],
    immutable: Sequence[TagRule],
    now: float,
) -> None:
    managing = [rule for rule in rules if rule.manages_tags]
    newest_first = sorted(
        state.tags, key=lambda tag: (tag.updated_at, tag.name), reverse=True
    )
    for rank, tag in enumerate(newest_first):
        pull = state.pulls.get(tag.digest)
        keeper = _tag_keeper(plan.name, tag, rank, pull, managing, immutable, now)
        if keeper is None:
            plan.tags.append(tag)
            rules_text = "; ".join(rule.describe() for rule in managing)
            reason = f"no rule keeps it ({rules_text})"
        else:
            reason = keeper
        plan.decisions.append(
            Decision("tag", plan.name, tag.name, tag.digest, keeper is None, reason)
        )


def _tag_keeper(
    repository: str,
    tag: TagRow,
    rank: int,
    pull: PullRow | None,
    rules: Sequence[RetentionRule],
    immutable: Sequence[TagRule],
    now: float,
) -> str | None:
    """Why a tag stays (the first reason found), or None when it goes."""
    for protection in immutable:
        if protection.covers(repository, tag.name):
            return f"immutable ({protection.describe()})"
    if not rules:
        return "no rule manages the tags here"
    for rule in rules:
        if rule.keep_newest is not None and rank < rule.keep_newest:
            return f"one of the {rule.keep_newest} newest"
        for pattern in rule.keep_tags:
            if fnmatch.fnmatchcase(tag.name, pattern):
                return f"matches {pattern}"
        if (
            rule.keep_pulled_days is not None
            and pull is not None
            and pull.pulled_at >= now - rule.keep_pulled_days * DAY
        ):
            return f"pulled {_ago(now, pull.pulled_at)} ago"
    return None


def _pin_protected(pull: PullRow, rules: Sequence[RetentionRule], now: float) -> bool:
    """Pulled by digest while a `keep_pinned` rule applies (inside its window)."""
    assert pull.pinned_at is not None
    pinned_at = pull.pinned_at
    return any(rule.keeps_pin(pinned_at, now) for rule in rules)


def _manifest(plan: RepositoryPlan, digest: str, delete: bool, reason: str) -> Decision:
    return Decision("manifest", plan.name, digest, digest, delete, reason)


def _ago(now: float, then: float) -> str:
    seconds = max(0.0, now - then)
    if seconds >= DAY:
        return f"{seconds / DAY:.1f} days"
    if seconds >= 3600:
        return f"{seconds / 3600:.1f} hours"
    return f"{seconds / 60:.0f} minutes"


# -- the run -----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class RunOptions:
    dry_run: bool = False
    # Only this namespace's rules; every namespace when None.
    namespace: str | None = None
    # The moment ages and pull windows are measured from (now when None).
    now: float | None = None


@dataclass(slots=True)
class RetentionReport:
    dry_run: bool
    repositories: int = 0
    tags: int = 0
    # Untagged manifests (after the run's tag deletions) that were weighed.
    manifests: int = 0
    tags_deleted: int = 0
    manifests_deleted: int = 0
    # Planned deletions whose condition no longer held (a push got there first).
    skipped: int = 0


@dataclass(frozen=True, slots=True)
class _Target:
    repository_id: int
    name: str
    rules: list[RetentionRule]
    immutable: list[TagRule]


class RetentionService:
    """Runs retention on demand, and on a schedule from the background upkeep."""

    def __init__(self, executor: Executor, interval: float = 0.0) -> None:
        self.db = executor
        self.interval = interval
        # Wall-clock time of the last scheduled run in this process.
        self._ran_at = time.time()

    async def run_if_due(self) -> RetentionReport | None:
        if not self.interval or time.time() - self._ran_at < self.interval:
            return None
        self._ran_at = time.time()
        logger.info("retention started")
        return await self.run(RunOptions())

    async def run(
        self,
        options: RunOptions,
        on_decision: Callable[[Decision], None] | None = None,
        on_progress: Callable[[int, int], None] | None = None,
    ) -> RetentionReport:
        """Apply the rules (or plan only); `on_progress(done, total)` now and then."""
        started = time.monotonic()
        now = time.time() if options.now is None else options.now
        report = RetentionReport(options.dry_run)
        targets = await self._targets(options.namespace)
        last_logged = started
        for done, target in enumerate(targets, start=1):
            decisions = await self._repository(target, now, options.dry_run, report)
            if on_decision is not None:
                for decision in decisions:
                    on_decision(decision)
            moment = time.monotonic()
            due = moment - last_logged >= PROGRESS_SECONDS
            if due or done % PROGRESS_REPOSITORIES == 0 or done == len(targets):
                last_logged = moment
                _log("retention progress", report, total=len(targets))
                if on_progress is not None:
                    on_progress(done, len(targets))
        if not options.dry_run:
            await self.db.write(retention.prune_pulls)
        seconds = round(time.monotonic() - started, 3)
        _log("retention finished", report, seconds=seconds)
        return report

    async def _targets(self, namespace: str | None) -> list[_Target]:
        rules = await self.db.read(partial(retention.list_rules, namespace=namespace))
        by_namespace: dict[str, list[RetentionRule]] = defaultdict(list)
        for rule in rules:
            by_namespace[rule.namespace].append(rule)

        targets = []
        for name, namespace_rules in by_namespace.items():
            immutable = await self.db.read(
                partial(tag_rules.list_rules, namespace=name)
            )
            found = await self.db.read(
                partial(retention.namespace_repositories, namespace=name)
            )
            for repository_id, repository in found:
                matching = [rule for rule in namespace_rules if rule.covers(repository)]
                if matching:
                    targets.append(
                        _Target(repository_id, repository, matching, immutable)
                    )
        return targets

    async def _repository(
        self, target: _Target, now: float, dry_run: bool, report: RetentionReport
    ) -> list[Decision]:
        state = await self.db.read(
            partial(
                retention.load_state,
                repository_id=target.repository_id,
                name=target.name,
            )
        )
        plan = plan_repository(state, target.rules, target.immutable, now)
        report.repositories += 1
        report.tags += len(state.tags)
        report.manifests += sum(1 for d in plan.decisions if d.kind == "manifest")
        if dry_run:
            report.tags_deleted += len(plan.tags)
            report.manifests_deleted += len(plan.manifests)
            return plan.decisions

        tags_gone, manifests_gone = await self._delete(plan)
        report.tags_deleted += len(tags_gone)
        report.manifests_deleted += len(manifests_gone)
        decisions = []
        for decision in plan.decisions:
            gone = tags_gone if decision.kind == "tag" else manifests_gone
            if decision.delete and decision.reference not in gone:
                report.skipped += 1
                decision = dataclasses.replace(
                    decision, delete=False, reason="changed since it was planned"
                )
            decisions.append(decision)
        return decisions

    async def _delete(self, plan: RepositoryPlan) -> tuple[set[str], set[str]]:
        """Delete the plan's tags, then its manifests; the ones that went."""
        tags = partial(
            retention.delete_tags,
            repository_id=plan.repository_id,
            repository=plan.name,
        )
        manifests = partial(
            retention.delete_manifests,
            repository_id=plan.repository_id,
            cutoff=plan.cutoff,
        )
        return (
            await self._in_batches(tags, plan.tags),
            await self._in_batches(manifests, plan.manifests),
        )

    async def _in_batches(
        self, delete: Callable[..., list[str]], planned: Sequence[object]
    ) -> set[str]:
        gone: set[str] = set()
        for start in range(0, len(planned), BATCH):
            batch = planned[start : start + BATCH]
            gone.update(await self.db.write(partial(delete, planned=batch)))
        return gone


def _log(message: str, report: RetentionReport, **extra: object) -> None:
    logger.info(message, extra={**dataclasses.asdict(report), **extra})
