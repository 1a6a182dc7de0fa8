"""The route table: every endpoint of the distribution spec, by area."""

from __future__ import annotations

from dockyard.api import base, blobs, discovery, management, manifests, token, uploads
from dockyard.api.common import route

_NAME = "/v2/{name:path}"


# Routes are tried in order: the busiest come first, and where patterns overlap
# upload URLs come before blob URLs (`.../blobs/uploads` is also a blob path).
ROUTES = [
    route(
        f"{_NAME}/manifests/{{reference}}",
        GET=manifests.get_manifest,
        PUT=manifests.put_manifest,
        DELETE=manifests.delete_manifest,
    ),
    route(f"{_NAME}/blobs/uploads/", POST=uploads.start_upload),
    route(f"{_NAME}/blobs/uploads", POST=uploads.start_upload),
    route(
        f"{_NAME}/blobs/uploads/{{upload_id}}",
        GET=uploads.upload_status,
        PATCH=uploads.patch_upload,
        PUT=uploads.finish_upload,
        DELETE=uploads.cancel_upload,
    ),
    route(f"{_NAME}/blobs/{{digest}}", GET=blobs.get_blob, DELETE=blobs.delete_blob),
    route(f"{_NAME}/tags/list", GET=discovery.list_tags),
    route("/v2/", GET=base.version_check),
    route("/v2/_catalog", GET=discovery.catalog),
    route("/auth/token", GET=token.token, POST=token.token),
    route(f"{_NAME}/referrers/{{digest}}", GET=discovery.list_referrers),
    *management.ROUTES,
]
