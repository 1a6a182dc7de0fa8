"""`/api/v1/audit`: read the audit log, newest first.

Administrators read everything. Owners of a namespace read its events, and only
with `namespace=` set to it.
"""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from dockyard.api.management.common import caller, parse_time, read, reply, rfc3339
from dockyard.api.management.errors import denied
from dockyard.api.management.namespaces import managed
from dockyard.metadata import accounts
from dockyard.metadata.accounts import AuditRecord
from dockyard.oci import errcodes
from dockyard.oci.errcodes import RegistryError

DEFAULT_LIMIT = 100
MAX_LIMIT = 1000


def event_document(event: AuditRecord) -> dict[str, Any]:
    return {
        "id": event.id,
        "time": rfc3339(event.time),
        "actor": event.actor,
        "action": event.action,
        "target": event.target,
        "namespace": event.namespace,
        "outcome": event.outcome,
        "remote": event.remote,
        "detail": event.detail,
    }


def _limit(text: str | None) -> int:
    if text is None:
        return DEFAULT_LIMIT
    if not text.isdigit() or not 0 < int(text) <= MAX_LIMIT:
        raise RegistryError(
            errcodes.PAGINATION_NUMBER_INVALID,
            f"limit: an integer between 1 and {MAX_LIMIT}",
        )
    return int(text)


async def list_events(request: Request) -> Response:
    identity = await caller(request)
    query = request.query_params
    namespace = query.get("namespace") or None
    if not identity.is_admin:
        if namespace is None:
            raise denied("only administrators may read the whole audit log")
        await managed(request, identity, namespace)

    since, until = query.get("since"), query.get("until")
    events = await read(
        request,
        accounts.list_events,
        namespace=namespace,
        actor=query.get("actor") or None,
        action=query.get("action") or None,
        since=None if since is None else parse_time(since, "since"),
        until=None if until is None else parse_time(until, "until"),
        limit=_limit(query.get("limit")),
    )
    return reply({"events": [event_document(event) for event in events]})
