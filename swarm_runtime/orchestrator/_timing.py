"""Where a run's time went: its critical path, and per agent the durations the scheduler
estimated against those measured (what the JSON and HTML reports show)."""

from __future__ import annotations

from collections.abc import Mapping

from ..pipeline.critical_path import critical_path
from ..report.model import AgentDurations, CriticalPath
from .status import TaskState, TaskStatus

__all__ = ["agent_durations", "measured", "run_critical_path"]


def measured(task: TaskStatus) -> float | None:
    """Seconds a completed task's successful attempt took (None if it did not complete)."""
    if task.state is not TaskState.COMPLETED:
        return None
    if task.history:
        last = task.history[-1]
        if last.finished_at is not None:
            return max(0.0, last.finished_at - last.started_at)
    return task.duration


def run_critical_path(tasks: Mapping[str, TaskStatus]) -> CriticalPath:
    """The longest chain of the run: measured durations where tasks completed, the
    scheduler's estimates elsewhere (0 where neither is known)."""
    names = list(tasks)
    deps = {name: task.depends_on for name, task in tasks.items()}
    dependents: dict[str, list[str]] = {name: [] for name in names}
    for name, ds in deps.items():
        for dep in ds:
            if dep in dependents:
                dependents[dep].append(name)
    cost: dict[str, float] = {}
    for name, task in tasks.items():
        seconds = measured(task)
        cost[name] = seconds if seconds is not None else task.estimated or 0.0
    path, length = critical_path(names, deps, dependents, cost.__getitem__)
    estimates = [tasks[name].estimated for name in path]
    estimated = None if None in estimates else sum(e for e in estimates if e is not None)
    return CriticalPath(tasks=path, seconds=length, estimated_seconds=estimated)


def agent_durations(tasks: Mapping[str, TaskStatus]) -> list[AgentDurations]:
    """Per agent (by name): completed tasks, mean estimate, mean and total measured."""
    found: dict[str, list[float]] = {}  # agent -> [tasks, actual sum, estimated sum, estimated n]
    for task in tasks.values():
        seconds = measured(task)
        if seconds is None:
            continue
        entry = found.setdefault(task.agent, [0, 0.0, 0.0, 0])
        entry[0] += 1
        entry[1] += seconds
        if task.estimated is not None:
            entry[2] += task.estimated
            entry[3] += 1
    return [
        AgentDurations(
            agent=agent,
            tasks=int(count),
            estimated_mean=estimated / n_estimated if n_estimated else None,
            actual_mean=actual / count,
            actual_total=actual,
        )
        for agent, (count, actual, estimated, n_estimated) in sorted(found.items())
    ]
