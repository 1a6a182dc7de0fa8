"""The route table: every endpoint of the distribution spec, by area."""

from __future__ import annotations

from starlette.routing import Route

from dockyard.api import base, blobs, discovery, manifests, uploads

_NAME = "/v2/{name:path}"
_UPLOAD = f"{_NAME}/blobs/uploads/{{upload_id}}"

# Order matters where patterns overlap: upload URLs before blob URLs.
ROUTES = [
    Route("/v2/", base.version_check, methods=["GET"]),
    Route("/v2/_catalog", discovery.catalog, methods=["GET"]),
    Route(f"{_NAME}/blobs/uploads/", uploads.start_upload, methods=["POST"]),
    Route(f"{_NAME}/blobs/uploads", uploads.start_upload, methods=["POST"]),
    Route(_UPLOAD, uploads.upload_status, methods=["GET"]),
    Route(_UPLOAD, uploads.patch_upload, methods=["PATCH"]),
    Route(_UPLOAD, uploads.finish_upload, methods=["PUT"]),
    Route(_UPLOAD, uploads.cancel_upload, methods=["DELETE"]),
    Route(f"{_NAME}/blobs/{{digest}}", blobs.get_blob, methods=["GET"]),
    Route(f"{_NAME}/blobs/{{digest}}", blobs.delete_blob, methods=["DELETE"]),
    Route(f"{_NAME}/manifests/{{reference}}", manifests.get_manifest, methods=["GET"]),
    Route(f"{_NAME}/manifests/{{reference}}", manifests.put_manifest, methods=["PUT"]),
    Route(
        f"{_NAME}/manifests/{{reference}}",
        manifests.delete_manifest,
        methods=["DELETE"],
    ),
    Route(f"{_NAME}/tags/list", discovery.list_tags, methods=["GET"]),
    Route(f"{_NAME}/referrers/{{digest}}", discovery.list_referrers, methods=["GET"]),
]
