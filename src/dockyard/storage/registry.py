"""Storage drivers register by name; settings pick one."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from dockyard.storage.base import StorageDriver

_FACTORIES: dict[str, Callable[..., StorageDriver]] = {}


def register(name: str) -> Callable[[Callable[..., StorageDriver]], Any]:
    def decorate(factory: Callable[..., StorageDriver]) -> Callable[..., StorageDriver]:
        _FACTORIES[name] = factory
        return factory

    return decorate


def available() -> list[str]:
    _load_builtin()
    return sorted(_FACTORIES)


def create_driver(name: str, **options: Any) -> StorageDriver:
    _load_builtin()
    try:
        factory = _FACTORIES[name]
    except KeyError:
        raise ValueError(
            f"unknown storage driver {name!r}; available: {', '.join(available())}"
        ) from None
    return factory(**options)


def _load_builtin() -> None:
    # Imported here so that registering a driver never costs an import at start-up
    # for backends that are not configured.
    from dockyard.storage.drivers import filesystem  # noqa: F401
