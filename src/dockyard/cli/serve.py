"""`dockyard serve`: migrate the database, then run the ASGI server."""

from __future__ import annotations

import argparse
import logging
import os
from typing import Any

import uvicorn

from dockyard import logging as dockyard_logging
from dockyard.app import SETTINGS_ENV, create_app
from dockyard.cli.options import add_config_option, settings_from
from dockyard.metadata import migrate
from dockyard.settings import Settings

logger = logging.getLogger(__name__)


def register(commands: Any) -> None:
    serve = commands.add_parser("serve", help="run the registry")
    add_config_option(serve)
    serve.add_argument("--host", help="address to listen on (default 127.0.0.1)")
    serve.add_argument("--port", type=int, help="port to listen on (default 5000)")
    serve.add_argument("--workers", type=int, help="worker processes (default 1)")
    serve.add_argument("--server", choices=["granian", "uvicorn"], help="ASGI server")
    serve.add_argument("--log-level", choices=["debug", "info", "warning", "error"])
    serve.add_argument("--log-format", choices=["text", "json"])
    serve.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    settings = settings_from(
        args,
        http={
            "host": args.host,
            "port": args.port,
            "workers": args.workers,
            "server": args.server,
        },
        log={"level": args.log_level, "format": args.log_format},
    )
    if settings is None:
        return 2
    dockyard_logging.configure(settings.log.level, settings.log.format)
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    migrate.upgrade(settings.database_url)
    logger.info(
        "starting",
        extra={
            "address": f"{settings.http.host}:{settings.http.port}",
            "workers": settings.http.workers,
            "data_dir": str(settings.data_dir.resolve()),
        },
    )
    _serve(settings)
    return 0


def _serve(settings: Settings) -> None:
    if settings.http.server == "granian":
        _serve_granian(settings)
    else:
        _serve_uvicorn(settings)


def _serve_granian(settings: Settings) -> None:
    from granian.constants import Interfaces, Loops
    from granian.server import Server

    # Granian imports the application in each worker, so the resolved settings
    # travel through the environment even with one worker.
    os.environ[SETTINGS_ENV] = settings.model_dump_json()
    Server(
        "dockyard.app:create_app_from_environment",
        factory=True,
        address=settings.http.host,
        port=settings.http.port,
        interface=Interfaces.ASGI,
        workers=settings.http.workers,
        loop=Loops.uvloop,
        log_access=False,
        log_level=settings.log.level,  # type: ignore[arg-type]
        log_dictconfig=dockyard_logging.server_log_config(
            settings.log.level, settings.log.format
        ),
    ).serve()


def _serve_uvicorn(settings: Settings) -> None:
    options: dict[str, Any] = {
        "host": settings.http.host,
        "port": settings.http.port,
        "loop": "uvloop",
        "http": "httptools",
        "log_config": None,
        "access_log": False,
        "server_header": False,
        "lifespan": "on",
    }
    if settings.http.workers == 1:
        uvicorn.run(create_app(settings), **options)
        return
    # Worker processes rebuild the app from the settings resolved here, so
    # flags and the environment apply to them exactly as to this process.
    os.environ[SETTINGS_ENV] = settings.model_dump_json()
    uvicorn.run(
        "dockyard.app:create_app_from_environment",
        factory=True,
        workers=settings.http.workers,
        **options,
    )
