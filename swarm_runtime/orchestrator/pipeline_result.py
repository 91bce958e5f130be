"""The outcome of a pipeline run (:class:`PipelineResult`, and :class:`RunStart` told
before it starts), and its conversion into the :class:`~swarm_runtime.report.RunReport`
that the JSON and HTML reports are written from."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ..artifacts import ArtifactRef, ArtifactStore, TableInput, is_artifact_ref
from ..errors import WorkflowError
from ..report import AlertRecord, RunReport, TaskRecord
from ._timing import agent_durations, run_critical_path
from .status import TaskStatus, WorkflowResult, WorkflowState, WorkflowStatus

if TYPE_CHECKING:
    from ..pipeline import PipelineConfig
    from ..report.model import RunStatus, Severity

__all__ = ["PipelineResult", "RunStart", "build_report"]


@dataclass(frozen=True, slots=True)
class RunStart:
    """What ``execute_pipeline`` tells ``on_start`` before the first task is dispatched."""

    run_id: str
    pipeline: str
    resumed: bool
    completed: int  # tasks completed in earlier sessions (skipped now)
    total: int
    queue: str
    metrics_url: str | None = None


@dataclass(frozen=True, slots=True)
class PipelineResult:
    """The outcome of one ``execute_pipeline``: the run's final status, results and extras.

    ``alerts`` are the monitoring alerts raised during the run (when the services ran);
    ``services`` is the services' report (metrics, circuits, errors) or None;
    ``scheduling`` the policy the run's ready tasks were ordered by.
    """

    pipeline_id: str
    config: PipelineConfig
    result: WorkflowResult
    resumed: bool
    queue: str
    alerts: tuple[dict[str, Any], ...] = ()
    services: dict[str, Any] | None = field(default=None)
    artifacts: ArtifactStore | None = field(default=None, repr=False)
    scheduling: str = "critical_path"

    def table(self, task: str) -> TableInput:
        """Task ``task``'s table result (from its artifact, or its JSON table form)."""
        value = self.results.get(task)
        if is_artifact_ref(value):
            assert isinstance(value, Mapping)
            return TableInput(ArtifactRef.from_json(value))
        if value is None and task not in self.results:
            raise WorkflowError(f"task {task!r} has no result in run {self.run_id!r}")
        return TableInput(json=value)

    @property
    def run_id(self) -> str:
        return self.result.workflow_id

    @property
    def ok(self) -> bool:
        return self.result.ok

    @property
    def status(self) -> WorkflowStatus:
        return self.result.status

    @property
    def results(self) -> Mapping[str, Any]:
        return self.result.results

    @property
    def error(self) -> str | None:
        return self.result.error

    def to_report(self) -> RunReport:
        """The run's :class:`~swarm_runtime.report.RunReport` (for the JSON / HTML reports)."""
        return build_report(self)


_RUN_STATUS: dict[WorkflowState, RunStatus] = {
    WorkflowState.PENDING: "pending",
    WorkflowState.RUNNING: "running",
    WorkflowState.COMPLETED: "completed",
    WorkflowState.FAILED: "failed",
    WorkflowState.CANCELLED: "cancelled",
    WorkflowState.INTERRUPTED: "cancelled",
}
_SEVERITY: dict[str, Severity] = {"medium": "warning", "high": "critical"}


def _time(seconds: float | None) -> dt.datetime | None:
    return None if seconds is None else dt.datetime.fromtimestamp(seconds, dt.UTC)


def _task(task: TaskStatus) -> TaskRecord:
    return TaskRecord(
        name=task.name,
        agent=task.agent,
        replica=task.replica,
        status=task.state.value,
        attempts=task.attempts,
        started_at=_time(task.started_at),
        finished_at=_time(task.finished_at),
        duration=task.duration,
        error=task.error,
        estimate=task.estimated,
    )


def _alerts(transitions: Iterable[Mapping[str, Any]]) -> list[AlertRecord]:
    """One record per alert (raised ... resolved), from the monitor's transition history."""
    found: dict[tuple[Any, ...], dict[str, Any]] = {}
    for item in transitions:
        key = (item.get("agent"), item.get("metric"), item.get("condition"), item.get("raised_at"))
        entry = found.setdefault(key, dict(item))
        entry["peak"] = max(float(entry.get("peak", 0.0)), float(item.get("peak", 0.0)))
        if item.get("severity") == "high":
            entry["severity"] = "high"
        if item.get("status") == "resolved":
            entry["resolved_at"] = item.get("updated_at")
    records = []
    for entry in found.values():
        condition = "above" if entry.get("condition") == "exceeded_max" else "below"
        records.append(
            AlertRecord(
                severity=_SEVERITY.get(str(entry.get("severity")), "warning"),
                metric=str(entry.get("metric")),
                value=float(entry.get("peak", entry.get("value", 0.0))),
                threshold=float(entry.get("threshold", 0.0)),
                raised_at=_time(float(entry.get("raised_at", 0.0))) or dt.datetime.now(dt.UTC),
                resolved_at=_time(entry.get("resolved_at")),
                agent=entry.get("agent"),
                message=f"{entry.get('metric')} {condition} {entry.get('threshold')}",
            )
        )
    return records


def build_report(result: PipelineResult) -> RunReport:
    """The report of one run: tasks (status, attempts, replica, times), alerts, results."""
    status = result.status
    config = result.config
    return RunReport(
        pipeline=status.name,
        run_id=status.workflow_id,
        status=_RUN_STATUS[status.state],
        started_at=_time(status.started_at),
        finished_at=_time(status.finished_at),
        description=config.description,
        queue=result.queue,
        tasks=[_task(task) for task in status.tasks.values()],
        alerts=_alerts(result.alerts),
        results=dict(result.results),
        edges=config.edges(),
        scheduling=result.scheduling,
        critical_path=run_critical_path(status.tasks),
        durations=agent_durations(status.tasks),
    )
