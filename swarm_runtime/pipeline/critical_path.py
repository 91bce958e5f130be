"""Longest paths through a task graph: upward ranks and the critical path.

A task's *upward rank* is its own duration estimate plus the largest rank among the
tasks that depend on it: the length of the longest path from its start to the end of
the workflow. Ordering ready tasks by it (largest first) is the critical-path-first list
scheduling of HEFT-style schedulers. The *critical path* is the chain of tasks that
realises the largest rank of a root: no schedule finishes sooner than its length.

Everything here is O(tasks + edges), iterative (no recursion limit on long chains).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence

__all__ = ["critical_path", "reverse_topological", "upward_ranks"]


def reverse_topological(
    deps: Mapping[str, Sequence[str]], dependents: Mapping[str, Sequence[str]]
) -> list[str]:
    """Every task after all the tasks that depend on it (sinks first).

    ``deps`` and ``dependents`` describe an acyclic graph (as :class:`~.dag.Dag` keeps
    them); the order among independent tasks follows ``deps``' iteration order.
    """
    remaining = {name: len(children) for name, children in dependents.items()}
    order = [name for name, n in remaining.items() if n == 0]
    i = 0
    while i < len(order):
        for dep in deps[order[i]]:
            left = remaining[dep] - 1
            remaining[dep] = left
            if left == 0:
                order.append(dep)
        i += 1
    return order


def upward_ranks(
    order: Iterable[str],
    dependents: Mapping[str, Sequence[str]],
    cost: Callable[[str], float],
    *,
    into: dict[str, float] | None = None,
) -> dict[str, float]:
    """Each task's upward rank, for the tasks of ``order`` (children before parents).

    ``order`` may be a subset of the graph closed under dependents (e.g. the tasks not
    finished yet); dependents outside it count as rank 0. ``into`` is updated in place
    and returned (ranks of tasks outside ``order`` are left as they were).
    """
    rank: dict[str, float] = {} if into is None else into
    get = rank.get
    for name in order:
        children = dependents[name]
        if not children:
            rank[name] = cost(name)
        elif len(children) == 1:
            rank[name] = cost(name) + get(children[0], 0.0)
        else:
            rank[name] = cost(name) + max([get(child, 0.0) for child in children])
    return rank


def critical_path(
    tasks: Sequence[str],
    deps: Mapping[str, Sequence[str]],
    dependents: Mapping[str, Sequence[str]],
    cost: Callable[[str], float],
) -> tuple[list[str], float]:
    """The longest chain of tasks under ``cost`` (data-flow order) and its length.

    Ties go to the task declared first (``tasks``' order). Empty graph: ``([], 0.0)``.
    """
    if not tasks:
        return [], 0.0
    rank = upward_ranks(reverse_topological(deps, dependents), dependents, cost)
    position = {name: i for i, name in enumerate(tasks)}
    roots = [name for name in tasks if not deps[name]]
    node = max(roots, key=lambda n: (rank[n], -position[n]))
    length = rank[node]
    path = [node]
    while dependents[node]:
        node = max(dependents[node], key=lambda n: (rank[n], -position[n]))
        path.append(node)
    return path, length
