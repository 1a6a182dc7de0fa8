"""The operator's view: one structured log line per request, ids that connect."""

from __future__ import annotations

import json
import time
import uuid
from pathlib import Path

import httpx

from tests.support.server import RegistryServer


def _wait_for_line(server: RegistryServer, needle: str) -> str:
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        for line in server.logs().splitlines():
            if needle in line:
                return line
        time.sleep(0.05)
    raise AssertionError(f"no log line contains {needle!r}")


def test_request_id_is_echoed_and_logged_with_the_outcome(
    registry: RegistryServer, client: httpx.Client
) -> None:
    request_id = f"test-{uuid.uuid4().hex[:12]}"
    response = client.get("/v2/", headers={"X-Request-Id": request_id})
    assert response.headers["x-request-id"] == request_id

    line = _wait_for_line(registry, f"request_id={request_id}")
    assert "dockyard.access request" in line
    for field in ("method=GET", "path=/v2/", "status=200", "bytes=2", "duration_ms="):
        assert field in line


def test_every_response_gets_a_fresh_request_id(client: httpx.Client) -> None:
    first = client.get("/v2/").headers["x-request-id"]
    second = client.get("/v2/").headers["x-request-id"]
    assert first and second and first != second


def test_json_log_format_writes_one_object_per_request(tmp_path: Path) -> None:
    server = RegistryServer(tmp_path / "data", extra_args=("--log-format", "json"))
    with server:
        request_id = f"json-{uuid.uuid4().hex[:12]}"
        httpx.get(
            f"{server.url}/v2/nothing/tags/list", headers={"X-Request-Id": request_id}
        )
        line = _wait_for_line(server, request_id)
    entry = json.loads(line)
    assert entry["logger"] == "dockyard.access"
    assert entry["request_id"] == request_id
    assert entry["status"] == 404
    assert entry["path"] == "/v2/nothing/tags/list"
