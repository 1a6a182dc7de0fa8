"""`/api/v1/namespaces/{name}/retention`: which tags and manifests to keep.

Anyone who sees the namespace reads its rules; maintainers and owners (and
administrators) change them and run them, as for immutable-tag rules. A run
through the API covers the namespace only and answers with every decision.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from dockyard.api.access import audit
from dockyard.api.common import services
from dockyard.api.management.common import (
    Body,
    caller,
    no_content,
    read,
    reply,
    write,
)
from dockyard.api.management.errors import invalid
from dockyard.api.management.namespaces import rules_maintained, visible
from dockyard.metadata import retention
from dockyard.metadata.retention import InvalidRule, RetentionRule
from dockyard.services.retention import Decision, RetentionReport, RunOptions

RULE_FIELDS = (
    "repository_pattern",
    "keep_newest",
    "keep_tags",
    "keep_pulled_days",
    "untagged_days",
    "keep_pinned",
)


def rule_document(rule: RetentionRule) -> dict[str, Any]:
    return {
        "repository_pattern": rule.repository_pattern,
        "keep_newest": rule.keep_newest,
        "keep_tags": list(rule.keep_tags),
        "keep_pulled_days": rule.keep_pulled_days,
        "untagged_days": rule.untagged_days,
        "keep_pinned": rule.keep_pinned,
    }


def report_document(
    report: RetentionReport, decisions: list[Decision]
) -> dict[str, Any]:
    return {
        **dataclasses.asdict(report),
        "decisions": [
            {
                "kind": decision.kind,
                "repository": decision.repository,
                "reference": decision.reference,
                "digest": decision.digest,
                "action": "delete" if decision.delete else "keep",
                "reason": decision.reason,
            }
            for decision in decisions
        ],
    }


def _rule(namespace: str, body: Body) -> RetentionRule:
    patterns = body.items("keep_tags") if body.fields.get("keep_tags") else []
    if not all(isinstance(pattern, str) for pattern in patterns):
        raise invalid("keep_tags: expected a list of strings")
    try:
        return RetentionRule(
            namespace,
            repository_pattern=body.text("repository_pattern", "*"),
            keep_newest=body.number("keep_newest"),
            keep_tags=tuple(patterns),
            keep_pulled_days=body.number("keep_pulled_days"),
            untagged_days=body.number("untagged_days"),
            keep_pinned=body.flag("keep_pinned", False),
        ).validate()
    except InvalidRule as exc:
        raise invalid(str(exc)) from exc


async def list_rules(request: Request) -> Response:
    identity = await caller(request)
    name = request.path_params["name"]
    await visible(request, identity, name)
    rules = await read(request, retention.list_rules, namespace=name)
    return reply({"rules": [rule_document(rule) for rule in rules]})


async def set_rule(request: Request) -> Response:
    identity = await caller(request)
    name = request.path_params["name"]
    await rules_maintained(request, identity, name, "retention")
    rule = _rule(name, await Body.read(request, RULE_FIELDS))
    await write(request, retention.set_rule, rule=rule)
    document = rule_document(rule)
    await audit(request, "retention.set", rule.repository_pattern, name, document)
    return reply(document)


async def remove_rule(request: Request) -> Response:
    identity = await caller(request)
    name = request.path_params["name"]
    await rules_maintained(request, identity, name, "retention")
    pattern = request.query_params.get("repository_pattern", "*")
    await write(
        request, retention.remove_rule, namespace=name, repository_pattern=pattern
    )
    await audit(request, "retention.removed", pattern, name)
    return no_content()


async def run(request: Request) -> Response:
    identity = await caller(request)
    name = request.path_params["name"]
    await rules_maintained(request, identity, name, "retention")
    dry_run = (await Body.read(request, ("dry_run",))).flag("dry_run")
    decisions: list[Decision] = []
    report = await services(request).retention.run(
        RunOptions(dry_run=dry_run, namespace=name), on_decision=decisions.append
    )
    document = report_document(report, decisions)
    if not dry_run:
        await audit(request, "retention.run", name, name, dataclasses.asdict(report))
    return reply(document)
