"""The one table of registry error codes, and the exception that carries them.

Every error the API answers comes from here, so the code, its default message and
its HTTP status stay consistent across handlers.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True, slots=True)
class ErrorCode:
    code: str
    message: str
    status: int


BLOB_UNKNOWN = ErrorCode("BLOB_UNKNOWN", "blob unknown to registry", 404)
BLOB_UPLOAD_INVALID = ErrorCode("BLOB_UPLOAD_INVALID", "blob upload invalid", 400)
BLOB_UPLOAD_UNKNOWN = ErrorCode(
    "BLOB_UPLOAD_UNKNOWN", "blob upload unknown to registry", 404
)
DIGEST_INVALID = ErrorCode(
    "DIGEST_INVALID", "provided digest did not match uploaded content", 400
)
MANIFEST_BLOB_UNKNOWN = ErrorCode(
    "MANIFEST_BLOB_UNKNOWN", "manifest references a blob unknown to registry", 400
)
MANIFEST_INVALID = ErrorCode("MANIFEST_INVALID", "manifest invalid", 400)
MANIFEST_TOO_LARGE = ErrorCode("MANIFEST_INVALID", "manifest too large", 413)
MANIFEST_UNKNOWN = ErrorCode("MANIFEST_UNKNOWN", "manifest unknown to registry", 404)
NAME_INVALID = ErrorCode("NAME_INVALID", "invalid repository name", 400)
NAME_UNKNOWN = ErrorCode("NAME_UNKNOWN", "repository name not known to registry", 404)
SIZE_INVALID = ErrorCode(
    "SIZE_INVALID", "provided length did not match content length", 400
)
TAG_INVALID = ErrorCode("TAG_INVALID", "invalid tag", 400)
UNAUTHORIZED = ErrorCode("UNAUTHORIZED", "authentication required", 401)
DENIED = ErrorCode("DENIED", "requested access to the resource is denied", 403)
UNSUPPORTED = ErrorCode("UNSUPPORTED", "the operation is unsupported", 405)
UNSUPPORTED_DIGEST = ErrorCode("UNSUPPORTED", "digest algorithm not supported", 400)
TOOMANYREQUESTS = ErrorCode("TOOMANYREQUESTS", "too many requests", 429)
RANGE_INVALID = ErrorCode("RANGE_INVALID", "invalid content range", 416)
PAGINATION_NUMBER_INVALID = ErrorCode(
    "PAGINATION_NUMBER_INVALID", "invalid number of results requested", 400
)
UNAVAILABLE = ErrorCode("UNAVAILABLE", "service unavailable", 503)
UNKNOWN = ErrorCode("UNKNOWN", "unknown error", 500)
# Unknown endpoints: the spec has no code for them, and UNSUPPORTED says it best.
NOT_FOUND = ErrorCode("UNSUPPORTED", "no such endpoint", 404)
METHOD_NOT_ALLOWED = ErrorCode("UNSUPPORTED", "method not allowed", 405)


class RegistryError(Exception):
    """A failure that the API reports in the spec's JSON error envelope."""

    def __init__(
        self,
        error: ErrorCode,
        message: str | None = None,
        detail: Any = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        self.error = error
        self.message = message or error.message
        self.detail = detail
        self.headers = headers or {}
        super().__init__(f"{error.code}: {self.message}")

    @property
    def status(self) -> int:
        return self.error.status

    def envelope(self) -> dict[str, Any]:
        entry: dict[str, Any] = {"code": self.error.code, "message": self.message}
        if self.detail is not None:
            entry["detail"] = self.detail
        return {"errors": [entry]}
