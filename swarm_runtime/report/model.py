"""The run report: what the orchestrator records about one run of a pipeline.

The orchestrator fills a :class:`RunReport` (tasks with their status, attempts and
timings per agent replica, monitoring alerts, task results, the DAG's edges) and
hands it to :func:`~.writers.write_json_report` / :func:`~.writers.write_html_report`.
Times are timezone-aware datetimes (naive ones are taken as UTC; epoch seconds are
accepted); durations are seconds.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError, model_validator

from .._redact import redact
from ..errors import ConfigError

if TYPE_CHECKING:
    from ..pipeline.config import PipelineConfig

__all__ = [
    "TASK_STATUSES",
    "AgentDurations",
    "AlertRecord",
    "CriticalPath",
    "RunReport",
    "RunStatus",
    "Severity",
    "TaskRecord",
    "TaskStatus",
    "load_json_report",
]

TaskStatus = Literal["pending", "running", "completed", "failed", "cancelled", "skipped"]
RunStatus = Literal["pending", "running", "completed", "failed", "cancelled"]
Severity = Literal["info", "warning", "critical"]
TASK_STATUSES: tuple[str, ...] = (
    "pending",
    "running",
    "completed",
    "failed",
    "cancelled",
    "skipped",
)


def _aware(value: dt.datetime | None) -> dt.datetime | None:
    if value is not None and value.tzinfo is None:
        return value.replace(tzinfo=dt.UTC)
    return value


Timestamp = Annotated[dt.datetime, AfterValidator(_aware)]


def _no_credentials(url: str | None) -> str | None:
    """Reports are shared: a queue URL is kept without its password."""
    return None if url is None else redact(url)


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


class TaskRecord(_Model):
    """One task of the run: who ran it, how it ended, how many attempts, when."""

    name: str
    agent: str
    replica: int | str | None = Field(
        default=None, description="which replica ran the last attempt"
    )
    status: TaskStatus = "pending"
    attempts: int = Field(default=0, ge=0)
    started_at: Timestamp | None = None
    finished_at: Timestamp | None = None
    duration: float | None = Field(
        default=None, ge=0, description="seconds; from the times if unset"
    )
    error: str | None = None
    estimate: float | None = Field(
        default=None, ge=0, description="seconds the scheduler expected when it started the task"
    )

    @model_validator(mode="after")
    def _fill_duration(self) -> TaskRecord:
        if self.duration is None and self.started_at and self.finished_at:
            self.duration = max(0.0, (self.finished_at - self.started_at).total_seconds())
        return self

    @property
    def lane(self) -> str:
        """The timeline lane: ``agent#replica`` (or the agent alone)."""
        return self.agent if self.replica is None else f"{self.agent}#{self.replica}"


class AlertRecord(_Model):
    """A monitoring alert: a metric crossed its threshold (and maybe came back)."""

    severity: Severity
    metric: str
    value: float
    threshold: float
    raised_at: Timestamp
    resolved_at: Timestamp | None = None
    agent: str | None = None
    message: str | None = None


class CriticalPath(_Model):
    """The longest chain of dependent tasks (what bounds the run's duration from below):
    measured durations where tasks ran, estimates elsewhere."""

    tasks: list[str] = Field(default_factory=list, description="in data-flow order")
    seconds: float = Field(default=0.0, ge=0, description="its length")
    estimated_seconds: float | None = Field(
        default=None, ge=0, description="the same chain under the scheduler's estimates"
    )


class AgentDurations(_Model):
    """One agent's task durations: what the scheduler expected against what they took."""

    agent: str
    tasks: int = Field(ge=0, description="completed tasks with a measured duration")
    estimated_mean: float | None = Field(default=None, ge=0, description="seconds")
    actual_mean: float | None = Field(default=None, ge=0, description="seconds")
    actual_total: float = Field(default=0.0, ge=0, description="seconds")

    @property
    def error(self) -> float | None:
        """Estimated mean over actual mean, minus one (+0.25: estimated 25% too long)."""
        if self.estimated_mean is None or not self.actual_mean:
            return None
        return self.estimated_mean / self.actual_mean - 1.0


class RunReport(_Model):
    """Everything the reports show about one run."""

    version: Literal[1] = 1
    pipeline: str
    run_id: str
    status: RunStatus = "pending"
    started_at: Timestamp | None = None
    finished_at: Timestamp | None = None
    description: str = ""
    queue: Annotated[str | None, AfterValidator(_no_credentials)] = None
    tasks: list[TaskRecord] = Field(default_factory=list)
    alerts: list[AlertRecord] = Field(default_factory=list)
    results: dict[str, Any] = Field(default_factory=dict, description="task name → JSON result")
    edges: list[tuple[str, str]] = Field(
        default_factory=list, description="(dependency, task): data flows left to right"
    )
    scheduling: str | None = Field(default=None, description="critical_path or fifo")
    critical_path: CriticalPath | None = None
    durations: list[AgentDurations] = Field(
        default_factory=list, description="per agent: estimated against actual durations"
    )

    @classmethod
    def for_pipeline(
        cls, config: PipelineConfig, run_id: str, *, started_at: dt.datetime | None = None
    ) -> RunReport:
        """A report for ``config`` with every task pending and the DAG's edges filled in."""
        return cls(
            pipeline=config.name,
            run_id=run_id,
            status="running" if started_at else "pending",
            started_at=started_at,
            description=config.description,
            queue=config.queue,
            tasks=[TaskRecord(name=t.name, agent=t.agent) for t in config.tasks],
            edges=config.edges(),
        )

    def task(self, name: str) -> TaskRecord:
        """The record of task ``name`` (KeyError if none)."""
        for record in self.tasks:
            if record.name == name:
                return record
        raise KeyError(name)

    @property
    def duration(self) -> float | None:
        """Seconds from start to finish, when both are known."""
        if self.started_at and self.finished_at:
            return max(0.0, (self.finished_at - self.started_at).total_seconds())
        return None

    def counts(self) -> dict[str, int]:
        """How many tasks ended in each status (every status listed, zeros included)."""
        found: Counter[str] = Counter(record.status for record in self.tasks)
        return {status: found.get(status, 0) for status in TASK_STATUSES}


def load_json_report(path: str | Path) -> RunReport:
    """Read a report written by ``write_json_report``; ConfigError if it is not one."""
    try:
        return RunReport.model_validate_json(Path(path).read_bytes())
    except OSError as exc:
        raise ConfigError(f"cannot read report {str(path)!r}: {exc.strerror or exc}") from exc
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "the file"
        raise ConfigError(f"{path}: not a run report ({where}: {first['msg']})") from exc
