"""The live progress view: a bounded number of rows whatever the run's size."""

from __future__ import annotations

import io

from rich.console import Console
from rich.progress import Progress

from swarm_runtime.cli._progress import (
    MAX_AGENT_ROWS,
    MAX_TASK_ROWS,
    ProgressView,
    refresh_interval,
)
from swarm_runtime.orchestrator import TaskState, WorkflowState, WorkflowStatus
from swarm_runtime.orchestrator.status import TaskStatus, TaskStatuses


def status(tasks: int, agents: int, running_every: int = 3) -> WorkflowStatus:
    """A snapshot where every ``running_every``-th task runs and the others completed."""
    rows = {}
    for i in range(tasks):
        state = TaskState.RUNNING if i % running_every == 0 else TaskState.COMPLETED
        task = TaskStatus(f"t{i}", f"a{i % agents}", state, started_at=1.0)
        rows[task.name] = (task.name, task.agent, state.value, *task[3:])
    return WorkflowStatus("run", "p", WorkflowState.RUNNING, 0.0, TaskStatuses(rows))


def view_rows(snapshot: WorkflowStatus) -> list[str]:
    progress = Progress(console=Console(file=io.StringIO()))
    view = ProgressView(progress)
    view.update(snapshot)
    view.update(snapshot)  # a second redraw reuses the rows
    return [str(task.description) for task in progress.tasks]


def test_small_run_shows_running_tasks_up_to_a_limit() -> None:
    """A small run gets a row per running task, at most MAX_TASK_ROWS and a '+N more'."""
    rows = view_rows(status(40, 2, running_every=2))
    assert len(rows) == 1 + MAX_TASK_ROWS + 1
    assert "12 more running" in rows[-1]
    assert rows[1].startswith("t0 ")


def test_counts_give_the_same_rows_as_a_snapshot() -> None:
    """A big run redrawn from counts per agent and state shows what its snapshot shows."""
    snapshot = status(5000, 40)
    progress = Progress(console=Console(file=io.StringIO()))
    view = ProgressView(progress)
    counts: dict[str, dict[TaskState, int]] = {}
    for task in snapshot.tasks.values():
        per_agent = counts.setdefault(task.agent, {})
        per_agent[task.state] = per_agent.get(task.state, 0) + 1
    view.update_counts(counts)
    from_counts = [(str(t.description), t.completed, t.total) for t in progress.tasks]
    assert from_counts == [
        (str(t.description), t.completed, t.total) for t in _drawn(snapshot).tasks
    ]
    assert from_counts[0][1:] == (5000 - 1667, 5000)


def _drawn(snapshot: WorkflowStatus) -> Progress:
    progress = Progress(console=Console(file=io.StringIO()))
    ProgressView(progress).update(snapshot)
    return progress


def test_big_run_shows_one_bar_per_agent_bounded() -> None:
    """Past 50 tasks the rows are per agent, and many agents fold into one row."""
    few = view_rows(status(5000, 3))
    assert len(few) == 1 + 3
    many = view_rows(status(5000, 40))
    assert len(many) == 1 + MAX_AGENT_ROWS
    assert "33 more agents" in many[-1]


def test_refresh_slows_down_for_big_runs() -> None:
    """Redraws are 0.1 s apart for small runs, further for big ones, never above 1 s."""
    assert refresh_interval(100) == 0.1
    assert 0.1 < refresh_interval(20_000) < refresh_interval(40_000) <= 1.0
    assert refresh_interval(1_000_000) == 1.0
