"""Atomic file writes for the sinks (implemented in :mod:`swarm_runtime._atomic`)."""

from __future__ import annotations

from ..._atomic import atomic_write

__all__ = ["atomic_write"]
