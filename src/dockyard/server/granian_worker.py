"""One worker process: granian's embedded server running the application.

The workers all accept on the listening socket `dockyard serve` bound and
passed down (its descriptor number in `LISTENER_ENV`): connections queued on it
outlive any one worker. Once the application's services are up, the worker tells
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
from granian._granian import SocketHolder
from granian.constants import Interfaces
from granian.log import LogLevels
from granian.server.embed import Server

from dockyard import logging as dockyard_logging
from dockyard.app import create_app
from dockyard.server import LISTEN_BACKLOG, LISTENER_ENV, SETTINGS_ENV
from dockyard.server.supervisor import LIFELINE_ENV, READY_SIGNAL
from dockyard.settings import Settings, TlsSettings, from_environment

logger = logging.getLogger("dockyard.server.granian_worker")


class _DropExperimentalNotice(logging.Filter):
    # The embedded server warns that it is experimental each time it starts;
    # that is our choice, made once, not news for the operator on every start.
    def filter(self, record: logging.LogRecord) -> bool:
        return "experimental" not in record.getMessage()


class _InheritedListenerServer(Server):
    """granian's embedded server, accepting on a socket it was handed.

    On Linux granian would bind a socket of its own with SO_REUSEPORT: the
    kernel then deals each new connection to one worker, which holds it while
    stuck and drops those still queued when it stops. granian's server takes
    a bound socket where SO_REUSEPORT is missing (`SocketHolder`, its hook
    `_init_shared_socket`): this uses that path with ours.
    """

    def __init__(self, *args: Any, listener_fd: int, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._listener_fd = listener_fd

    # granian's attributes are declared None and its stub of SocketHolder
    # lacks the constructor (descriptor, is a Unix socket, backlog).
    def _init_shared_socket(self) -> None:
        self._ssp = None
        self._shd = SocketHolder(  # type: ignore[assignment]
            self._listener_fd,
            False,
            LISTEN_BACKLOG,  # type: ignore[call-arg]
        )
        self._sfd = self._listener_fd  # type: ignore[assignment]


def build_server(settings: Settings) -> Server:
    http, log = settings.http, settings.log

    def application() -> Any:
        dockyard_logging.configure(log.level, log.format)
        supervised = LIFELINE_ENV in os.environ
        return create_app(settings, on_ready=_tell_supervisor if supervised else None)

    server = _InheritedListenerServer(
        application,
        listener_fd=int(os.environ[LISTENER_ENV]),
        factory=True,
        address=http.host,
        port=http.port,
        interface=Interfaces.ASGI,
        backlog=LISTEN_BACKLOG,
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
