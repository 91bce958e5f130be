"""Workflow and task states: the mutable records the scheduler keeps, and the frozen
snapshots handed out to callers (``get_workflow_status`` copies out, never exposes).
"""

from __future__ import annotations

import enum
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, NamedTuple

__all__ = [
    "Attempt",
    "TaskState",
    "TaskStatus",
    "TaskStatuses",
    "WorkflowResult",
    "WorkflowState",
    "WorkflowStatus",
]


class TaskState(enum.StrEnum):
    """Where one task of a workflow stands."""

    PENDING = "pending"  # waiting for its dependencies, or ready and not yet dispatched
    RUNNING = "running"  # dispatched to its agent (queued in the inbox, or being handled)
    COMPLETED = "completed"
    FAILED = "failed"  # every attempt failed (or timed out)
    CANCELLED = "cancelled"  # the workflow was cancelled, or failed fast, before it finished
    SKIPPED = "skipped"  # an upstream task failed (``continue`` policy)


FINISHED_TASK_STATES = frozenset(
    {TaskState.COMPLETED, TaskState.FAILED, TaskState.CANCELLED, TaskState.SKIPPED}
)


class WorkflowState(enum.StrEnum):
    """Where a whole workflow run stands."""

    PENDING = "pending"  # created, never executed
    RUNNING = "running"
    COMPLETED = "completed"  # every task completed
    FAILED = "failed"  # some task failed
    CANCELLED = "cancelled"  # cancel_workflow() was called
    INTERRUPTED = "interrupted"  # the executing process stopped (Ctrl-C, crash): resumable


FINISHED_WORKFLOW_STATES = frozenset(
    {WorkflowState.COMPLETED, WorkflowState.FAILED, WorkflowState.CANCELLED}
)


class Attempt(NamedTuple):
    """One delivery of a task to an agent replica (what a Gantt chart draws)."""

    number: int
    agent: str
    replica: int | None
    started_at: float
    finished_at: float | None = None
    outcome: str = "running"  # running | ok | error | timeout | cancelled
    error: str | None = None

    @property
    def duration(self) -> float | None:
        return None if self.finished_at is None else self.finished_at - self.started_at

    def to_dict(self) -> dict[str, Any]:
        return self._asdict()


class TaskStatus(NamedTuple):
    """A snapshot of one task: state, attempts and timings (wall-clock seconds).

    ``dispatched_at`` is when its message was queued, ``started_at`` when a replica
    first picked it up, ``resumed`` is True if it completed in an earlier session of
    a resumed run (it was not run again). ``estimated`` is the duration (seconds) the
    scheduler expected when it dispatched the task (given, or learned so far).
    """

    name: str
    agent: str
    state: TaskState
    depends_on: tuple[str, ...] = ()
    attempts: int = 0
    max_attempts: int = 1
    priority: int = 0
    dispatched_at: float | None = None
    started_at: float | None = None
    finished_at: float | None = None
    error: str | None = None
    replica: int | None = None
    resumed: bool = False
    history: tuple[Attempt, ...] = ()
    estimated: float | None = None

    @property
    def duration(self) -> float | None:
        """Seconds from the first start to the end (None until both are known)."""
        if self.started_at is None or self.finished_at is None:
            return None
        return max(0.0, self.finished_at - self.started_at)

    @property
    def finished(self) -> bool:
        return self.state in FINISHED_TASK_STATES


ATTEMPT_FIELDS = len(Attempt._fields)
_STATES = {state.value: state for state in TaskState}
_new_tuple = tuple.__new__  # a NamedTuple's __new__ minus its argument handling


def status_of(row: tuple[Any, ...]) -> TaskStatus:
    """The :class:`TaskStatus` of a row: its fields in order, the state as its value and
    each attempt as a plain tuple (what :class:`TaskStatuses` keeps)."""
    history = row[13]
    return _new_tuple(
        TaskStatus,
        (
            *row[:2],
            _STATES[row[2]],
            *row[3:13],
            tuple([_new_tuple(Attempt, entry) for entry in history]) if history else (),
            *row[14:],
        ),
    )


class TaskStatuses(Mapping[str, TaskStatus]):
    """Task snapshots by name (read-only), each :class:`TaskStatus` made on first access.

    The snapshot itself is one tuple of plain values per task, which Python's garbage
    collector stops tracking at its next pass: a 10,000-task run's final status then
    costs no objects that age into the old generation (they used to trigger a full
    collection, several µs per task), and statuses nobody reads are never built.
    """

    __slots__ = ("_made", "_rows")

    def __init__(self, rows: dict[str, tuple[Any, ...]]) -> None:
        self._rows = rows
        self._made: dict[str, TaskStatus] = {}

    def __getitem__(self, name: str) -> TaskStatus:
        made = self._made.get(name)
        if made is None:
            made = self._made[name] = status_of(self._rows[name])
        return made

    def __iter__(self) -> Iterator[str]:
        return iter(self._rows)

    def __len__(self) -> int:
        return len(self._rows)

    def __contains__(self, name: object) -> bool:
        return name in self._rows

    def states(self) -> Iterator[TaskState]:
        """Each task's state, without making the statuses."""
        states = _STATES
        return (states[row[2]] for row in self._rows.values())

    def agent_states(self) -> Iterator[tuple[str, TaskState]]:
        """Each task's agent and state, without making the statuses (progress views)."""
        states = _STATES
        return ((row[1], states[row[2]]) for row in self._rows.values())

    def __repr__(self) -> str:
        return f"TaskStatuses({dict(self.items())!r})"


@dataclass(frozen=True, slots=True)
class WorkflowStatus:
    """A snapshot of a workflow run and every task in it."""

    workflow_id: str
    name: str
    state: WorkflowState
    created_at: float
    tasks: Mapping[str, TaskStatus]
    failure_policy: str = "fail_fast"
    started_at: float | None = None
    finished_at: float | None = None
    error: str | None = None
    sessions: int = 0  # how many times it was executed (1 + resumes)

    @property
    def counts(self) -> dict[TaskState, int]:
        """How many tasks are in each state (every state present, maybe 0)."""
        out = dict.fromkeys(TaskState, 0)
        for state in self._states():
            out[state] += 1
        return out

    @property
    def done(self) -> int:
        """Tasks finished one way or another."""
        return sum(1 for state in self._states() if state in FINISHED_TASK_STATES)

    def _states(self) -> Iterator[TaskState]:
        tasks = self.tasks
        if isinstance(tasks, TaskStatuses):
            return tasks.states()
        return (task.state for task in tasks.values())

    @property
    def duration(self) -> float | None:
        if self.started_at is None or self.finished_at is None:
            return None
        return max(0.0, self.finished_at - self.started_at)

    @property
    def finished(self) -> bool:
        return self.state in FINISHED_WORKFLOW_STATES


@dataclass(frozen=True, slots=True)
class WorkflowResult:
    """What ``execute_workflow`` returns: the final status and the tasks' results."""

    status: WorkflowStatus
    results: Mapping[str, Any] = field(default_factory=dict)

    @property
    def workflow_id(self) -> str:
        return self.status.workflow_id

    @property
    def state(self) -> WorkflowState:
        return self.status.state

    @property
    def ok(self) -> bool:
        """True if every task completed."""
        return self.status.state is WorkflowState.COMPLETED

    @property
    def error(self) -> str | None:
        """One line saying why the run did not complete (None if it did)."""
        return self.status.error

    @property
    def tasks(self) -> Mapping[str, TaskStatus]:
        return self.status.tasks
