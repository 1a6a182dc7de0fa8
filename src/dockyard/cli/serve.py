"""`dockyard serve`: migrate the database, then hand over to the ASGI server."""

from __future__ import annotations

import argparse
import logging
import os
import socket
import sys
from typing import Any

from dockyard import logging as dockyard_logging
from dockyard.cli.options import add_config_option, settings_from
from dockyard.server import LISTEN_BACKLOG, LISTENER_ENV, SETTINGS_ENV
from dockyard.settings import Settings, to_environment

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
    try:
        listener = _listen(settings.http.host, settings.http.port)
    except OSError as exc:
        print(
            f"dockyard serve: cannot listen on {settings.http.host}:"
            f"{settings.http.port}: {exc.strerror or exc}",
            file=sys.stderr,
        )
        return 1
    settings.data_dir.mkdir(parents=True, exist_ok=True)

    from dockyard.metadata import migrate

    migrate.upgrade(settings.database_url)
    if settings.auth.enabled:
        from dockyard.cli.bootstrap import prepare_auth

        prepare_auth(settings)
    logger.info(
        "starting",
        extra={
            "address": f"{settings.http.host}:{settings.http.port}",
            "server": settings.http.server,
            "workers": settings.http.workers,
            "data_dir": str(settings.data_dir.resolve()),
        },
    )
    # Replace this process (same pid, so signals and supervisors still reach it)
    # with a small supervisor that holds none of what the migration loaded.
    os.environ[SETTINGS_ENV] = to_environment(settings)
    if settings.http.server == "uvicorn":
        listener.close()  # uvicorn binds its own
    else:
        # Kept open through the exec, and inherited by every worker.
        listener.set_inheritable(True)
        os.environ[LISTENER_ENV] = str(listener.fileno())
    sys.stdout.flush()
    sys.stderr.flush()
    os.execv(sys.executable, [sys.executable, *_server_command(settings)])


def _server_command(settings: Settings) -> list[str]:
    if settings.http.server == "uvicorn":
        return ["-m", "dockyard.server.uvicorn_server"]
    return [
        "-m",
        "dockyard.server.supervisor",
        f"--workers={settings.http.workers}",
        f"--log-level={settings.log.level}",
        f"--log-format={settings.log.format}",
    ]


def _listen(host: str, port: int) -> socket.socket:
    """The server's listening socket, bound before anything else is done.

    One socket that every worker accepts on: a worker that stops (a reload, a
    crash) leaves the connections still queued to the others, where sockets of
    their own with SO_REUSEPORT would drop those queued on the one closing. It
    also makes a taken address fail here, with a clear message, before the
    migration; without SO_REUSEPORT a second registry cannot bind where another
    listens (SO_REUSEADDR still allows connections in TIME_WAIT).
    """
    family = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0][0]
    listener = socket.socket(family, socket.SOCK_STREAM)
    try:
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind((host, port))
        listener.listen(LISTEN_BACKLOG)
    except OSError:
        listener.close()
        raise
    return listener
