"""Orchestration: workflows (DAGs of tasks run by agents through the queue) and pipelines.

:class:`WorkflowOrchestrator` (seed slide 5) schedules a DAG on a runtime's agents and
keeps durable, resumable runs; :class:`DataPipelineOrchestrator` (seed slide 11) runs a
YAML pipeline end to end on a runtime it builds.
"""

from __future__ import annotations

from ..backends.file import DirectoryRunStore
from ._runstore import MemoryRunStore, RunStore, RunSummary
from .data_pipeline import DataPipelineOrchestrator
from .pipeline_result import PipelineResult, RunStart
from .status import (
    Attempt,
    TaskState,
    TaskStatus,
    WorkflowResult,
    WorkflowState,
    WorkflowStatus,
)
from .workflow import TaskInput, WorkflowOrchestrator, new_run_id

__all__ = [
    "Attempt",
    "DataPipelineOrchestrator",
    "DirectoryRunStore",
    "MemoryRunStore",
    "PipelineResult",
    "RunStart",
    "RunStore",
    "RunSummary",
    "TaskInput",
    "TaskState",
    "TaskStatus",
    "WorkflowOrchestrator",
    "WorkflowResult",
    "WorkflowState",
    "WorkflowStatus",
    "new_run_id",
]
