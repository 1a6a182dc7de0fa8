"""One worker process: granian's embedded server running the application.

Each worker binds the address itself; granian's sockets use `SO_REUSEPORT`, so
the kernel spreads new connections over the workers, as it does for granian's
own worker processes. Once the application's services are up, the worker tells
its supervisor (`READY_SIGNAL`). It stops gracefully (in-flight requests finish,
then the application's shutdown runs) on SIGTERM, on SIGINT, or when its
supervisor is gone: the supervisor holds the write end of a pipe whose read end
it passes down (its descriptor number in `LIFELINE_ENV`), and end of file on it
means the supervisor died without stopping us.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
from collections.abc import Callable
from typing import Any

import uvloop
from granian.constants import Interfaces
from granian.log import LogLevels
from granian.server.embed import Server

from dockyard import logging as dockyard_logging
from dockyard.app import create_app
from dockyard.server import SETTINGS_ENV
from dockyard.server.supervisor import LIFELINE_ENV, READY_SIGNAL
from dockyard.settings import Settings, TlsSettings, from_environment

# granian's own default for its worker processes (the embedded server's is 128).
BACKLOG = 1024

logger = logging.getLogger("dockyard.server.granian_worker")


class _DropExperimentalNotice(logging.Filter):
    # The embedded server warns that it is experimental each time it starts;
    # that is our choice, made once, not news for the operator on every start.
    def filter(self, record: logging.LogRecord) -> bool:
        return "experimental" not in record.getMessage()


def build_server(settings: Settings) -> Server:
    http, log = settings.http, settings.log

    def application() -> Any:
        dockyard_logging.configure(log.level, log.format)
        supervised = LIFELINE_ENV in os.environ
        return create_app(settings, on_ready=_tell_supervisor if supervised else None)

    server = Server(
        application,
        factory=True,
        address=http.host,
        port=http.port,
        interface=Interfaces.ASGI,
        backlog=BACKLOG,
        log_access=False,
        log_level=_granian_level(log.level),
        log_dictconfig=dockyard_logging.server_log_config(log.level, log.format),
        **_tls_options(settings.tls),
    )
    logging.getLogger("_granian").addFilter(_DropExperimentalNotice())
    return server


def _tell_supervisor() -> None:
    os.kill(os.getppid(), READY_SIGNAL)


def _granian_level(level: str) -> LogLevels:
    # granian announces each start at INFO, once per worker and naming every one
    # "worker-1"; the supervisor's own lines say the same with the process ids.
    return LogLevels.warning if level == "info" else LogLevels(level)


def _tls_options(tls: TlsSettings) -> dict[str, Any]:
    if tls.cert is None:
        return {}
    options: dict[str, Any] = {"ssl_cert": tls.cert, "ssl_key": tls.key}
    if tls.client_ca is not None:
        options["ssl_ca"] = tls.client_ca
        options["ssl_client_verify"] = True
    return options


async def serve(settings: Settings) -> None:
    server = build_server(settings)
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, server.stop)
    lifeline = os.environ.get(LIFELINE_ENV)
    if lifeline is not None:
        fd = int(lifeline)
        loop.add_reader(fd, _supervisor_gone, loop, fd, server.stop)
    await server.serve()


def _supervisor_gone(
    loop: asyncio.AbstractEventLoop, lifeline: int, stop: Callable[[], object]
) -> None:
    loop.remove_reader(lifeline)
    logger.warning("supervisor gone, stopping", extra={"pid": os.getpid()})
    stop()


def main() -> None:
    settings = from_environment(os.environ[SETTINGS_ENV])
    uvloop.run(serve(settings))


if __name__ == "__main__":
    main()
