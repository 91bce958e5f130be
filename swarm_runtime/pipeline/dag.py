"""Dependency graphs of tasks: validation before anything runs, and scheduling helpers.

:func:`check_dag` finds every structural problem (duplicate names, unknown
dependencies or agents, self-dependencies, cycles — printed as ``a -> b -> a``).
:class:`Dag` is a validated, immutable graph with topological helpers;
:class:`ReadySet` is the incremental state a scheduler keeps while a DAG runs
(O(out-degree) work per finished task, so 10,000-task DAGs stay cheap).
Edges point the way data flows: ``a -> b`` means ``b`` depends on ``a``.
"""

from __future__ import annotations

import heapq
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ..agents.builtin._validation import did_you_mean, join_path
from ..errors import ConfigProblem, PipelineConfigError

if TYPE_CHECKING:
    from .config import PipelineConfig

__all__ = ["Dag", "ReadySet", "check_dag", "find_cycles"]


def _names_hint(names: Collection[str], limit: int = 12) -> str:
    shown = sorted(names)[:limit]
    more = f", ... ({len(names) - limit} more)" if len(names) > limit else ""
    return ", ".join(shown) + more if shown else "none"


def find_cycles(deps: Mapping[str, Sequence[str]]) -> list[list[str]]:
    """Distinct dependency cycles, each as ``[a, b, c, a]`` in data-flow order.

    ``deps`` maps every task to the tasks it depends on (unknown names and
    self-dependencies must already be removed). Runs in O(tasks + edges).
    """
    order = {name: i for i, name in enumerate(deps)}
    indegree = {name: len(set(d)) for name, d in deps.items()}
    dependents: dict[str, list[str]] = {name: [] for name in deps}
    for name, ds in deps.items():
        for dep in set(ds):
            dependents[dep].append(name)
    queue = [name for name, n in indegree.items() if n == 0]
    while queue:
        name = queue.pop()
        for child in dependents[name]:
            indegree[child] -= 1
            if indegree[child] == 0:
                queue.append(child)
    stuck = {name for name, n in indegree.items() if n > 0}
    # Every stuck task has a stuck dependency: walking dependencies must loop.
    cycles: list[list[str]] = []
    visited: set[str] = set()
    for start in sorted(stuck, key=order.__getitem__):
        if start in visited:
            continue
        path: list[str] = []
        position: dict[str, int] = {}
        node = start
        while node not in visited:
            visited.add(node)
            position[node] = len(path)
            path.append(node)
            node = next(d for d in deps[node] if d in stuck)
        if node in position:  # closed a new loop (not one found by an earlier walk)
            loop = path[position[node] :]  # each depends on the next: reverse for data flow
            loop.reverse()
            first = min(range(len(loop)), key=lambda i: order[loop[i]])
            loop = loop[first:] + loop[:first]
            cycles.append([*loop, loop[0]])
    return cycles


def check_dag(
    tasks: Sequence[tuple[str, Sequence[str]]],
    *,
    paths: Sequence[str] | None = None,
    agents: Sequence[str] | None = None,
    known_agents: Collection[str] | None = None,
) -> list[ConfigProblem]:
    """Every structural problem of a workflow, one :class:`ConfigProblem` each.

    ``tasks`` holds ``(name, depends_on)`` in declaration order; ``paths[i]`` is where
    task ``i`` was written (default ``tasks[i]``); with ``agents`` (task ``i``'s agent)
    and ``known_agents``, unknown agents are reported too.
    """
    where = list(paths) if paths is not None else [f"tasks[{i}]" for i in range(len(tasks))]
    problems: list[ConfigProblem] = []
    first: dict[str, int] = {}
    for i, (name, _) in enumerate(tasks):
        if name in first:
            problems.append(
                ConfigProblem(
                    join_path(where[i], "name"),
                    f"duplicate task name {name!r} (already used by {where[first[name]]})",
                    "duplicate",
                )
            )
        else:
            first[name] = i
    if agents is not None and known_agents is not None:
        for i, agent in enumerate(agents):
            if agent not in known_agents:
                problems.append(
                    ConfigProblem(
                        join_path(where[i], "agent"),
                        f"unknown agent {agent!r}{did_you_mean(agent, known_agents)}; "
                        f"declared agents: {_names_hint(known_agents)}",
                        "unknown_agent",
                    )
                )
    graph: dict[str, list[str]] = {}
    forward_only = True
    for i, (name, depends_on) in enumerate(tasks):
        if first[name] != i:
            continue
        kept: list[str] = []
        for j, dep in enumerate(depends_on):
            if dep == name:
                problems.append(
                    ConfigProblem(
                        join_path(where[i], "depends_on", j),
                        f"task {name!r} depends on itself",
                        "self_dependency",
                    )
                )
            elif dep not in first:
                problems.append(
                    ConfigProblem(
                        join_path(where[i], "depends_on", j),
                        f"unknown task {dep!r}{did_you_mean(dep, first)}; "
                        f"tasks: {_names_hint(first)}",
                        "unknown_dependency",
                    )
                )
            else:
                kept.append(dep)
                forward_only = forward_only and first[dep] < i
        graph[name] = kept
    # when every task depends only on tasks declared before it (generated and hand-written
    # files alike), there is no cycle to look for
    for cycle in () if forward_only else find_cycles(graph):
        problems.append(
            ConfigProblem(
                join_path(where[first[cycle[1]]], "depends_on"),
                f"dependency cycle: {' -> '.join(cycle)}",
                "cycle",
            )
        )
    return problems


