"""Ranks: correct longest paths (against brute force), and a bounded recompute cost."""

from __future__ import annotations

import itertools
import random

from hypothesis import given, settings
from hypothesis import strategies as st

from swarm_runtime.orchestrator._critical import EARNED, UPFRONT, CriticalPathOrder
from swarm_runtime.orchestrator._durations import DurationModel
from swarm_runtime.pipeline.critical_path import critical_path
from swarm_runtime.pipeline.dag import Dag, ReadySet


@st.composite
def dags(draw: st.DrawFn) -> tuple[dict[str, list[str]], dict[str, float]]:
    """A random DAG (each task depends on some earlier ones) with random costs."""
    n = draw(st.integers(1, 9))
    deps: dict[str, list[str]] = {}
    for i in range(n):
        earlier = [f"t{j}" for j in range(i)]
        deps[f"t{i}"] = draw(st.lists(st.sampled_from(earlier), unique=True)) if earlier else []
    costs = {name: draw(st.floats(0, 100, allow_nan=False)) for name in deps}
    return deps, costs


def _longest(deps: dict[str, list[str]], costs: dict[str, float]) -> float:
    dependents: dict[str, list[str]] = {name: [] for name in deps}
    for name, ds in deps.items():
        for dep in ds:
            dependents[dep].append(name)

    def down(name: str) -> float:  # every path, no memo: brute force
        return costs[name] + max((down(child) for child in dependents[name]), default=0.0)

    return max(down(name) for name in deps if not deps[name])


@settings(max_examples=200, deadline=None)
@given(dags())
def test_critical_path_is_the_longest_chain(
    graph: tuple[dict[str, list[str]], dict[str, float]],
) -> None:
    """The path found is a chain of dependencies, its length is the sum of its costs, and
    no chain is longer (checked by enumerating every path)."""
    deps, costs = graph
    dag = Dag.from_dependencies(deps)
    path, length = critical_path(dag.tasks, dag.deps, dag.dependents, costs.__getitem__)
    assert not dag.deps[path[0]]
    assert not dag.dependents[path[-1]]
    for before, after in itertools.pairwise(path):
        assert before in dag.deps[after]
    assert abs(length - sum(costs[name] for name in path)) < 1e-6
    assert abs(length - _longest(deps, costs)) < 1e-6


def test_rank_work_stays_within_budget_while_estimates_keep_drifting() -> None:
    """20,000 tasks over 4 agents whose durations keep swinging by 10x: ranks are
    recomputed now and then, but the tasks visited over the whole run stay within
    (UPFRONT + EARNED) per task - never a recompute per completion."""
    rng = random.Random(7)
    n = 20_000
    deps = {f"t{i}": [f"t{j}" for j in rng.sample(range(i), min(i, 2))] for i in range(n)}
    dag = Dag.from_dependencies(deps)
    agents = {name: f"a{i % 4}" for i, name in enumerate(dag.tasks)}
    order = CriticalPathOrder(dag, DurationModel(agents, {}))
    ready = ReadySet(dag, rank=order.rank)
    visited = 0
    recomputes = 0
    done = ready.completed
    step = 0
    while batch := ready.take():
        for name in batch:
            ready.complete(name)
            step += 1
            slow = (step // 500) % 2  # which agents are slow swings every 500 tasks
            seconds = 10.0 if int(agents[name][1]) % 2 == slow else 1.0
            before = len(order.order)
            if order.finished([(agents[name], seconds)], done):
                recomputes += 1
                visited += before
                ready.reorder()
    assert len(done) == n
    assert recomputes >= 3  # the drift was seen
    assert visited <= (UPFRONT + EARNED) * n
