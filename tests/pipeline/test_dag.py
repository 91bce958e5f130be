"""DAG validation and the scheduling helpers the orchestrator builds on."""

from __future__ import annotations

import random

import pytest

from swarm_runtime.errors import PipelineConfigError
from swarm_runtime.pipeline import Dag, ReadySet, check_dag, find_cycles, parse_pipeline


def diamond() -> Dag:
    """load → (fast, slow) → join, plus an independent task."""
    return Dag.from_dependencies(
        {"load": [], "fast": ["load"], "slow": ["load"], "join": ["fast", "slow"], "solo": []},
        priority={"slow": 5},
    )


def test_find_cycles_prints_each_cycle_once_in_data_flow_order() -> None:
    """Two separate cycles are each reported once, starting at the first-declared task."""
    deps = {"a": ["c"], "b": ["a"], "c": ["b"], "x": ["y"], "y": ["x"], "tail": ["a"], "ok": []}
    assert find_cycles(deps) == [["a", "b", "c", "a"], ["x", "y", "x"]]


def test_check_dag_kinds_and_paths() -> None:
    """check_dag reports duplicates, unknown deps and agents, self-deps and cycles."""
    problems = check_dag(
        [("a", ["b"]), ("b", ["a"]), ("a", []), ("c", ["c", "nope"])],
        agents=["w", "w", "w", "ghost"],
        known_agents={"w"},
    )
    found = {(p.kind, p.path) for p in problems}
    assert found == {
        ("duplicate", "tasks[2].name"),
        ("unknown_agent", "tasks[3].agent"),
        ("self_dependency", "tasks[3].depends_on[0]"),
        ("unknown_dependency", "tasks[3].depends_on[1]"),
        ("cycle", "tasks[1].depends_on"),
    }
    cycle = next(p for p in problems if p.kind == "cycle")
    assert cycle.message == "dependency cycle: a -> b -> a"


def test_from_dependencies_raises_with_every_problem() -> None:
    """Dag.from_dependencies refuses an invalid workflow with a PipelineConfigError."""
    with pytest.raises(PipelineConfigError) as info:
        Dag.from_dependencies({"a": ["b"], "b": ["a"], "c": ["d"]}, source="wf")
    assert str(info.value).splitlines() == [
        "wf: c.depends_on[0]: unknown task 'd'; tasks: a, b, c",
        "wf: b.depends_on: dependency cycle: a -> b -> a",
    ]


def test_from_config_checks_agents_too() -> None:
    """Dag.from_config re-validates, so a hand-built config with a bad agent is refused."""
    config = parse_pipeline("agents: [{name: w, uses: 'm:f'}]\ntasks: [{name: a, agent: w}]\n")
    broken = config.model_copy(
        update={"tasks": [config.tasks[0].model_copy(update={"agent": "nobody"})]}
    )
    with pytest.raises(PipelineConfigError, match="unknown agent 'nobody'"):
        Dag.from_config(broken)
    assert Dag.from_config(config).tasks == ("a",)


def test_topological_order_levels_roots_leaves() -> None:
    """Order respects dependencies and priority; levels are longest-path depths."""
    dag = diamond()
    order = dag.topological_order()
    assert order == ["load", "solo", "slow", "fast", "join"]
    assert dag.levels() == {"load": 0, "solo": 0, "slow": 1, "fast": 1, "join": 2}
    assert dag.roots() == ["load", "solo"]
    assert dag.leaves() == ["join", "solo"]
    assert dag.edges() == [("load", "fast"), ("load", "slow"), ("fast", "join"), ("slow", "join")]
    assert len(dag) == 5


def test_descendants_and_ancestors() -> None:
    """descendants() is what a failure skips under `continue`; ancestors() the inputs."""
    dag = diamond()
    assert dag.descendants("load") == {"fast", "slow", "join"}
    assert dag.descendants("join") == set()
    assert dag.ancestors("join") == {"load", "fast", "slow"}
    with pytest.raises(KeyError):
        dag.descendants("missing")


