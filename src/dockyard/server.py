"""Run the ASGI server for settings that `dockyard serve` already resolved.

`dockyard serve` migrates the database and then replaces itself with this module
(`exec`), so the supervising process never holds SQLAlchemy, Alembic or the
application in memory: only the workers import them. The settings arrive as JSON
in the environment, which the workers read again to build the application.
"""

from __future__ import annotations

import json
import os
from typing import Any

from dockyard import logging as dockyard_logging

SETTINGS_ENV = "DOCKYARD_SETTINGS_JSON"
APP_FACTORY = "dockyard.app:create_app_from_environment"


def _serve_granian(http: dict[str, Any], log: dict[str, Any]) -> None:
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
    ).serve()


def _serve_uvicorn(http: dict[str, Any], log: dict[str, Any]) -> None:
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
    )


def main() -> None:
    settings = json.loads(os.environ[SETTINGS_ENV])
    http, log = settings["http"], settings["log"]
    if http["server"] == "granian":
        _serve_granian(http, log)
    else:
        _serve_uvicorn(http, log)


if __name__ == "__main__":
    main()
