"""Run the ASGI server for settings that `dockyard serve` already resolved.

`dockyard serve` migrates the database and then replaces itself with this module
(`exec`), so the supervising process never holds SQLAlchemy, Alembic or the
application in memory: only the workers import them. The settings arrive in the
environment, already checked (`dockyard.settings.to_environment`), and the workers
read them again to build the application.
"""

from __future__ import annotations

import os
from typing import Any

from dockyard import logging as dockyard_logging
from dockyard.settings import Settings, TlsSettings, from_environment

SETTINGS_ENV = "DOCKYARD_SETTINGS"
APP_FACTORY = "dockyard.app:create_app_from_environment"


def _serve_granian(settings: Settings) -> None:
    from granian.constants import Interfaces, Loops
    from granian.log import LogLevels
    from granian.server import Server

    http, log = settings.http, settings.log
    Server(
        APP_FACTORY,
        factory=True,
        address=http.host,
        port=http.port,
        interface=Interfaces.ASGI,
        workers=http.workers,
        loop=Loops.uvloop,
        log_access=False,
        log_level=LogLevels(log.level),
        log_dictconfig=dockyard_logging.server_log_config(log.level, log.format),
        **_granian_tls(settings.tls),
    ).serve()


def _granian_tls(tls: TlsSettings) -> dict[str, Any]:
    if tls.cert is None:
        return {}
    options: dict[str, Any] = {"ssl_cert": tls.cert, "ssl_key": tls.key}
    if tls.client_ca is not None:
        options["ssl_ca"] = tls.client_ca
        options["ssl_client_verify"] = True
    return options


def _serve_uvicorn(settings: Settings) -> None:
    import ssl

    import uvicorn

    http, log, tls = settings.http, settings.log, settings.tls
    dockyard_logging.configure(log.level, log.format)
    uvicorn.run(
        APP_FACTORY,
        factory=True,
        host=http.host,
        port=http.port,
        workers=http.workers if http.workers > 1 else None,
        loop="uvloop",
        http="httptools",
        log_config=None,
        access_log=False,
        server_header=False,
        lifespan="on",
        ssl_certfile=tls.cert,
        ssl_keyfile=tls.key,
        ssl_ca_certs=tls.client_ca,
        ssl_cert_reqs=ssl.CERT_REQUIRED if tls.client_ca else ssl.CERT_NONE,
    )


def main() -> None:
    settings = from_environment(os.environ[SETTINGS_ENV])
    if settings.http.server == "granian":
        _serve_granian(settings)
    else:
        _serve_uvicorn(settings)


if __name__ == "__main__":
    main()
