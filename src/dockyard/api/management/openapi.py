"""`/api/v1/openapi.json`: the management API described as OpenAPI 3.1.

Built once from plain dicts; a test checks that it names every route.
"""

from __future__ import annotations

import json
from functools import cache
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from dockyard import __version__
from dockyard.api.management import audit, robots, users
from dockyard.api.management.common import COMPONENT, MAX_NAME, PREFIX
from dockyard.auth.identity import ACTIONS
from dockyard.auth.policy import ROLES

Schema = dict[str, Any]

_TIME: Schema = {"type": "string", "format": "date-time"}
_NAME: Schema = {"type": "string", "pattern": COMPONENT.pattern, "maxLength": MAX_NAME}
_PASSWORD: Schema = {
    "type": "string",
    "minLength": users.MIN_PASSWORD,
    "maxLength": users.MAX_PASSWORD,
}


def _ref(name: str) -> Schema:
    return {"$ref": f"#/components/schemas/{name}"}


def _object(required: list[str], **properties: Schema) -> Schema:
    return {
        "type": "object",
        "required": required,
        "properties": properties,
        "additionalProperties": False,
    }


def _list_of(key: str, item: str) -> Schema:
    return _object([key], **{key: {"type": "array", "items": _ref(item)}})


def _robot_schemas() -> dict[str, Schema]:
    nullable_time: Schema = {"oneOf": [_TIME, {"type": "null"}]}
    grant = _object(
        ["repository", "actions"],
        repository={"type": "string", "description": "a glob such as acme/*"},
        actions={
            "type": "array",
            "minItems": 1,
            "items": {"enum": sorted(ACTIONS)},
        },
    )
    robot_fields: dict[str, Schema] = {
        "name": {"type": "string", "description": "robot$<name>"},
        "grants": {"type": "array", "items": _ref("Grant")},
        "expires_at": nullable_time,
        "revoked": {"type": "boolean"},
        "created_by": {"type": "string"},
        "created_at": _TIME,
        "last_used_at": nullable_time,
    }
    return {
        "Grant": grant,
        "NewRobot": _object(
            ["name", "grants"],
            name=_NAME,
            grants={"type": "array", "minItems": 1, "items": _ref("Grant")},
            expires_in_days={
                "type": "integer",
                "minimum": 1,
                "maximum": robots.MAX_DAYS,
            },
        ),
        "Robot": _object(list(robot_fields), **robot_fields),
        "CreatedRobot": _object(
            [*robot_fields, "secret"],
            **robot_fields,
            secret={"type": "string", "description": "shown only once"},
        ),
        "RobotList": _list_of("robots", "Robot"),
    }


def _retention_schemas() -> dict[str, Schema]:
    count: Schema = {"type": ["integer", "null"], "minimum": 0}
    rule_fields: dict[str, Schema] = {
        "repository_pattern": {"type": "string", "default": "*"},
        "keep_newest": count,
        "keep_tags": {"type": "array", "items": {"type": "string"}},
        "keep_pulled_days": count,
        "untagged_days": count,
        "keep_pinned": {"type": "boolean", "default": False},
    }
    decision = _object(
        ["kind", "repository", "reference", "digest", "action", "reason"],
        kind={"enum": ["tag", "manifest"]},
        repository={"type": "string"},
        reference={"type": "string", "description": "the tag, or the digest"},
        digest={"type": "string"},
        action={"enum": ["delete", "keep"]},
        reason={"type": "string"},
    )
    totals = ["repositories", "tags", "manifests", "tags_deleted"]
    totals += ["manifests_deleted", "skipped"]
    return {
        "RetentionRule": _object([], **rule_fields),
        "RetentionRuleList": _list_of("rules", "RetentionRule"),
        "RetentionRun": _object(["dry_run"], dry_run={"type": "boolean"}),
        "RetentionDecision": decision,
        "RetentionReport": _object(
            ["dry_run", *totals, "decisions"],
            dry_run={"type": "boolean"},
            **{total: {"type": "integer"} for total in totals},
            decisions={"type": "array", "items": _ref("RetentionDecision")},
        ),
    }


