"""ASGI middleware: request ids, the API version header, one log line a request."""

from __future__ import annotations

import logging
import os
import time
import uuid
from typing import Any

from starlette.requests import ClientDisconnect
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from dockyard.api.errors import unexpected_error_body

logger = logging.getLogger(__name__)
access_logger = logging.getLogger("dockyard.access")

API_VERSION_HEADER = (b"docker-distribution-api-version", b"registry/2.0")


class RegistryMiddleware:
    """Adds the headers every /v2 answer carries and logs the request once."""

    def __init__(self, app: ASGIApp, access_log: bool = True) -> None:
        self.app = app
        self.access_log = access_log

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        request_id = _incoming_request_id(scope) or uuid.uuid4().hex[:16]
        scope.setdefault("state", {})["request_id"] = request_id
        outcome: dict[str, Any] = {"status": 0, "bytes": 0}
        id_header = (b"x-request-id", request_id.encode())

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                outcome["status"] = message["status"]
                message["headers"] = [
                    *message.get("headers", []),
                    API_VERSION_HEADER,
                    id_header,
                ]
            elif message["type"] == "http.response.body":
                outcome["bytes"] += len(message.get("body", b""))
            elif message["type"] == "http.response.pathsend":
                outcome["bytes"] += os.path.getsize(message["path"])
            await send(message)

        try:
            await self.app(scope, receive, send_with_headers)
        except ClientDisconnect:
            # Expected now and then (a cancelled push); the client is gone, so
            # there is nobody to answer.
            outcome["status"] = outcome["status"] or 499
            logger.warning("client disconnected", extra={"request_id": request_id})
        except Exception:
            logger.exception(
                "failed to handle request",
                extra={"request_id": request_id, "path": scope["path"]},
            )
            if outcome["status"]:
                raise  # too late for an error answer: drop the connection
            await _send_unexpected_error(send_with_headers)
        finally:
            if self.access_log:
                self._log(scope, request_id, outcome, started)

    @staticmethod
    def _log(
        scope: Scope, request_id: str, outcome: dict[str, Any], started: float
    ) -> None:
        client = scope.get("client")
        access_logger.info(
            "request",
            extra={
                "request_id": request_id,
                "method": scope["method"],
                "path": scope["path"],
                "status": outcome["status"],
                "bytes": outcome["bytes"],
                "duration_ms": round((time.perf_counter() - started) * 1000, 2),
                "remote": client[0] if client else None,
            },
        )


async def _send_unexpected_error(send: Send) -> None:
    body = unexpected_error_body()
    await send(
        {
            "type": "http.response.start",
            "status": 500,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


def _incoming_request_id(scope: Scope) -> str | None:
    for name, value in scope["headers"]:
        if name == b"x-request-id":
            text = value.decode("latin-1")
            return text[:64] if text.isprintable() else None
    return None
