"""``file://DIR``: the durable embedded default, everything under one directory.

The queue is :mod:`swarm_runtime.queue.file` (one process owns the directory at a time);
workflow runs live in ``DIR/runs`` (:mod:`._runs`), table artifacts in
``DIR/artifacts`` and LLM step journals in ``DIR/llm`` (:mod:`._journal`). Agent state and
handoffs are in-process (a file queue has one owner).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, ClassVar

from ...orchestrator._runstore import RunStore
from ...queue.file import FileQueue
from ..base import Backend
from ._runs import DirectoryRunStore

if TYPE_CHECKING:
    from ...llm.journal import StepJournal

__all__ = ["DirectoryRunStore", "FileBackend"]


class FileBackend(Backend):
    """Queue and runs on local disk, durable across crashes and restarts."""

    scheme: ClassVar[str] = "file"
    shared: ClassVar[bool] = False
    durable: ClassVar[bool] = True
    #: inspecting a queue another process owns: read-only, no lock taken
    inspection_options: ClassVar[Mapping[str, Any]] = MappingProxyType({"read_only": True})
    queue: FileQueue

    @property
    def artifact_location(self) -> str:
        return os.path.join(self.queue.directory, "artifacts")

    def _new_run_store(self) -> RunStore:
        return DirectoryRunStore(os.path.join(self.queue.directory, "runs"))

    def _new_step_journal(self) -> StepJournal:
        from ._journal import FileStepJournal

        return FileStepJournal(self.queue.directory)

    @classmethod
    def _journal_at(cls, url: str) -> StepJournal:
        from ...queue.file._options import parse_url
        from ._journal import FileStepJournal

        return FileStepJournal(parse_url(url)[0] or ".")
