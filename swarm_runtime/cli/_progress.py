"""The live progress view of ``run``: a bounded number of lines whatever the run's size.

One overall bar; below it, for a small run, a spinner per running task (at most
:data:`MAX_TASK_ROWS`, from status snapshots), for a big one a bar per agent (at most
:data:`MAX_AGENT_ROWS`, the rest folded into one row) from the counts of tasks per agent
and state, which cost about a tenth of a snapshot; redraws come less often the bigger the
run, so the view's cost stays a small constant per task.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from typing import Protocol

import anyio
from rich.console import Console
from rich.progress import (
    BarColumn,
    Progress,
    SpinnerColumn,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
)

from ..orchestrator import TaskState, WorkflowStatus
from ..orchestrator.status import TaskStatuses

__all__ = ["MAX_AGENT_ROWS", "MAX_TASK_ROWS", "ProgressView", "refresh_interval", "show_progress"]

#: runs with more tasks than this show one bar per agent instead of one row per task
TASK_ROWS_UP_TO = 50
MAX_TASK_ROWS = 8
MAX_AGENT_ROWS = 8
_FINISHED = frozenset(
    {TaskState.COMPLETED, TaskState.FAILED, TaskState.SKIPPED, TaskState.CANCELLED}
)


_Counts = Mapping[str, Mapping[TaskState, int]]


class _StatusSource(Protocol):
    def get_pipeline_status(self, pipeline_id: str) -> WorkflowStatus | None: ...

    def get_pipeline_progress(
        self, pipeline_id: str
    ) -> Mapping[str, Mapping[TaskState, int]] | None: ...


def refresh_interval(tasks: int) -> float:
    """Seconds between redraws: 0.1 s up to 10,000 tasks, then growing with the run
    (counting costs a fraction of a microsecond per task), at most 1 s."""
    return min(1.0, max(0.1, tasks / 100_000))


class ProgressView:
    """The rows of the view, updated from one status snapshot at a time."""

    def __init__(self, progress: Progress) -> None:
        self.progress = progress
        self.overall = progress.add_task("[bold]all tasks", total=None, note="")
        self.rows: dict[str, TaskID] = {}

    def update(self, status: WorkflowStatus) -> None:
        """Redraw a small run from a snapshot: a row per running task."""
        total = len(status.tasks)
        if total > TASK_ROWS_UP_TO:
            self.update_counts(_count(status))
            return
        self._task_rows(status)
        self.progress.update(self.overall, total=total)

    def update_counts(self, counts: _Counts) -> None:
        """Redraw a big run from its tasks per agent and state: a bar per agent."""
        self._agent_rows({agent: Counter(states) for agent, states in counts.items()})

    def _set_rows(self, wanted: dict[str, tuple[str, float | None, int, str]]) -> None:
        """Make the rows exactly ``wanted`` (key -> description, total, completed, note)."""
        for key in [k for k in self.rows if k not in wanted]:
            self.progress.remove_task(self.rows.pop(key))
        for key, (label, total, completed, note) in wanted.items():
            row = self.rows.get(key)
            if row is None:
                self.rows[key] = self.progress.add_task(
                    label, total=total, completed=completed, note=note
                )
            else:
                self.progress.update(
                    row, description=label, total=total, completed=completed, note=note
                )

    def _overall(self, done: int, total: int, failed: int) -> None:
        note = f"{done:,}/{total:,}" + (f" [red]{failed:,} failed[/]" if failed else "")
        self.progress.update(self.overall, completed=done, note=note)

    def _task_rows(self, status: WorkflowStatus) -> None:
        wanted: dict[str, tuple[str, float | None, int, str]] = {}
        running = 0
        done = failed = 0
        for name, task in status.tasks.items():
            if task.state in _FINISHED:
                done += 1
                failed += task.state is TaskState.FAILED
            if task.state is not TaskState.RUNNING or task.started_at is None:
                continue
            running += 1
            if len(wanted) < MAX_TASK_ROWS:
                note = f"attempt {task.attempts}/{task.max_attempts}" if task.attempts > 1 else ""
                wanted[name] = (f"{name} [dim]({task.agent})[/]", None, 0, note)
        if running > MAX_TASK_ROWS:
            wanted["\0more"] = (f"[dim]... {running - MAX_TASK_ROWS} more running[/]", None, 0, "")
        self._set_rows(wanted)
        self._overall(done, len(status.tasks), failed)

    def _agent_rows(self, per_agent: dict[str, Counter[TaskState]]) -> None:
        ranked = sorted(per_agent.items(), key=lambda item: (-item[1].total(), item[0]))
        keep = MAX_AGENT_ROWS if len(ranked) <= MAX_AGENT_ROWS else MAX_AGENT_ROWS - 1
        shown = ranked[:keep]
        rest = ranked[len(shown) :]
        wanted: dict[str, tuple[str, float | None, int, str]] = {}
        groups = [(agent, agent, counts) for agent, counts in shown]
        if rest:
            merged: Counter[TaskState] = Counter()
            for _, counts in rest:
                merged.update(counts)
            groups.append(("\0rest", f"{len(rest)} more agents", merged))
        done = failed = 0
        for key, label, counts in groups:
            finished = sum(counts[s] for s in _FINISHED)
            done += finished
            failed += counts[TaskState.FAILED]
            note = f"{finished:,}/{counts.total():,}"
            if counts[TaskState.RUNNING]:
                note += f" [cyan]{counts[TaskState.RUNNING]:,} running[/]"
            if counts[TaskState.FAILED]:
                note += f" [red]{counts[TaskState.FAILED]:,} failed[/]"
            wanted[key] = (f"  {label}", float(counts.total()), finished, note)
        self._set_rows(wanted)
        total = sum(counts.total() for counts in per_agent.values())
        self._overall(done, total, failed)
        self.progress.update(self.overall, total=total)


def _count(status: WorkflowStatus) -> dict[str, Counter[TaskState]]:
    tasks = status.tasks
    pairs = (
        tasks.agent_states()
        if isinstance(tasks, TaskStatuses)
        else ((t.agent, t.state) for t in tasks.values())
    )
    per_agent: dict[str, Counter[TaskState]] = {}
    for agent, state in pairs:
        counts = per_agent.get(agent)
        if counts is None:
            counts = per_agent[agent] = Counter()
        counts[state] += 1
    return per_agent


async def show_progress(
    orch: _StatusSource, pipeline_id: str, console: Console, ready: anyio.Event
) -> None:
    """Draw the view until cancelled (the run is over)."""
    await ready.wait()
    progress = Progress(
        SpinnerColumn(),
        TextColumn("{task.description}"),
        BarColumn(),
        TextColumn("{task.fields[note]}"),
        TimeElapsedColumn(),
        console=console,
        transient=True,
        refresh_per_second=5,  # a redraw costs O(rows), not O(tasks)
    )
    with progress:
        view = ProgressView(progress)
        interval = 0.1
        while True:
            counts = orch.get_pipeline_progress(pipeline_id)
            if counts is not None:
                total = sum(sum(states.values()) for states in counts.values())
                status = orch.get_pipeline_status(pipeline_id) if total <= TASK_ROWS_UP_TO else None
                if status is not None:
                    view.update(status)
                else:
                    view.update_counts(counts)
                interval = refresh_interval(total)
            await anyio.sleep(interval)