def test_stateless_ready() -> None:
    """ready() lists unstarted tasks whose dependencies completed, best priority first."""
    dag = diamond()
    assert dag.ready(completed=set()) == ["load", "solo"]
    assert dag.ready(completed={"load"}, started={"solo"}) == ["slow", "fast"]
    assert dag.ready(completed={"load", "fast"}, started={"slow", "solo"}) == []


def test_fast_branch_does_not_wait_for_slow_sibling() -> None:
    """Completing the fast branch readies its children while the slow sibling still runs."""
    dag = Dag.from_dependencies(
        {
            "load": [],
            "fast": ["load"],
            "slow": ["load"],
            "after_fast": ["fast"],
            "end": ["after_fast", "slow"],
        }
    )
    state = ReadySet(dag)
    assert state.take() == ["load"]
    assert state.complete("load") == ["fast", "slow"]
    assert state.take() == ["fast", "slow"]
    assert state.complete("fast") == ["after_fast"]
    assert state.take() == ["after_fast"]
    assert state.running == {"slow", "after_fast"}
    assert state.complete("after_fast") == []
    assert state.complete("slow") == ["end"]
    assert not state.finished
    assert state.take() == ["end"]
    state.complete("end")
    assert state.finished
    assert state.completed == set(dag.tasks)


def test_take_respects_limit_priority_and_accept() -> None:
    """take() hands out at most `limit`, best first, and leaves refused tasks ready."""
    dag = Dag.from_dependencies({n: [] for n in "abcde"}, priority={"d": 9, "e": 1})
    state = ReadySet(dag)
    assert state.peek() == ["d", "e", "a", "b", "c"]
    assert state.take(limit=2) == ["d", "e"]
    assert state.take(accept=lambda name: name != "b") == ["a", "c"]
    assert state.ready_count == 1
    assert state.peek() == ["b"]
    state.release("a")
    assert state.peek() == ["a", "b"]
    assert state.pending() == {"a", "b"}


def test_fail_skips_descendants_only() -> None:
    """Under `continue` a failure skips its descendants; unrelated work goes on."""
    dag = Dag.from_dependencies(
        {"a": [], "b": ["a"], "c": ["b"], "d": ["a"], "e": [], "f": ["c", "e"]}
    )
    state = ReadySet(dag)
    assert state.take() == ["a", "e"]
    state.complete("a")
    assert state.take() == ["b", "d"]
    assert state.fail("b") == {"c", "f"}
    state.complete("e")
    assert state.take() == []  # f never becomes ready, even though e completed
    state.complete("d")
    assert state.finished
    assert (state.failed, state.skipped) == ({"b"}, {"c", "f"})


def test_resume_skips_completed_tasks() -> None:
    """A ReadySet built with completed tasks offers only what is left."""
    dag = diamond()
    state = ReadySet(dag, completed={"load", "fast", "solo"})
    assert state.take() == ["slow"]
    assert state.complete("slow") == ["join"]
    with pytest.raises(KeyError, match="not tasks of this DAG: zzz"):
        ReadySet(dag, completed={"zzz"})


def test_state_errors() -> None:
    """Completing a task that is not running is a KeyError, not silent corruption."""
    state = ReadySet(diamond())
    with pytest.raises(KeyError, match="'load' is not running"):
        state.complete("load")


def test_large_random_dag_is_validated_and_ordered() -> None:
    """A 10,000-task DAG (1-3 deps each) and a 5,000-deep chain validate without recursion."""
    rng = random.Random(7)
    deps = {"t0": []} | {
        f"t{i}": [f"t{j}" for j in rng.sample(range(i), min(i, rng.randint(1, 3)))]
        for i in range(1, 10_000)
    }
    dag = Dag.from_dependencies(deps)
    order = dag.topological_order()
    position = {name: i for i, name in enumerate(order)}
    assert len(order) == 10_000
    assert all(position[d] < position[n] for d, n in dag.edges())
    chain = {f"c{i}": [f"c{i - 1}"] if i else [f"c{4999}"] for i in range(5000)}
    cycles = find_cycles(chain)
    assert len(cycles) == 1
    assert len(cycles[0]) == 5001
