"""Retention's planner: which tags and untagged manifests go, and why the rest stay.

The planner is pure: each test draws a repository in memory, at a fixed `NOW`.
"""

from __future__ import annotations

import hashlib
import itertools

import pytest

from dockyard.metadata.gc_queries import ManifestNode, RepositoryGraph
from dockyard.metadata.retention import (
    DAY,
    InvalidRule,
    PullRow,
    RepositoryState,
    RetentionRule,
    TagRow,
)
from dockyard.metadata.tag_rules import TagRule
from dockyard.services.retention import RepositoryPlan, plan_repository

NOW = 2_000_000_000.0
NAMESPACE = "acme"
REPO = "acme/app"
_counter = itertools.count()


class Repository:
    """A repository drawn for one test: manifests, tags, references and pulls."""

    def __init__(self) -> None:
        self.state = RepositoryState(RepositoryGraph(1, REPO))

    def manifest(
        self,
        age_days: float = 30,
        *,
        subject: str | None = None,
        children: tuple[str, ...] = (),
    ) -> str:
        digest = "sha256:" + hashlib.sha256(str(next(_counter)).encode()).hexdigest()
        graph = self.state.graph
        graph.manifests[digest] = ManifestNode(
            digest, 100, subject, NOW - age_days * DAY
        )
        for child in children:
            graph.children[digest].add(child)
            graph.references[digest].add(child)
        return digest

    def tag(self, name: str, digest: str | None = None, age_days: float = 30) -> str:
        digest = digest or self.manifest(age_days)
        self.state.tags.append(TagRow(name, digest, NOW - age_days * DAY))
        self.state.graph.tagged.add(digest)
        return digest

    def pull(
        self, digest: str, days_ago: float, pinned_days_ago: float | None = None
    ) -> None:
        pinned = None if pinned_days_ago is None else NOW - pinned_days_ago * DAY
        self.state.pulls[digest] = PullRow(NOW - days_ago * DAY, pinned)

    def plan(
        self, *rules: RetentionRule, immutable: tuple[TagRule, ...] = ()
    ) -> RepositoryPlan:
        return plan_repository(self.state, rules, immutable, NOW)


def rule(**conditions: object) -> RetentionRule:
    return RetentionRule(NAMESPACE, **conditions)  # type: ignore[arg-type]


def deleted_tags(plan: RepositoryPlan) -> set[str]:
    return {tag.name for tag in plan.tags}


def reason(plan: RepositoryPlan, reference: str) -> str:
    (found,) = [d for d in plan.decisions if d.reference == reference]
    return found.reason


# -- tags --------------------------------------------------------------------------


def test_keep_newest_keeps_the_most_recently_pushed_tags() -> None:
    repo = Repository()
    for age, name in enumerate(["newest", "second", "third", "oldest"]):
        repo.tag(name, age_days=age)

    plan = repo.plan(rule(keep_newest=2))

    assert deleted_tags(plan) == {"third", "oldest"}
    assert reason(plan, "second") == "one of the 2 newest"
    assert reason(plan, "oldest").startswith("no rule keeps it")


def test_keep_tags_keeps_names_matching_a_glob() -> None:
    repo = Repository()
    for name in ["v1", "v2.0", "release-3", "dev-1", "latest"]:
        repo.tag(name)

    plan = repo.plan(rule(keep_tags=("v*", "release-*")))

    assert deleted_tags(plan) == {"dev-1", "latest"}
    assert reason(plan, "release-3") == "matches release-*"


def test_keep_pulled_days_keeps_tags_whose_manifest_was_pulled_in_the_window() -> None:
    repo = Repository()
    recent, stale = repo.tag("recent"), repo.tag("stale")
    repo.tag("never")
    repo.pull(recent, days_ago=2)
    repo.pull(stale, days_ago=40)

    plan = repo.plan(rule(keep_pulled_days=30))

    assert deleted_tags(plan) == {"stale", "never"}
    assert reason(plan, "recent") == "pulled 2.0 days ago"


