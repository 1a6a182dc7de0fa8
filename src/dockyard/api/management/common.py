"""What every management handler shares: who is calling, JSON in and out, times.

Callers authenticate as on the registry (HTTP Basic or a registry token). Only
people use this API: robots and CI identities are refused. Administrator rights
are read from the database on every request, so a token issued before a user
was demoted or deleted does not keep its old powers.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Collection
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any, TypeVar

from starlette.requests import Request
from starlette.responses import Response

from dockyard.api.access import challenge, identify
from dockyard.api.common import services
from dockyard.api.management.errors import DISABLED, denied, invalid, store_errors
from dockyard.auth.access import AccessControl
from dockyard.auth.identity import Identity
from dockyard.metadata.account_store import AccountStore
from dockyard.oci import errcodes
from dockyard.oci.errcodes import RegistryError

T = TypeVar("T")

PREFIX = "/api/v1"
# One component of a repository name: usernames, namespaces and robot names.
COMPONENT = re.compile(r"^[a-z0-9]+(?:(?:\.|_|__|-+)[a-z0-9]+)*$")
MAX_NAME = 64


def control(request: Request) -> AccessControl:
    access = services(request).access
    if access is None:
        raise RegistryError(DISABLED)
    return access


def store(request: Request) -> AccountStore:
    return control(request).store


async def caller(request: Request) -> Identity:
    """The person calling, with their current administrator flag; else 401/403."""
    accounts = control(request).store
    identity = (await identify(request)).identity
    if identity.is_anonymous:
        raise RegistryError(errcodes.UNAUTHORIZED, headers=challenge(request))
    if identity.kind != "user":
        raise denied("the management API is for users, not robots or CI identities")
    user = await accounts.get_user(identity.subject)
    if user is None:
        raise RegistryError(
            errcodes.UNAUTHORIZED,
            "the account no longer exists",
            headers=challenge(request),
        )
    return replace(identity, is_admin=user.is_admin)


async def admin(request: Request) -> Identity:
    identity = await caller(request)
    if not identity.is_admin:
        raise denied("administrators only")
    return identity


async def read(request: Request, query: Callable[..., T], **arguments: Any) -> T:
    with store_errors():
        return await store(request).read(query, **arguments)


async def write(request: Request, change: Callable[..., T], **arguments: Any) -> T:
    with store_errors():
        return await store(request).write(change, **arguments)


def reply(
    document: Any, status: int = 200, headers: dict[str, str] | None = None
) -> Response:
    body = json.dumps(document, separators=(",", ":")).encode()
    return Response(body, status, headers, media_type="application/json")


def no_content() -> Response:
    return Response(status_code=204)


def check_name(name: str, what: str) -> str:
    if len(name) > MAX_NAME or not COMPONENT.match(name):
        raise RegistryError(
            errcodes.NAME_INVALID,
            f"invalid {what} {name!r}: lower-case letters and digits, separated by"
            f" '.', '_', '__' or '-', at most {MAX_NAME} characters",
            detail=name,
        )
    return name


# -- times: stored as Unix seconds, shown as RFC 3339 in UTC --------------------


def rfc3339(when: float | None) -> str | None:
    if when is None:
        return None
    moment = datetime.fromtimestamp(when, UTC)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def parse_time(text: str, field: str) -> float:
    try:
        moment = datetime.fromisoformat(text)
    except ValueError as exc:
        raise invalid(f"{field}: expected an RFC 3339 time, got {text!r}") from exc
    if moment.tzinfo is None:
        raise invalid(f"{field}: the time needs an offset, such as Z or +02:00")
    return moment.timestamp()


# -- request bodies --------------------------------------------------------------


class Body:
    """A JSON object from the request, read field by field with clear 400s."""

    def __init__(self, fields: dict[str, Any]) -> None:
        self.fields = fields

    @classmethod
    async def read(cls, request: Request, allowed: Collection[str]) -> Body:
        try:
            document = json.loads(await request.body())
        except (ValueError, UnicodeDecodeError) as exc:
            raise invalid("the request body must be a JSON object") from exc
        if not isinstance(document, dict):
            raise invalid("the request body must be a JSON object")
        unexpected = sorted(set(document) - set(allowed))
        if unexpected:
            raise invalid(f"unknown fields: {', '.join(unexpected)}")
        return cls(document)

    def _get(self, key: str, kind: type[T], label: str, default: T | None) -> T:
        value = self.fields.get(key)
        if value is None:
            if default is None:
                raise invalid(f"{key}: required")
            return default
        # bool is an int in Python; JSON true is not a number.
        if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
            raise invalid(f"{key}: expected {label}")
        return value

    def text(self, key: str, default: str | None = None) -> str:
        return self._get(key, str, "a string", default)

    def flag(self, key: str, default: bool | None = None) -> bool:
        return self._get(key, bool, "true or false", default)

    def number(self, key: str) -> int | None:
        if self.fields.get(key) is None:
            return None
        return self._get(key, int, "an integer", None)

    def items(self, key: str) -> list[Any]:
        return self._get(key, list, "a list", None)
