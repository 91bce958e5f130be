"""``memory://``: everything kept in this process, gone when it exits (tests, embedding)."""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar

from ..orchestrator._runstore import MemoryRunStore, RunStore
from .base import Backend

if TYPE_CHECKING:
    from ..artifacts import ArtifactStore
    from ..llm.journal import StepJournal

__all__ = ["MemoryBackend"]


class MemoryBackend(Backend):
    """In-process queue, run store, agent state and handoff records."""

    scheme: ClassVar[str] = "memory"
    shared: ClassVar[bool] = False
    durable: ClassVar[bool] = False
    _artifacts: ArtifactStore | None = None

    def _new_run_store(self) -> RunStore:
        return MemoryRunStore()

    def artifact_store(self, location: str | None = None) -> ArtifactStore:
        """Tables in this process's memory (one store per backend), unless a directory is
        given."""
        if location is not None:
            return super().artifact_store(location)
        if self._artifacts is None:
            from ..artifacts import MemoryArtifactStore

            self._artifacts = MemoryArtifactStore()
        return self._artifacts

    def _new_step_journal(self) -> StepJournal:
        from ..llm.journal import MemoryStepJournal

        return MemoryStepJournal()

    @classmethod
    def _journal_at(cls, url: str) -> StepJournal:
        from ..llm.journal import MemoryStepJournal

        return MemoryStepJournal()
