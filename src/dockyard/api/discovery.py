"""Tag lists, the catalog and referrers: the spec's content discovery."""

from __future__ import annotations

import json
from urllib.parse import urlencode

from starlette.requests import Request
from starlette.responses import Response

from dockyard.api.common import repository, services
from dockyard.oci import mediatypes
from dockyard.oci.digest import Digest
from dockyard.services.discovery import Page, parse_page_size


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
    size = parse_page_size(request.query_params.get("n"))
    last = request.query_params.get("last") or None
    page = await services(request).discovery.tags(name, size, last)
    return _paged(f"/v2/{name}/tags/list", "tags", name, page, size)


async def catalog(request: Request) -> Response:
    size = parse_page_size(request.query_params.get("n"))
    last = request.query_params.get("last") or None
    page = await services(request).discovery.catalog(size, last)
    return _paged("/v2/_catalog", "repositories", None, page, size)


async def list_referrers(request: Request) -> Response:
    name = repository(request)
    subject = Digest.parse(request.path_params["digest"])
    artifact_type = request.query_params.get("artifactType") or None
    body = await services(request).discovery.referrers(name, subject, artifact_type)
    headers = {"OCI-Filters-Applied": "artifactType"} if artifact_type else {}
    return Response(body, headers=headers, media_type=mediatypes.OCI_INDEX)
