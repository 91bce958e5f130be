"""Tiny user agents for the command-line tests (importable as ``tests.cli._agents:NAME``)."""

from __future__ import annotations

from typing import Any

import swarm_runtime as sr


async def noop(msg: sr.Message, ctx: sr.Context) -> Any:
    """Return nothing, or fail when ``params.fail`` is true."""
    if msg.payload["params"].get("fail"):
        raise RuntimeError(f"boom in {msg.payload['params'].get('task', '?')}")
    return None