def _schemas() -> dict[str, Schema]:
    return {
        **_robot_schemas(),
        **_retention_schemas(),
        "Error": _object(
            ["errors"],
            errors={
                "type": "array",
                "items": {
                    "type": "object",
                    "required": ["code", "message"],
                    "properties": {
                        "code": {"type": "string"},
                        "message": {"type": "string"},
                        "detail": {},
                    },
                },
            },
        ),
        "User": _object(
            ["username", "admin", "source", "created_at"],
            username={"type": "string"},
            admin={"type": "boolean"},
            source={"type": "string", "description": "local or ldap"},
            created_at=_TIME,
        ),
        "NewUser": _object(
            ["username", "password"],
            username=_NAME,
            password=_PASSWORD,
            admin={"type": "boolean", "default": False},
        ),
        "NewPassword": _object(["password"], password=_PASSWORD),
        "Namespace": _object(
            ["name", "public", "created_at"],
            name={"type": "string"},
            public={"type": "boolean"},
            created_at=_TIME,
        ),
        "NewNamespace": _object(
            ["name"], name=_NAME, public={"type": "boolean", "default": False}
        ),
        "NamespaceChange": _object(["public"], public={"type": "boolean"}),
        "Member": _object(
            ["kind", "subject", "role"],
            kind={"enum": ["user", "group"]},
            subject={"type": "string", "minLength": 1, "maxLength": 255},
            role={"enum": list(ROLES)},
            pattern={"type": "string", "default": "*"},
        ),
        "AuditEvent": _object(
            ["id", "time", "actor", "action", "outcome"],
            id={"type": "integer"},
            time=_TIME,
            actor={"type": "string"},
            action={"type": "string", "examples": ["robot.created"]},
            target={"type": ["string", "null"]},
            namespace={"type": ["string", "null"]},
            outcome={"enum": ["success", "failure"]},
            remote={"type": ["string", "null"]},
            detail={"type": ["object", "null"]},
        ),
        "UserList": _list_of("users", "User"),
        "NamespaceList": _list_of("namespaces", "Namespace"),
        "MemberList": _list_of("members", "Member"),
        "TagRule": _object(
            ["tag_pattern"],
            tag_pattern={"type": "string", "examples": ["v*"]},
            repository_pattern={"type": "string", "default": "*"},
        ),
        "TagRuleList": _list_of("rules", "TagRule"),
        "Quota": _object(
            ["quota_bytes"], quota_bytes={"type": ["integer", "null"], "minimum": 0}
        ),
        "Usage": _object(
            ["namespace", "used_bytes", "quota_bytes"],
            namespace={"type": "string"},
            used_bytes={"type": "integer"},
            quota_bytes={"type": ["integer", "null"]},
        ),
        "AuditEventList": _list_of("events", "AuditEvent"),
    }


_ERRORS = {
    "400": "invalid input (UNSUPPORTED or NAME_INVALID)",
    "401": "no or bad credentials (UNAUTHORIZED)",
    "403": "not allowed (DENIED)",
    "404": "unknown or invisible (NAME_UNKNOWN); UNSUPPORTED when auth is off",
    "409": "already exists, or not a local account (CONFLICT)",
}


def _responses() -> dict[str, Any]:
    content = {"application/json": {"schema": _ref("Error")}}
    return {
        code: {"description": text, "content": content}
        for code, text in _ERRORS.items()
    }


def _op(
    summary: str,
    status: str,
    result: str | None = None,
    body: str | None = None,
    errors: str = "401 403",
    parameters: list[Schema] | None = None,
) -> Schema:
    """One operation: its success answer, request body and error answers."""
    success: Schema = {"description": summary}
    if result is not None:
        success["content"] = {"application/json": {"schema": _ref(result)}}
    operation: Schema = {"summary": summary, "responses": {status: success}}
    for code in errors.split():
        operation["responses"][code] = {"$ref": f"#/components/responses/{code}"}
    if body is not None:
        operation["requestBody"] = {
            "required": True,
            "content": {"application/json": {"schema": _ref(body)}},
        }
    if parameters:
        operation["parameters"] = parameters
    return operation


def _in(place: str, name: str, text: str, **schema: Any) -> Schema:
    return {
        "name": name,
        "in": place,
        "required": place == "path",
        "description": text,
        "schema": schema or {"type": "string"},
    }


_USER = [_in("path", "username", "a user")]
_NAMESPACE = [_in("path", "name", "a namespace")]
_MEMBER = [
    *_NAMESPACE,
    _in("query", "kind", "user or group", enum=["user", "group"]),
    _in("query", "subject", "the user name or group name"),
    _in("query", "pattern", "the binding's pattern (default *)"),
]
_RULE = [
    *_NAMESPACE,
    _in("query", "tag_pattern", "the rule's tag glob"),
    _in("query", "repository_pattern", "the rule's repository glob (default *)"),
]
_AUDIT = [
    _in("query", "namespace", "only events of this namespace"),
    _in("query", "actor", "only events by this actor"),
    _in("query", "action", "only this action, such as user.created"),
    _in("query", "since", "from this time on (RFC 3339)", format="date-time"),
    _in("query", "until", "before this time (RFC 3339)", format="date-time"),
    _in(
        "query",
        "limit",
        "at most this many",
        type="integer",
        default=audit.DEFAULT_LIMIT,
        maximum=audit.MAX_LIMIT,
    ),
]
_NEW = "400 401 403 409"
_ONE = "401 403 404"


def _user_paths() -> dict[str, Schema]:
    return {
        "/users": {
            "get": _op("List users (admin)", "200", "UserList"),
            "post": _op("Create a user (admin)", "201", "User", "NewUser", _NEW),
        },
        "/users/{username}": {
            "get": _op("Show a user (admin)", "200", "User", None, _ONE, _USER),
            "delete": _op("Delete a user (admin)", "204", None, None, _ONE, _USER),
        },
        "/users/{username}/password": {
            "put": _op(
                "Set a password (admin, or the user)",
                "204",
                body="NewPassword",
                errors="400 401 403 404 409",
                parameters=_USER,
            )
        },
    }