@dataclass(frozen=True, slots=True)
class Dag:
    """A validated task graph. Build it with :meth:`from_config` or :meth:`from_dependencies`.

    ``tasks`` is in declaration order; ``deps[t]`` are the tasks ``t`` depends on and
    ``dependents[t]`` the tasks that depend on ``t``; higher ``priority`` runs first
    among ready tasks, then declaration order.
    """

    tasks: tuple[str, ...]
    deps: Mapping[str, tuple[str, ...]]
    dependents: Mapping[str, tuple[str, ...]]
    priority: Mapping[str, int]

    @classmethod
    def from_dependencies(
        cls,
        deps: Mapping[str, Iterable[str]],
        *,
        priority: Mapping[str, int] | None = None,
        source: str = "<workflow>",
    ) -> Dag:
        """Validate ``{task: [dependencies]}``; :class:`PipelineConfigError` lists problems."""
        pairs = [(name, tuple(ds)) for name, ds in deps.items()]
        problems = check_dag(pairs, paths=[name for name, _ in pairs])
        if problems:
            raise PipelineConfigError(source, problems)
        return cls._build(pairs, priority or {})

    @classmethod
    def from_config(cls, config: PipelineConfig) -> Dag:
        """The graph of a pipeline (validated again, so any config is safe to pass)."""
        pairs = [(t.name, tuple(t.depends_on)) for t in config.tasks]
        problems = check_dag(
            pairs,
            agents=[t.agent for t in config.tasks],
            known_agents={a.name for a in config.agents},
        )
        if problems:
            raise PipelineConfigError(config.name, problems)
        return cls._build(pairs, {t.name: t.priority for t in config.tasks})

    @classmethod
    def _build(
        cls, pairs: Sequence[tuple[str, tuple[str, ...]]], priority: Mapping[str, int]
    ) -> Dag:
        deps = {name: tuple(dict.fromkeys(ds)) for name, ds in pairs}
        dependents: dict[str, list[str]] = {name: [] for name in deps}
        for name, ds in deps.items():
            for dep in ds:
                dependents[dep].append(name)
        return cls(
            tasks=tuple(deps),
            deps=deps,
            dependents={name: tuple(children) for name, children in dependents.items()},
            priority={name: priority.get(name, 0) for name in deps},
        )

    def __len__(self) -> int:
        return len(self.tasks)

    def edges(self) -> list[tuple[str, str]]:
        """``(dependency, task)`` pairs: data flows from the first to the second."""
        return [(dep, name) for name in self.tasks for dep in self.deps[name]]

    def roots(self) -> list[str]:
        """Tasks without dependencies."""
        return [name for name in self.tasks if not self.deps[name]]

    def leaves(self) -> list[str]:
        """Tasks nothing depends on."""
        return [name for name in self.tasks if not self.dependents[name]]

    def topological_order(self) -> list[str]:
        """Every task after its dependencies; ties by priority, then declaration order."""
        ready = ReadySet(self)
        order: list[str] = []
        while batch := ready.take():
            for name in batch:
                order.append(name)
                ready.complete(name)
        return order

    def levels(self) -> dict[str, int]:
        """Each task's level: 0 for roots, else 1 + the highest level of its dependencies."""
        level: dict[str, int] = {}
        for name in self.topological_order():
            level[name] = 1 + max((level[d] for d in self.deps[name]), default=-1)
        return level

    def _closure(self, start: str, edges: Mapping[str, tuple[str, ...]]) -> set[str]:
        if start not in edges:
            raise KeyError(start)
        seen: set[str] = set()
        stack = list(edges[start])
        while stack:
            name = stack.pop()
            if name not in seen:
                seen.add(name)
                stack.extend(edges[name])
        return seen

    def descendants(self, name: str) -> set[str]:
        """Every task that depends on ``name``, directly or not (skipped when it fails)."""
        return self._closure(name, self.dependents)

    def ancestors(self, name: str) -> set[str]:
        """Every task ``name`` depends on, directly or not."""
        return self._closure(name, self.deps)

    def ready(self, completed: Collection[str], started: Collection[str] = ()) -> list[str]:
        """Tasks not yet started whose dependencies have all completed, best first.

        A stateless O(tasks + edges) answer, e.g. on resume; while running, prefer
        the incremental :class:`ReadySet`.
        """
        found = [
            name
            for name in self.tasks
            if name not in completed
            and name not in started
            and all(dep in completed for dep in self.deps[name])
        ]
        index = {name: i for i, name in enumerate(self.tasks)}
        return sorted(found, key=lambda n: (-self.priority[n], index[n]))