def test_immutable_tags_are_never_deleted() -> None:
    repo = Repository()
    repo.tag("v1", age_days=100)
    repo.tag("dev", age_days=100)

    plan = repo.plan(rule(keep_newest=0), immutable=(TagRule(NAMESPACE, "v*", "*"),))

    assert deleted_tags(plan) == {"dev"}
    assert reason(plan, "v1").startswith("immutable")


def test_a_rule_without_tag_conditions_leaves_tags_alone() -> None:
    repo = Repository()
    repo.tag("old", age_days=1000)

    plan = repo.plan(rule(untagged_days=1))

    assert plan.tags == []
    assert plan.manifests == []


def test_rules_matching_one_repository_keep_what_any_of_them_keeps() -> None:
    repo = Repository()
    repo.tag("v1", age_days=10)
    repo.tag("dev-2", age_days=1)
    repo.tag("dev-1", age_days=5)

    plan = repo.plan(
        rule(keep_newest=1), rule(repository_pattern="a*", keep_tags=("v*",))
    )

    assert deleted_tags(plan) == {"dev-1"}


def test_two_tags_of_one_manifest_are_ranked_separately() -> None:
    repo = Repository()
    shared = repo.tag("a", age_days=2)
    repo.tag("b", shared, age_days=1)

    plan = repo.plan(rule(keep_newest=1))

    assert deleted_tags(plan) == {"a"}
    # The manifest keeps a tag, so it is not a candidate at all.
    assert plan.manifests == []


# -- untagged manifests ------------------------------------------------------------


def test_untagged_manifests_go_once_older_than_untagged_days() -> None:
    repo = Repository()
    old, young = repo.manifest(age_days=10), repo.manifest(age_days=3)
    kept = repo.tag("latest")

    plan = repo.plan(rule(untagged_days=7))

    assert plan.manifests == [old]
    assert plan.cutoff == NOW - 7 * DAY
    assert reason(plan, young) == "pushed less than 7 days ago"
    assert kept not in {d.reference for d in plan.decisions if d.kind == "manifest"}


def test_a_manifest_untagged_by_the_run_goes_in_the_same_run() -> None:
    repo = Repository()
    repo.tag("new", age_days=1)
    old = repo.tag("old", age_days=20)

    plan = repo.plan(rule(keep_newest=1, untagged_days=7))

    assert deleted_tags(plan) == {"old"}
    assert plan.manifests == [old]
    assert reason(plan, old).startswith("its tags go in this run")


def test_without_untagged_days_untagged_manifests_are_left_to_the_collector() -> None:
    repo = Repository()
    repo.manifest(age_days=1000)
    old = repo.tag("old", age_days=20)
    repo.tag("new", age_days=1)

    plan = repo.plan(rule(keep_newest=1))

    assert plan.manifests == []
    assert reason(plan, old) == "untagged now; no rule deletes it"


def test_the_longest_untagged_days_of_the_matching_rules_applies() -> None:
    repo = Repository()
    repo.manifest(age_days=10)

    plan = repo.plan(
        rule(untagged_days=7), rule(repository_pattern="*", untagged_days=30)
    )

    assert plan.manifests == []


def test_children_of_a_kept_index_and_referrers_of_a_kept_subject_stay() -> None:
    repo = Repository()
    child = repo.manifest(age_days=50)
    index = repo.manifest(age_days=50, children=(child,))
    repo.tag("multi", index)
    signature = repo.manifest(age_days=50, subject=index)

    plan = repo.plan(rule(keep_newest=5, untagged_days=1))

    assert plan.manifests == []
    assert reason(plan, child).startswith("reached from a kept manifest")
    assert reason(plan, signature).startswith("reached from a kept manifest")


def test_an_index_goes_before_its_children_and_a_subject_before_its_referrers() -> None:
    repo = Repository()
    child = repo.manifest(age_days=50)
    index = repo.manifest(age_days=50, children=(child,))
    signature = repo.manifest(age_days=50, subject=index)
    repo.tag("multi", index, age_days=50)

    plan = repo.plan(rule(keep_newest=0, untagged_days=1))

    assert deleted_tags(plan) == {"multi"}
    assert plan.manifests.index(index) < plan.manifests.index(child)
    assert plan.manifests.index(index) < plan.manifests.index(signature)


