"""The scheduler's mutable records of a run and its tasks (private; callers get snapshots)."""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from .status import (
    ATTEMPT_FIELDS,
    TaskState,
    TaskStatus,
    TaskStatuses,
    WorkflowState,
    WorkflowStatus,
    status_of,
)

if TYPE_CHECKING:
    import anyio

    from ..pipeline.dag import Dag
    from ._durations import DurationModel, RecordedDurations
    from ._runstore import RunLog

__all__ = ["CORRELATION_PREFIX", "Run", "Task", "correlation", "task_of"]

_NO_RESULT: Any = object()
_VALUE = {state: state.value for state in TaskState}  # no enum property call per task

#: correlation ids of workflow task messages: ``wf|<run id>|<dispatch token>|<task>``
CORRELATION_PREFIX = "wf|"


def correlation(run_id: str, token: str, task: str) -> str:
    return f"{CORRELATION_PREFIX}{run_id}|{token}|{task}"


def task_of(correlation_id: str | None) -> tuple[str, str] | None:
    """``(run id, task name)`` of a workflow correlation id, None for anything else."""
    if correlation_id is None or not correlation_id.startswith(CORRELATION_PREFIX):
        return None
    parts = correlation_id.split("|", 3)
    if len(parts) != 4:
        return None
    return parts[1], parts[3]


class Task:
    """One task of a run: its definition and where it stands."""

    __slots__ = (
        "agent",
        "attempts",
        "corr",
        "deps",
        "dispatched_at",
        "error",
        "estimate",
        "estimated",
        "finished_at",
        "history",
        "max_attempts",
        "name",
        "params",
        "priority",
        "replica",
        "result",
        "resumed",
        "retry",
        "started_at",
        "state",
        "timeout",
        "wrapped",
    )

    def __init__(
        self,
        name: str,
        agent: str,
        deps: tuple[str, ...],
        params: dict[str, Any],
        *,
        priority: int = 0,
        timeout: float | None = None,
        max_attempts: int = 1,
        retry: dict[str, Any] | None = None,
        estimate: float | None = None,
    ) -> None:
        self.name = name
        self.agent = agent
        self.deps = deps
        self.params = params
        self.priority = priority
        self.timeout = timeout
        self.max_attempts = max_attempts
        self.retry = retry  # delay overrides, sent as a header for the replica
        self.wrapped = False  # its agent runs behind the orchestrator's guard
        self.estimate = estimate  # seconds the workflow's author expects (None: learn)
        self.reset()

    def reset(self) -> None:
        """Back to pending (a new session of the run will dispatch it again)."""
        self.state = TaskState.PENDING
        self.attempts = 0
        self.corr: str | None = None
        self.dispatched_at: float | None = None
        self.started_at: float | None = None
        self.finished_at: float | None = None
        self.error: str | None = None
        self.replica: int | None = None
        self.result: Any = None
        self.resumed = False
        self.estimated: float | None = None  # the estimate it was dispatched under
        # (number, agent, replica, started_at, finished_at, outcome, error) per attempt,
        # all immutable (replaced, not changed): snapshots share it, and plain tuples
        # are dropped by the GC's tracking, so finished runs do not weigh on collections
        self.history: tuple[tuple[Any, ...], ...] = ()

    def attempt_started(self, agent: str, replica: int, attempt: int, now: float) -> None:
        """A replica picked the task's message up (delivery number ``attempt``)."""
        if self.started_at is None:
            self.started_at = now
        self.attempts = attempt
        self.replica = replica
        self.history = (*self.history, (attempt, agent, replica, now, None, "running", None))

    def attempt_finished(self, outcome: str, error: str | None, now: float) -> None:
        history = self.history
        if history:
            entry = history[-1]
            if entry[4] is None:
                ended = (entry[0], entry[1], entry[2], entry[3], now, outcome, error)
                self.history = (*history[:-1], ended)

    def record(self, result: Any = _NO_RESULT) -> dict[str, Any]:
        """The run-log record of this task's end (with its ``result`` if it completed)."""
        record = {
            "k": "task",
            "name": self.name,
            "state": _VALUE[self.state],
            "agent": self.agent,
            "attempts": self.attempts,
            "dispatched_at": self.dispatched_at,
            "started_at": self.started_at,
            "finished_at": self.finished_at,
            "replica": self.replica,
            "error": self.error,
            "history": self.history,
            "at": self.finished_at or time.time(),
        }
        if self.estimated is not None:
            record["estimated"] = self.estimated
        if result is not _NO_RESULT:
            record["result"] = result
        return record

    def restore(self, record: Mapping[str, Any]) -> None:
        """Take the state of a completed task from an earlier session's record."""
        self.state = TaskState.COMPLETED
        self.result = record.get("result")
        self.attempts = int(record.get("attempts") or 0)
        self.dispatched_at = record.get("dispatched_at")
        self.started_at = record.get("started_at")
        self.finished_at = record.get("finished_at")
        self.replica = record.get("replica")
        estimated = record.get("estimated")
        self.estimated = float(estimated) if isinstance(estimated, (int, float)) else None
        history = record.get("history")
        self.history = (
            tuple(tuple(h) for h in history if isinstance(h, list) and len(h) == ATTEMPT_FIELDS)
            if isinstance(history, list)
            else ()
        )
        self.resumed = True

    def row(self) -> tuple[Any, ...]:
        """A frozen copy of this task's status fields (see :class:`TaskStatuses`)."""
        return (
            self.name,
            self.agent,
            _VALUE[self.state],
            self.deps,
            self.attempts,
            self.max_attempts,
            self.priority,
            self.dispatched_at,
            self.started_at,
            self.finished_at,
            self.error,
            self.replica,
            self.resumed,
            self.history,
            self.estimated,
        )

    def snapshot(self) -> TaskStatus:
        return status_of(self.row())


