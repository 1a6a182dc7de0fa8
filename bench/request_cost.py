"""CPU time per request on the hot paths, measured inside one process.

No server and no network: the ASGI application is called directly, so the
figure is what Dockyard's own code (framework, handlers, queries, logging)
costs per request, free of the load generator and the loopback. It is the
number to watch when changing the hot path; `compare.py` measures the whole
server against Distribution.

    .venv/bin/python bench/request_cost.py                 # every request kind
    .venv/bin/python bench/request_cost.py --profile head  # where the time goes
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import hashlib
import json
import logging
import os
import pstats
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from dockyard import logging as dockyard_logging
from dockyard.app import create_app
from dockyard.metadata import migrate
from dockyard.settings import Settings, validate

REPOSITORY = "bench/app"
MANIFEST = "application/vnd.oci.image.manifest.v1+json"
MISSING = "sha256:" + "0" * 64
Call = Callable[..., Awaitable[dict[str, Any]]]


def _digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def _caller(app: Any) -> Call:
    async def call(
        method: str, path: str, query: bytes = b"", body: bytes = b""
    ) -> dict[str, Any]:
        scope = {
            "type": "http",
            "method": method,
            "path": path,
            "raw_path": path.encode(),
            "query_string": query,
            "headers": [(b"host", b"bench"), (b"content-length", b"%d" % len(body))],
            "client": ("127.0.0.1", 1),
            "server": ("127.0.0.1", 5000),
            "scheme": "http",
            "http_version": "1.1",
            "root_path": "",
            "app": app,
        }
        delivered = False

        async def receive() -> dict[str, Any]:
            nonlocal delivered
            if delivered:
                await asyncio.sleep(3600)  # nothing more: the client waits
            delivered = True
            return {"type": "http.request", "body": body, "more_body": False}

        answer: dict[str, Any] = {}

        async def send(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                answer["status"] = message["status"]
                answer["headers"] = dict(message["headers"])

        await app(scope, receive, send)
        return answer

    return call


async def _push_blob(call: Call, data: bytes) -> str:
    digest = _digest(data)
    started = await call("POST", f"/v2/{REPOSITORY}/blobs/uploads/")
    assert started["status"] == 202, started
    location = started["headers"][b"location"].decode()
    done = await call("PUT", location, f"digest={digest}".encode(), data)
    assert done["status"] == 201, done
    return digest


async def _populate(call: Call, tags: int) -> None:
    config = b'{"architecture":"amd64","os":"linux"}'
    layer = os.urandom(4096)
    manifest = json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": MANIFEST,
            "config": {
                "mediaType": "application/vnd.oci.image.config.v1+json",
                "digest": await _push_blob(call, config),
                "size": len(config),
            },
            "layers": [
                {
                    "mediaType": "application/vnd.oci.image.layer.v1.tar+gzip",
                    "digest": await _push_blob(call, layer),
                    "size": len(layer),
                }
            ],
        }
    ).encode()
    for number in range(tags):
        answer = await call(
            "PUT", f"/v2/{REPOSITORY}/manifests/t{number:05d}", body=manifest
        )
        assert answer["status"] == 201, answer
    answer = await call("PUT", f"/v2/{REPOSITORY}/manifests/latest", body=manifest)
    assert answer["status"] == 201, answer


def _kinds(call: Call) -> dict[str, Callable[[], Awaitable[Any]]]:
    base = f"/v2/{REPOSITORY}"
    return {
        "head": lambda: call("HEAD", f"{base}/manifests/latest"),
        "get": lambda: call("GET", f"{base}/manifests/latest"),
        "missing": lambda: call("HEAD", f"{base}/blobs/{MISSING}"),
        "tags": lambda: call("GET", f"{base}/tags/list"),
        "ping": lambda: call("GET", "/v2/"),
        "push": lambda: _push_blob(call, os.urandom(4096)),
    }


async def _measure(
    root: Path, tags: int, requests: int, wanted: list[str], profile: bool
) -> None:
    root.mkdir(parents=True)
    url = f"sqlite:///{root / 'metadata.db'}"
    migrate.upgrade(url)
    settings = validate(
        Settings,
        {
            "storage": {"root": str(root / "blobs")},
            "database": {"url": url},
            "registry": {"maintenance_interval": 3600},
        },
    )
    dockyard_logging.configure("info", "text")
    # The access log is formatted and written as in production, to nowhere.
    handler = logging.getLogger().handlers[0]
    assert isinstance(handler, logging.StreamHandler)
    handler.setStream(open(os.devnull, "w"))  # noqa: SIM115 - for the whole run
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        call = _caller(app)
        await _populate(call, tags)
        kinds = _kinds(call)
        print(f"{'request':<10} {'us CPU':>8}  ({requests} each, {tags} tags)")
        for name in wanted:
            request = kinds[name]
            count = requests if name != "push" else max(requests // 10, 50)
            for _ in range(count // 10):
                await request()  # warm caches and compiled statements
            profiler = cProfile.Profile() if profile else None
            started = time.process_time()
            if profiler:
                profiler.enable()
            for _ in range(count):
                await request()
            if profiler:
                profiler.disable()
            spent = time.process_time() - started
            print(f"{name:<10} {spent / count * 1e6:8.1f}")
            if profiler:
                pstats.Stats(profiler).sort_stats("tottime").print_stats(25)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=3000)
    parser.add_argument("--tags", type=int, default=1000)
    parser.add_argument(
        "--profile",
        help="comma-separated kinds to run under cProfile "
        "(head, get, missing, tags, ping, push)",
    )
    parser.add_argument(
        "--only", help="comma-separated kinds to measure (default: all)"
    )
    args = parser.parse_args()
    kinds = ["head", "get", "missing", "tags", "ping", "push"]
    wanted = args.only.split(",") if args.only else kinds
    profiled = args.profile.split(",") if args.profile else []
    with tempfile.TemporaryDirectory(prefix="dockyard-cost-") as folder:
        for kind in profiled or [None]:
            asyncio.run(
                _measure(
                    Path(folder) / (kind or "all"),
                    args.tags,
                    args.requests,
                    [kind] if kind else wanted,
                    kind is not None,
                )
            )


if __name__ == "__main__":
    main()
