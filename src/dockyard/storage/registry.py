"""Storage drivers register by name; settings pick one."""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any

from dockyard.storage.base import StorageDriver

_FACTORIES: dict[str, Callable[..., StorageDriver]] = {}


def register(name: str) -> Callable[[Callable[..., StorageDriver]], Any]:
    def decorate(factory: Callable[..., StorageDriver]) -> Callable[..., StorageDriver]:
        _FACTORIES[name] = factory
        return factory

    return decorate


# Built-in drivers, imported only when asked for (boto3 alone costs half a second).
BUILTIN = {
    "filesystem": "dockyard.storage.drivers.filesystem",
    "s3": "dockyard.storage.drivers.s3",
}


def available() -> list[str]:
    return sorted(set(BUILTIN) | set(_FACTORIES))


def create_driver(name: str, **options: Any) -> StorageDriver:
    if name not in _FACTORIES and name in BUILTIN:
        importlib.import_module(BUILTIN[name])
    try:
        factory = _FACTORIES[name]
    except KeyError:
        raise ValueError(
            f"unknown storage driver {name!r}; available: {', '.join(available())}"
        ) from None
    return factory(**options)
