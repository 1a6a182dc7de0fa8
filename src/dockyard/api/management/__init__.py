"""The management API under /api/v1: users, namespaces, members, robots, audit.

JSON in and out, errors in the registry's envelope. It needs authentication to
be enabled; without it every endpoint but the OpenAPI document answers 404.
"""

from __future__ import annotations

from starlette.routing import Route

from dockyard.api.common import Handler, route
from dockyard.api.management import (
    audit,
    members,
    namespaces,
    openapi,
    quotas,
    retention,
    robots,
    tag_rules,
    users,
)
from dockyard.api.management.common import PREFIX, control


def _resource(path: str, *, guarded: bool = True, **handlers: Handler) -> Route:
    # `control` answers 404 when authentication is switched off.
    return route(PREFIX + path, guard=control if guarded else None, **handlers)


ROUTES = [
    _resource("/openapi.json", guarded=False, GET=openapi.openapi),
    _resource("/users", GET=users.list_users, POST=users.create_user),
    _resource("/users/{username}", GET=users.get_user, DELETE=users.delete_user),
    _resource("/users/{username}/password", PUT=users.change_password),
    _resource(
        "/namespaces",
        GET=namespaces.list_namespaces,
        POST=namespaces.create_namespace,
    ),
    _resource(
        "/namespaces/{name}",
        GET=namespaces.get_namespace,
        PATCH=namespaces.update_namespace,
        DELETE=namespaces.delete_namespace,
    ),
    _resource(
        "/namespaces/{name}/members",
        GET=members.list_members,
        PUT=members.put_member,
        DELETE=members.delete_member,
    ),
    _resource(
        "/namespaces/{name}/immutable-tags",
        GET=tag_rules.list_rules,
        POST=tag_rules.add_rule,
        DELETE=tag_rules.remove_rule,
    ),
    _resource("/namespaces/{name}/quota", GET=quotas.get_quota, PUT=quotas.set_quota),
    _resource(
        "/namespaces/{name}/retention",
        GET=retention.list_rules,
        PUT=retention.set_rule,
        DELETE=retention.remove_rule,
    ),
    _resource("/namespaces/{name}/retention/run", POST=retention.run),
    _resource("/robots", GET=robots.list_robots, POST=robots.create_robot),
    _resource("/robots/{name}", DELETE=robots.revoke_robot),
    _resource("/audit", GET=audit.list_events),
]

__all__ = ["ROUTES"]