def _namespace_paths() -> dict[str, Schema]:
    one = "/namespaces/{name}"
    return {
        "/namespaces": {
            "get": _op("List visible namespaces", "200", "NamespaceList"),
            "post": _op(
                "Create a namespace (admin)", "201", "Namespace", "NewNamespace", _NEW
            ),
        },
        one: {
            "get": _op("Show a namespace", "200", "Namespace", None, _ONE, _NAMESPACE),
            "patch": _op(
                "Make a namespace public or private (owner, admin)",
                "200",
                "Namespace",
                "NamespaceChange",
                "400 " + _ONE,
                _NAMESPACE,
            ),
            "delete": _op(
                "Delete a namespace (admin)", "204", None, None, _ONE, _NAMESPACE
            ),
        },
        f"{one}/members": {
            "get": _op(
                "List members (owner, admin)",
                "200",
                "MemberList",
                None,
                _ONE,
                _NAMESPACE,
            ),
            "put": _op(
                "Give a role (owner, admin)",
                "200",
                "Member",
                "Member",
                "400 " + _ONE,
                _NAMESPACE,
            ),
            "delete": _op(
                "Take a role away (owner, admin)",
                "204",
                None,
                None,
                "400 " + _ONE,
                _MEMBER,
            ),
        },
        f"{one}/quota": {
            "get": _op(
                "Storage used and quota", "200", "Usage", None, _ONE, _NAMESPACE
            ),
            "put": _op(
                "Set or clear the quota (admin)",
                "200",
                "Usage",
                "Quota",
                "400 " + _ONE,
                _NAMESPACE,
            ),
        },
        f"{one}/immutable-tags": {
            "get": _op(
                "List immutable-tag rules", "200", "TagRuleList", None, _ONE, _NAMESPACE
            ),
            "post": _op(
                "Protect matching tags (maintainer, owner, admin)",
                "200",
                "TagRule",
                "TagRule",
                "400 " + _ONE,
                _NAMESPACE,
            ),
            "delete": _op(
                "Remove a rule (maintainer, owner, admin)",
                "204",
                None,
                None,
                "400 " + _ONE,
                _RULE,
            ),
        },
    }


def _retention_paths() -> dict[str, Schema]:
    one = "/namespaces/{name}/retention"
    pattern = _in("query", "repository_pattern", "the rule's pattern (default *)")
    return {
        one: {
            "get": _op(
                "List retention rules",
                "200",
                "RetentionRuleList",
                None,
                _ONE,
                _NAMESPACE,
            ),
            "put": _op(
                "Set the rule for a repository pattern (maintainer, owner, admin)",
                "200",
                "RetentionRule",
                "RetentionRule",
                "400 " + _ONE,
                _NAMESPACE,
            ),
            "delete": _op(
                "Remove a rule (maintainer, owner, admin)",
                "204",
                None,
                None,
                _ONE,
                [*_NAMESPACE, pattern],
            ),
        },
        f"{one}/run": {
            "post": _op(
                "Apply the rules now, or preview (maintainer, owner, admin)",
                "200",
                "RetentionReport",
                "RetentionRun",
                "400 " + _ONE,
                _NAMESPACE,
            )
        },
    }


def _other_paths() -> dict[str, Schema]:
    robot = [_in("path", "name", "robot$<name> or <name>")]
    return {
        "/openapi.json": {
            "get": {
                "summary": "This document",
                "security": [],
                "responses": {"200": {"description": "OpenAPI 3.1 document"}},
            }
        },
        "/robots": {
            "get": _op(
                "List robots (admin: all; others: their own)", "200", "RobotList"
            ),
            "post": _op(
                "Create a robot; the secret is shown only here",
                "201",
                "CreatedRobot",
                "NewRobot",
                _NEW,
            ),
        },
        "/robots/{name}": {
            "delete": _op(
                "Revoke a robot (admin, creator)", "204", None, None, _ONE, robot
            )
        },
        "/audit": {
            "get": _op(
                "Read the audit log (admin; owners: their namespace)",
                "200",
                "AuditEventList",
                None,
                "400 " + _ONE,
                _AUDIT,
            )
        },
    }


def document() -> dict[str, Any]:
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Dockyard management API",
            "version": __version__,
            "description": "Users, namespaces, members, robot accounts, audit log.",
        },
        "servers": [{"url": PREFIX}],
        "security": [{"basic": []}, {"bearer": []}],
        "paths": {
            **_user_paths(),
            **_namespace_paths(),
            **_retention_paths(),
            **_other_paths(),
        },
        "components": {
            "securitySchemes": {
                "basic": {"type": "http", "scheme": "basic"},
                "bearer": {
                    "type": "http",
                    "scheme": "bearer",
                    "bearerFormat": "JWT",
                    "description": "a registry token from /auth/token",
                },
            },
            "schemas": _schemas(),
            "responses": _responses(),
        },
    }


@cache
def _serialized() -> bytes:
    return json.dumps(document(), indent=2).encode()


async def openapi(request: Request) -> Response:
    return Response(_serialized(), media_type="application/json")
