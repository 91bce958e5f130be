"""Backends chosen by URL scheme and imported lazily."""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from ..errors import BackendUnavailableError, ConfigError

if TYPE_CHECKING:
    from .base import MessageQueue

__all__ = ["BACKENDS", "create"]

#: scheme -> "module:class"; imported only when used, so optional drivers stay optional.
BACKENDS: dict[str, str] = {
    "memory": "swarm_runtime.queue.memory:MemoryQueue",
    "file": "swarm_runtime.queue.file:FileQueue",
    "redis": "swarm_runtime.queue.redis:RedisQueue",
}

_EXTRAS = {"redis": "redis"}


def create(url: str, **options: Any) -> MessageQueue:
    """An unopened queue for ``url`` (``memory://``, ``file://DIR`` or a path, ``redis://...``)."""
    if not isinstance(url, str) or not url:
        raise ConfigError(f"queue URL must be a non-empty string, got {url!r}")
    scheme, sep, _rest = url.partition("://")
    if not sep:
        scheme, url = "file", f"file://{url}"
    scheme = scheme.lower()
    target = BACKENDS.get(scheme)
    if target is None:
        raise ConfigError(
            f"unknown queue URL scheme {scheme!r} in {url!r}; use one of: "
            + ", ".join(f"{name}://" for name in BACKENDS)
        )
    module_name, _, class_name = target.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        extra = _EXTRAS.get(scheme)
        hint = f"; install it with: pip install 'swarm-runtime[{extra}]'" if extra else ""
        raise BackendUnavailableError(
            f"the {scheme}:// queue backend cannot be loaded ({exc}){hint}"
        ) from exc
    cls: type[MessageQueue] = getattr(module, class_name)
    return cls.from_url(url, **options)
