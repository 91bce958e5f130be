"""Which event loop the CLI runs on: uvloop when it is installed (the ``[uvloop]`` extra).

uvloop roughly doubles the file queue's batch throughput and speeds up the runtime's
request path (see the README, "Event loop"). ``SWARM_RUNTIME_LOOP=asyncio`` forces the
standard loop, ``=uvloop`` requires uvloop.
"""

from __future__ import annotations

import importlib.util
import os
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import anyio

from .errors import ConfigError

__all__ = ["loop_name", "run"]

T = TypeVar("T")

ENV = "SWARM_RUNTIME_LOOP"


def loop_name() -> str:
    """``"uvloop"`` or ``"asyncio"``: what :func:`run` will use."""
    choice = os.environ.get(ENV, "").strip().lower()
    if choice not in ("", "auto", "asyncio", "uvloop"):
        raise ConfigError(f"{ENV} must be 'asyncio', 'uvloop' or 'auto', got {choice!r}")
    available = importlib.util.find_spec("uvloop") is not None
    if choice == "uvloop" and not available:
        raise ConfigError(
            f"{ENV}=uvloop but uvloop is not installed: pip install 'swarm-runtime[uvloop]'"
        )
    if choice == "asyncio" or not available:
        return "asyncio"
    return "uvloop"


def run(fn: Callable[..., Awaitable[T]], *args: Any) -> T:
    """``anyio.run(fn, *args)`` on uvloop when it is installed (see :func:`loop_name`)."""
    options = {"use_uvloop": True} if loop_name() == "uvloop" else {}
    return anyio.run(fn, *args, backend_options=options)
