"""Backends chosen by URL scheme, imported lazily (optional drivers stay optional)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..queue import _registry as queues

if TYPE_CHECKING:
    from ..queue.base import MessageQueue
    from .base import Backend

__all__ = ["BACKENDS", "backend_class", "backend_of"]

#: scheme -> "module:class" of its backend (the queue registry names its queue)
BACKENDS: dict[str, str] = {
    "memory": "swarm_runtime.backends.memory:MemoryBackend",
    "file": "swarm_runtime.backends.file:FileBackend",
    "redis": "swarm_runtime.backends.redis:RedisBackend",
    "rediss": "swarm_runtime.backends.redis:RedisBackend",  # Redis over TLS
}


def backend_class(url: str) -> type[Backend]:
    """The backend class for a queue URL (its capabilities are class attributes)."""
    scheme, _url = queues.split_url(url)
    cls: type[Backend] = queues.load(scheme, BACKENDS[scheme])
    return cls


def backend_of(queue: MessageQueue) -> type[Backend]:
    """The backend class for an opened queue; a queue of another scheme (a user's own
    :class:`MessageQueue` subclass) gets the in-process stores of ``memory://``."""
    target = BACKENDS.get(queue.scheme, BACKENDS["memory"])
    cls: type[Backend] = queues.load(queue.scheme, target)
    return cls