def test_a_manifest_a_young_index_still_lists_stays() -> None:
    repo = Repository()
    child = repo.manifest(age_days=50)
    repo.manifest(age_days=1, children=(child,))

    plan = repo.plan(rule(untagged_days=7))

    assert plan.manifests == []
    assert reason(plan, child) == "reached from a younger untagged manifest"


# -- digest-pinned manifests ------------------------------------------------------


def test_pinned_manifest_is_kept_for_ever_without_a_pull_window() -> None:
    repo = Repository()
    pinned, unpinned = repo.manifest(age_days=400), repo.manifest(age_days=400)
    child = repo.manifest(age_days=400)
    index = repo.manifest(age_days=400, children=(child,))
    repo.pull(pinned, days_ago=300, pinned_days_ago=300)
    repo.pull(index, days_ago=300, pinned_days_ago=300)

    plan = repo.plan(rule(untagged_days=30, keep_pinned=True))

    assert plan.manifests == [unpinned]
    assert reason(plan, pinned) == "pulled by digest 300.0 days ago"
    # What a pinned manifest reaches is kept with it.
    assert reason(plan, child).startswith("reached from a kept manifest")


def test_pinned_protection_ends_with_the_pull_window() -> None:
    repo = Repository()
    recent, stale = repo.manifest(age_days=100), repo.manifest(age_days=100)
    repo.pull(recent, days_ago=5, pinned_days_ago=5)
    repo.pull(stale, days_ago=60, pinned_days_ago=60)

    plan = repo.plan(rule(untagged_days=30, keep_pulled_days=30, keep_pinned=True))

    assert plan.manifests == [stale]


def test_pulls_by_tag_do_not_pin_and_pins_need_keep_pinned() -> None:
    repo = Repository()
    by_tag, by_digest = repo.manifest(age_days=100), repo.manifest(age_days=100)
    repo.pull(by_tag, days_ago=1)
    repo.pull(by_digest, days_ago=1, pinned_days_ago=1)

    assert set(repo.plan(rule(untagged_days=30)).manifests) == {by_tag, by_digest}
    pinned = repo.plan(rule(untagged_days=30, keep_pinned=True))
    assert pinned.manifests == [by_tag]


def test_keep_pinned_of_one_rule_protects_from_another_rules_age() -> None:
    repo = Repository()
    pinned = repo.manifest(age_days=100)
    repo.pull(pinned, days_ago=1, pinned_days_ago=1)

    plan = repo.plan(
        rule(untagged_days=1), rule(repository_pattern="app", keep_pinned=True)
    )

    assert plan.manifests == []


# -- the rules themselves ----------------------------------------------------------


def test_a_rule_covers_repositories_of_its_namespace_matching_its_pattern() -> None:
    web = RetentionRule(NAMESPACE, "web-*", keep_newest=1)
    assert web.covers("acme/web-front")
    assert not web.covers("acme/api")
    assert not web.covers("other/web-front")
    assert RetentionRule(NAMESPACE, keep_newest=1).covers("acme/team/app")


@pytest.mark.parametrize(
    ("conditions", "message"),
    [
        ({}, "at least one of"),
        ({"keep_newest": -1}, "keep_newest"),
        ({"untagged_days": 10**6}, "untagged_days"),
        ({"keep_tags": ("",)}, "keep_tags"),
        ({"keep_tags": ("v*",) * 40}, "at most"),
        ({"repository_pattern": "", "keep_newest": 1}, "repository_pattern"),
    ],
)
def test_invalid_rules_are_refused_with_the_field_named(
    conditions: dict[str, object], message: str
) -> None:
    with pytest.raises(InvalidRule, match=message):
        rule(**conditions).validate()


def test_a_rule_describes_itself_in_one_line() -> None:
    described = rule(keep_newest=5, keep_tags=("v*", "rc-*"), keep_pinned=True)
    assert described.describe() == "acme/*: keep_newest=5 keep_tags=v*,rc-* keep_pinned"
