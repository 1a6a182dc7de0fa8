"""Build the ASGI application from settings: services, routes, middleware."""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

from starlette.applications import Starlette
from starlette.middleware import Middleware

from dockyard import logging as dockyard_logging
from dockyard.api.errors import EXCEPTION_HANDLERS
from dockyard.api.middleware import RegistryMiddleware
from dockyard.api.routes import ROUTES
from dockyard.server import SETTINGS_ENV
from dockyard.services.container import build_services
from dockyard.settings import Settings, from_environment, load_settings

logger = logging.getLogger(__name__)


def create_app(
    settings: Settings, on_ready: Callable[[], None] | None = None
) -> Starlette:
    """The application; `on_ready` is called once its services are up."""

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        app.state.services = build_services(settings)
        logger.info(
            "registry ready",
            extra={
                "pid": os.getpid(),
                "storage": settings.storage.driver,
                "database": app.state.services.store.dialect,
            },
        )
        upkeep = asyncio.create_task(
            app.state.services.maintenance.loop(settings.registry.maintenance_interval)
        )
        app.state.services.pulls.start()
        if on_ready is not None:
            on_ready()
        try:
            yield
        finally:
            upkeep.cancel()
            await app.state.services.pulls.stop()
            await app.state.services.close()

    return Starlette(
        routes=ROUTES,
        middleware=[Middleware(RegistryMiddleware, access_log=settings.log.access)],
        exception_handlers=dict(EXCEPTION_HANDLERS),
        lifespan=lifespan,
    )


def create_app_from_environment() -> Starlette:
    """The factory ASGI servers call: `uvicorn --factory dockyard.app:...`."""
    serialized = os.environ.get(SETTINGS_ENV)
    settings = from_environment(serialized) if serialized else load_settings()
    dockyard_logging.configure(settings.log.level, settings.log.format)
    return create_app(settings)
