"""The version check at `/v2/` that every client starts with."""

from __future__ import annotations

import httpx

from tests.support.registry_client import API_VERSION_HEADER


def test_version_check_returns_200_with_api_version(client: httpx.Client) -> None:
    response = client.get("/v2/")

    assert response.status_code == 200
    assert response.headers[API_VERSION_HEADER] == "registry/2.0"


def test_version_check_body_is_json(client: httpx.Client) -> None:
    response = client.get("/v2/")

    assert response.headers["content-type"].startswith("application/json")
    assert isinstance(response.json(), dict)


def test_version_check_answers_head(client: httpx.Client) -> None:
    response = client.head("/v2/")

    assert response.status_code == 200
    assert response.headers[API_VERSION_HEADER] == "registry/2.0"
    assert response.content == b""
