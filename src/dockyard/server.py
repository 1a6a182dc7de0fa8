"""Run the ASGI server for settings that `dockyard serve` already resolved.

`dockyard serve` migrates the database and then replaces itself with this module
(`exec`), so the supervising process never holds SQLAlchemy, Alembic or the
application in memory: only the workers import them. The settings arrive as JSON
in the environment, which the workers read again to build the application.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from dockyard import logging as dockyard_logging

SETTINGS_ENV = "DOCKYARD_SETTINGS_JSON"
APP_FACTORY = "dockyard.app:create_app_from_environment"


def _serve_granian(
    http: dict[str, Any], log: dict[str, Any], tls: dict[str, Any]
) -> None:
    from granian.constants import Interfaces, Loops
    from granian.server import Server

    Server(
        APP_FACTORY,
        factory=True,
        address=http["host"],
        port=http["port"],
        interface=Interfaces.ASGI,
        workers=http["workers"],
        loop=Loops.uvloop,
        log_access=False,
        log_level=log["level"],
        log_dictconfig=dockyard_logging.server_log_config(log["level"], log["format"]),
        **_granian_tls(tls),
    ).serve()


def _granian_tls(tls: dict[str, Any]) -> dict[str, Any]:
    if not tls.get("cert"):
        return {}
    options: dict[str, Any] = {
        "ssl_cert": Path(tls["cert"]),
        "ssl_key": Path(tls["key"]),
    }
    if tls.get("client_ca"):
        options["ssl_ca"] = Path(tls["client_ca"])
        options["ssl_client_verify"] = True
    return options


def _serve_uvicorn(
    http: dict[str, Any], log: dict[str, Any], tls: dict[str, Any]
) -> None:
    import ssl

    import uvicorn

    dockyard_logging.configure(log["level"], log["format"])
    uvicorn.run(
        APP_FACTORY,
        factory=True,
        host=http["host"],
        port=http["port"],
        workers=http["workers"] if http["workers"] > 1 else None,
        loop="uvloop",
        http="httptools",
        log_config=None,
        access_log=False,
        server_header=False,
        lifespan="on",
        ssl_certfile=tls.get("cert"),
        ssl_keyfile=tls.get("key"),
        ssl_ca_certs=tls.get("client_ca"),
        ssl_cert_reqs=ssl.CERT_REQUIRED if tls.get("client_ca") else ssl.CERT_NONE,
    )


def main() -> None:
    settings = json.loads(os.environ[SETTINGS_ENV])
    http, log, tls = settings["http"], settings["log"], settings["tls"]
    if http["server"] == "granian":
        _serve_granian(http, log, tls)
    else:
        _serve_uvicorn(http, log, tls)


if __name__ == "__main__":
    main()
