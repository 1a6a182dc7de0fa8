"""`/api/v1/namespaces/{name}/immutable-tags`: which tags may never change.

Maintainers and owners of the namespace (and administrators) manage its rules.
"""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from dockyard.api.access import audit
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
from dockyard.metadata import tag_rules
from dockyard.metadata.tag_rules import TagRule

MAX_PATTERN = 255


def rule_document(rule: TagRule) -> dict[str, Any]:
    return {
        "tag_pattern": rule.tag_pattern,
        "repository_pattern": rule.repository_pattern,
    }


def _pattern(value: str, field: str) -> str:
    if not value or len(value) > MAX_PATTERN or not value.isprintable():
        raise invalid(f"{field}: 1 to {MAX_PATTERN} printable characters")
    return value


async def list_rules(request: Request) -> Response:
    identity = await caller(request)
    name = request.path_params["name"]
    await visible(request, identity, name)
    rules = await read(request, tag_rules.list_rules, namespace=name)
    return reply({"rules": [rule_document(rule) for rule in rules]})


async def add_rule(request: Request) -> Response:
    identity = await caller(request)
    name = request.path_params["name"]
    await rules_maintained(request, identity, name, "tag rules")
    body = await Body.read(request, ("tag_pattern", "repository_pattern"))
    rule = TagRule(
        name,
        _pattern(body.text("tag_pattern"), "tag_pattern"),
        _pattern(body.text("repository_pattern", "*"), "repository_pattern"),
    )
    await write(
        request,
        tag_rules.add_rule,
        namespace=name,
        tag_pattern=rule.tag_pattern,
        repository_pattern=rule.repository_pattern,
    )
    document = rule_document(rule)
    await audit(request, "immutable.added", rule.tag_pattern, name, document)
    return reply(document)


async def remove_rule(request: Request) -> Response:
    identity = await caller(request)
    name = request.path_params["name"]
    await rules_maintained(request, identity, name, "tag rules")
    tag_pattern = _pattern(request.query_params.get("tag_pattern", ""), "tag_pattern")
    repository_pattern = _pattern(
        request.query_params.get("repository_pattern", "*"), "repository_pattern"
    )
    await write(
        request,
        tag_rules.remove_rule,
        namespace=name,
        tag_pattern=tag_pattern,
        repository_pattern=repository_pattern,
    )
    await audit(request, "immutable.removed", tag_pattern, name)
    return no_content()