class ReadySet:
    """Scheduling state of one run of a :class:`Dag`, updated as tasks finish.

    Each task is *waiting*, *ready*, *running*, *completed*, *failed* or *skipped*.
    :meth:`take` hands out ready tasks (highest priority first) and marks them
    running; :meth:`complete` returns the tasks it made ready; :meth:`fail` returns
    the not-yet-finished descendants, now skipped (the ``continue`` policy).

    With ``rank`` (task -> upward rank, see :mod:`.critical_path`), ties of priority go
    to the highest rank (critical path first), then declaration order; the mapping is
    read when a task becomes ready, and :meth:`reorder` applies changed ranks to the
    tasks already ready.
    """

    def __init__(
        self,
        dag: Dag,
        completed: Iterable[str] = (),
        *,
        rank: Mapping[str, float] | None = None,
    ) -> None:
        self.dag = dag
        self._rank = rank
        self._index = {name: i for i, name in enumerate(dag.tasks)}
        self._missing = {name: len(dag.deps[name]) for name in dag.tasks}
        self._heap: list[tuple[Any, ...]] = []
        self.running: set[str] = set()
        self.completed: set[str] = set()
        self.failed: set[str] = set()
        self.skipped: set[str] = set()
        done = set(completed)
        unknown = done - set(self._missing)
        if unknown:
            raise KeyError(f"not tasks of this DAG: {', '.join(sorted(unknown))}")
        for name in dag.tasks:
            if name in done:
                self.completed.add(name)
                for child in dag.dependents[name]:
                    self._missing[child] -= 1
        for name in dag.tasks:
            if name not in done and self._missing[name] == 0:
                self._push(name)

    def _push(self, name: str) -> None:
        rank = self._rank
        if rank is None:
            entry: tuple[Any, ...] = (-self.dag.priority[name], self._index[name], name)
        else:
            entry = (-self.dag.priority[name], -rank.get(name, 0.0), self._index[name], name)
        heapq.heappush(self._heap, entry)

    def reorder(self) -> None:
        """Re-key the ready tasks after the ranks changed (O(ready log ready))."""
        heap, self._heap = self._heap, []
        for entry in heap:
            self._push(entry[-1])

    @property
    def ready_count(self) -> int:
        """How many tasks are ready and not yet taken."""
        return len(self._heap)

    def peek(self) -> list[str]:
        """The ready tasks, best first, without taking them."""
        return [entry[-1] for entry in sorted(self._heap)]

    def take(
        self, limit: int | None = None, accept: Callable[[str], bool] | None = None
    ) -> list[str]:
        """Up to ``limit`` ready tasks, best first, now running.

        ``accept`` can refuse a task (its agent is at its limit): it stays ready.
        """
        taken: list[str] = []
        refused: list[tuple[Any, ...]] = []
        while self._heap and (limit is None or len(taken) < limit):
            entry = heapq.heappop(self._heap)
            name = entry[-1]
            if accept is not None and not accept(name):
                refused.append(entry)
                continue
            taken.append(name)
            self.running.add(name)
        for entry in refused:
            heapq.heappush(self._heap, entry)
        return taken

    def _finish(self, name: str) -> None:
        if name not in self.running:
            raise KeyError(f"task {name!r} is not running")
        self.running.discard(name)

    def complete(self, name: str) -> list[str]:
        """Mark running task ``name`` completed; return the tasks that became ready."""
        self._finish(name)
        self.completed.add(name)
        newly: list[str] = []
        for child in self.dag.dependents[name]:
            self._missing[child] -= 1
            if self._missing[child] == 0 and child not in self.skipped:
                self._push(child)
                newly.append(child)
        return newly

    def fail(self, name: str) -> set[str]:
        """Mark running task ``name`` failed; return its descendants, now skipped."""
        self._finish(name)
        self.failed.add(name)
        doomed = self.dag.descendants(name) - self.skipped - self.completed
        self.skipped |= doomed
        if doomed:
            self._heap = [e for e in self._heap if e[-1] not in doomed]
            heapq.heapify(self._heap)
        return doomed

    def release(self, name: str) -> None:
        """Put running task ``name`` back as ready (it was cancelled and will run again)."""
        self._finish(name)
        self._push(name)

    @property
    def finished(self) -> bool:
        """True when nothing is ready or running: every task completed, failed or skipped."""
        return not self._heap and not self.running

    def pending(self) -> set[str]:
        """Tasks not started yet (waiting or ready)."""
        return set(self.dag.tasks) - self.running - self.completed - self.failed - self.skipped
