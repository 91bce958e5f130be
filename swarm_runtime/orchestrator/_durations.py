"""Duration estimates of a run's tasks: given, recorded in earlier runs, or learned now.

A task's estimate is, in this order: its own ``estimate`` (seconds, from the YAML or
``create_workflow``); what the same task (same workflow, same name) took in earlier
runs kept in the run store; the mean duration of its agent's tasks (measured in this
run, started from what earlier runs and the given estimates of the agent's other tasks
say); else the mean over all agents with an estimate (1 s when nothing is known yet).

Measured durations are the handler time of the successful attempt. An agent's mean is
a plain running mean for its first :data:`WINDOW` samples, then an exponential average
with weight ``1 / WINDOW``, so it converges on a steady agent and follows a drifting one.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

__all__ = ["DEFAULT_ESTIMATE", "WINDOW", "AgentDurations", "DurationModel", "RecordedDurations"]

#: the estimate of a task when nothing at all is known (only ratios matter for ranks)
DEFAULT_ESTIMATE = 1.0
#: samples over which an agent's mean is a plain mean (then an exponential average)
WINDOW = 32
#: weight (in samples) of what earlier runs say about an agent, against this run's samples
HISTORY_WEIGHT = 4


@dataclass
class RecordedDurations:
    """Durations earlier runs of a workflow measured: per task, and per agent as
    ``(tasks, mean seconds)``. What :meth:`RunStore.recorded_durations` returns."""

    tasks: dict[str, float] = field(default_factory=dict)
    agents: dict[str, tuple[int, float]] = field(default_factory=dict)

    @classmethod
    def from_records(cls, records: Iterable[Mapping[str, Any]]) -> RecordedDurations:
        """From ``task`` run-log records (the newest last: a later duration wins)."""
        tasks: dict[str, float] = {}
        agents: dict[str, tuple[int, float]] = {}
        for record in records:
            seconds = record_duration(record)
            name, agent = record.get("name"), record.get("agent")
            if seconds is None or not isinstance(name, str) or not isinstance(agent, str):
                continue
            tasks[name] = seconds
            count, mean = agents.get(agent, (0, 0.0))
            agents[agent] = (count + 1, mean + (seconds - mean) / (count + 1))
        return cls(tasks, agents)


def record_duration(record: Mapping[str, Any]) -> float | None:
    """Seconds the successful attempt of a completed task's record took, if known."""
    if record.get("state") != "completed":
        return None
    history = record.get("history")
    if isinstance(history, (list, tuple)) and history:
        last = history[-1]
        if isinstance(last, (list, tuple)) and len(last) >= 5:
            start, end = last[3], last[4]
            if isinstance(start, (int, float)) and isinstance(end, (int, float)):
                return max(0.0, float(end) - float(start))
    start, end = record.get("started_at"), record.get("finished_at")
    if isinstance(start, (int, float)) and isinstance(end, (int, float)):
        return max(0.0, float(end) - float(start))
    return None


class AgentDurations:
    """What is known of one agent's task durations: a sample count and a mean."""

    __slots__ = ("count", "mean", "measured", "total")

    def __init__(self, count: int = 0, mean: float = 0.0) -> None:
        self.count = count  # samples behind ``mean`` (prior ones included)
        self.mean = mean
        self.measured = 0  # samples measured in this run
        self.total = 0.0  # their sum (seconds)

    def add(self, seconds: float) -> None:
        count = self.count + 1 if self.count < WINDOW else WINDOW
        self.count = count
        self.mean += (seconds - self.mean) / count
        self.measured += 1
        self.total += seconds


class DurationModel:
    """The estimates of one run's tasks, updated as tasks finish (see the module doc).

    ``agent_of`` maps every task to its agent, ``given`` holds the tasks' own estimates,
    ``recorded`` what earlier runs measured.
    """

    def __init__(
        self,
        agent_of: Mapping[str, str],
        given: Mapping[str, float],
        recorded: RecordedDurations | None = None,
    ) -> None:
        self.agent_of = agent_of
        self.given = dict(given)
        #: tasks whose estimate does not depend on the agents' means
        self.fixed: dict[str, float] = dict(self.given)
        self.agents: dict[str, AgentDurations] = {}
        for agent in set(agent_of.values()):
            self.agents[agent] = AgentDurations()
        sums: dict[str, list[float]] = {}
        for name, seconds in self.given.items():
            sums.setdefault(agent_of[name], []).append(seconds)
        if recorded is not None:
            for name, seconds in recorded.tasks.items():
                if name in agent_of:
                    self.fixed.setdefault(name, seconds)
            for agent, (count, mean) in recorded.agents.items():
                if agent in self.agents and count > 0:
                    self.agents[agent] = AgentDurations(min(count, HISTORY_WEIGHT), mean)
        for agent, values in sums.items():
            stats = self.agents[agent]
            if stats.count == 0:
                stats.count = min(len(values), HISTORY_WEIGHT)
                stats.mean = sum(values) / len(values)

    def observe(self, agent: str, seconds: float) -> None:
        """One task of ``agent`` took ``seconds``."""
        stats = self.agents.get(agent)
        if stats is None:
            stats = self.agents[agent] = AgentDurations()
        stats.add(seconds)

    def observe_many(self, samples: Iterable[tuple[str, float]]) -> None:
        """``(agent, seconds)`` for each task that finished."""
        agents = self.agents
        for agent, seconds in samples:
            stats = agents.get(agent)
            if stats is None:
                stats = agents[agent] = AgentDurations()
            stats.add(seconds)

    def default(self) -> float:
        """The estimate of an agent nothing is known about: the mean of the others."""
        known = [stats.mean for stats in self.agents.values() if stats.count]
        return sum(known) / len(known) if known else DEFAULT_ESTIMATE

    def agent_estimates(self) -> dict[str, float]:
        """Every agent's current estimate of one task's seconds."""
        default = self.default()
        return {
            agent: stats.mean if stats.count else default for agent, stats in self.agents.items()
        }

    def estimates(self) -> dict[str, float]:
        """Every task's current estimate (O(tasks); for reports, not the hot path)."""
        agents = self.agent_estimates()
        fixed = self.fixed
        return {
            name: fixed[name] if name in fixed else agents[agent]
            for name, agent in self.agent_of.items()
        }
