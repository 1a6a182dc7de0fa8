"""Run uvicorn, the alternative ASGI server (`http.server: uvicorn`).

uvicorn supervises its own worker processes, which share one listening socket.
It streams blob files from Python, so granian stays the default.
"""

from __future__ import annotations

import os
import ssl

from dockyard import logging as dockyard_logging
from dockyard.server import SETTINGS_ENV
from dockyard.settings import from_environment

APP_FACTORY = "dockyard.app:create_app_from_environment"


def main() -> None:
    import uvicorn

    settings = from_environment(os.environ[SETTINGS_ENV])
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


if __name__ == "__main__":
    main()
