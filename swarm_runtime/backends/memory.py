"""``memory://``: everything kept in this process, gone when it exits (tests, embedding)."""

from __future__ import annotations

from typing import ClassVar

from ..orchestrator._runstore import MemoryRunStore, RunStore
from .base import Backend

__all__ = ["MemoryBackend"]


class MemoryBackend(Backend):
    """In-process queue, run store, agent state and handoff records."""

    scheme: ClassVar[str] = "memory"
    shared: ClassVar[bool] = False
    durable: ClassVar[bool] = False

    def _new_run_store(self) -> RunStore:
        return MemoryRunStore()
