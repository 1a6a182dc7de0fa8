"""Tag lists, the catalog and referrers: the spec's content discovery."""

from __future__ import annotations

import json
from urllib.parse import urlencode

from starlette.requests import Request
from starlette.responses import Response

from dockyard.api.access import challenge, identify, require
from dockyard.api.common import repository, services
from dockyard.auth.identity import PULL
from dockyard.oci import errcodes, mediatypes
from dockyard.oci.digest import Digest
from dockyard.oci.errcodes import RegistryError
from dockyard.services.discovery import Page, RepositoryFilter, parse_page_size


def _paged(
    path: str, key: str, name: str | None, page: Page, size: int | None
) -> Response:
    document: dict[str, object] = {key: page.items}
    if name is not None:
        document = {"name": name, **document}
    headers = {}
    if page.next_last is not None and size:
        query = urlencode({"n": size, "last": page.next_last})
        headers["Link"] = f'<{path}?{query}>; rel="next"'
    body = json.dumps(document, separators=(",", ":")).encode()
    return Response(body, headers=headers, media_type="application/json")


async def list_tags(request: Request) -> Response:
    name = repository(request)
    await require(request, name, PULL)
    size = parse_page_size(request.query_params.get("n"))
    last = request.query_params.get("last") or None
    page = await services(request).discovery.tags(name, size, last)
    return _paged(f"/v2/{name}/tags/list", "tags", name, page, size)


async def catalog(request: Request) -> Response:
    size = parse_page_size(request.query_params.get("n"))
    last = request.query_params.get("last") or None
    page = await services(request).discovery.catalog(
        size, last, await _catalog_filter(request)
    )
    return _paged("/v2/_catalog", "repositories", None, page, size)


async def list_referrers(request: Request) -> Response:
    name = repository(request)
    await require(request, name, PULL)
    subject = Digest.parse(request.path_params["digest"])
    artifact_type = request.query_params.get("artifactType") or None
    body = await services(request).discovery.referrers(name, subject, artifact_type)
    headers = {"OCI-Filters-Applied": "artifactType"} if artifact_type else {}
    return Response(body, headers=headers, media_type=mediatypes.OCI_INDEX)


async def _catalog_filter(request: Request) -> RepositoryFilter | None:
    """Which repositories this caller may see in the catalog (None: all)."""
    control = services(request).access
    if control is None:
        return None
    caller = await identify(request)
    if not control.may_list_catalog(caller):
        raise RegistryError(
            errcodes.UNAUTHORIZED,
            headers=challenge(request, "registry:catalog:*"),
        )
    if caller.identity.is_admin:
        return None

    async def visible(name: str) -> bool:
        return PULL in await control.rights(caller, name)

    return visible