class Run:
    """One workflow run: definition, task records, and the live session's bookkeeping."""

    def __init__(
        self,
        run_id: str,
        name: str,
        tasks: dict[str, Task],
        dag: Dag,
        *,
        header: dict[str, Any],
        created_at: float,
        failure_policy: str,
        concurrency: int | None,
        agent_limits: Mapping[str, int],
        inputs: Any,
        scheduling: str = "critical_path",
    ) -> None:
        self.id = run_id
        self.name = name
        self.tasks = tasks
        self.dag = dag
        self.header = header
        self.created_at = created_at
        self.failure_policy = failure_policy
        self.concurrency = concurrency
        self.agent_limits = dict(agent_limits)
        self.inputs = inputs
        self.scheduling = scheduling  # critical_path | fifo
        #: what earlier runs of this workflow measured (read when a session starts)
        self.recorded: RecordedDurations | None = None
        #: the estimates of the last session (learned as its tasks finished)
        self.durations: DurationModel | None = None
        self.state = WorkflowState.PENDING
        self.started_at: float | None = None
        self.finished_at: float | None = None
        self.error: str | None = None
        self.sessions = 0
        self.results: dict[str, Any] = {}
        #: correlation id of each task's current dispatch -> task (what the guard checks)
        self.current: dict[str, Task] = {}
        self.topic = f"workflow.{run_id}"
        self.log: RunLog | None = None
        self.scope: anyio.CancelScope | None = None
        self.cancel_requested = False

    def snapshot(self) -> WorkflowStatus:
        return WorkflowStatus(
            workflow_id=self.id,
            name=self.name,
            state=self.state,
            created_at=self.created_at,
            tasks=TaskStatuses({name: t.row() for name, t in self.tasks.items()}),
            failure_policy=self.failure_policy,
            started_at=self.started_at,
            finished_at=self.finished_at,
            error=self.error,
            sessions=self.sessions,
        )
