"""Backends chosen by URL scheme and imported lazily."""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from ..errors import BackendUnavailableError, ConfigError

if TYPE_CHECKING:
    from .base import MessageQueue

__all__ = ["BACKENDS", "check_url", "create", "load", "split_url"]

#: scheme -> "module:class"; imported only when used, so optional drivers stay optional.
BACKENDS: dict[str, str] = {
    "memory": "swarm_runtime.queue.memory:MemoryQueue",
    "file": "swarm_runtime.queue.file:FileQueue",
    "redis": "swarm_runtime.queue.redis:RedisQueue",
    "rediss": "swarm_runtime.queue.redis:RedisQueue",  # Redis over TLS
}

_EXTRAS = {"redis": "redis", "rediss": "redis"}

#: scheme -> "module:function" checking a URL's syntax without loading a driver
_URL_CHECKS = {"file": "swarm_runtime.queue.file._options:parse_url"}


def split_url(url: str) -> tuple[str, str]:
    """``(scheme, url)`` of a queue URL, lower-cased; a plain path is a ``file://`` URL."""
    if not isinstance(url, str) or not url:
        raise ConfigError(f"queue URL must be a non-empty string, got {url!r}")
    scheme, sep, _rest = url.partition("://")
    if not sep:
        scheme, url = "file", f"file://{url}"
    scheme = scheme.lower()
    if scheme not in BACKENDS:
        raise ConfigError(
            f"unknown queue URL scheme {scheme!r}; expected one of: "
            + ", ".join(f"{name}://" for name in BACKENDS)
        )
    return scheme, url


def check_url(url: str) -> str:
    """``url`` if it is a well-formed queue URL (:class:`ConfigError` saying what is wrong
    otherwise); loads no driver and touches nothing, so configs can check URLs early."""
    scheme, full = split_url(url)
    checker = _URL_CHECKS.get(scheme)
    if checker is not None:
        load(scheme, checker)(full)
    return url


def load(scheme: str, target: str) -> Any:
    """Import ``"module:attr"`` for ``scheme``; a missing driver is a
    :class:`BackendUnavailableError` naming the extra to install."""
    module_name, _, attr = target.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        extra = _EXTRAS.get(scheme)
        hint = f"; install it with: pip install 'swarm-runtime[{extra}]'" if extra else ""
        raise BackendUnavailableError(
            f"the {scheme}:// queue backend cannot be loaded ({exc}){hint}"
        ) from exc
    return getattr(module, attr)


def create(url: str, **options: Any) -> MessageQueue:
    """An unopened queue for ``url`` (``memory://``, ``file://DIR`` or a path, ``redis://...``)."""
    scheme, url = split_url(url)
    cls: type[MessageQueue] = load(scheme, BACKENDS[scheme])
    return cls.from_url(url, **options)
