"""Critical-path-first scheduling: start order and makespan against FIFO on a manual clock,
learned estimates, ranks refreshed after a surprise, and the ``scheduling`` setting."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import anyio
import pytest

import swarm_runtime as sr
from swarm_runtime.clock import ManualClock
from swarm_runtime.errors import ConfigError, PipelineConfigError
from swarm_runtime.orchestrator import (
    DataPipelineOrchestrator,
    MemoryRunStore,
    WorkflowOrchestrator,
)
from swarm_runtime.pipeline import parse_pipeline

GUARD = 20  # seconds (real): a hung workflow fails the test instead of blocking the suite
T0 = 1_700_000_000.0


async def run_on_clock(
    tasks: Sequence[Mapping[str, Any]],
    seconds: Mapping[str, float],
    *,
    scheduling: str | None = None,
    concurrency: int | None = None,
    agents: Sequence[str] = ("w",),
    store: MemoryRunStore | None = None,
) -> tuple[dict[str, float], sr.WorkflowResult]:
    """Run ``tasks`` on a :class:`ManualClock`, each sleeping ``seconds[name]`` of clock
    time; returns each task's start (clock seconds from 0) and the result.

    The clock moves by whole seconds, and only once every task is blocked, so the
    schedule is exactly the one the scheduler chose (no real time involved).
    """
    clock = ManualClock(T0)
    started: dict[str, float] = {}

    async def work(msg: sr.Message, ctx: sr.Context) -> None:
        name = msg.payload["params"]["name"]
        started[name] = clock.time() - T0
        await clock.sleep(seconds[name])

    async with sr.Runtime(queue="memory://", clock=clock, services=False, grace_period=0.0) as rt:
        orch = WorkflowOrchestrator(rt, store=store)
        for agent in agents:
            orch.register_agent(agent, work, concurrency=16)
        specs = [{**t, "params": {"name": t["name"]}} for t in tasks]
        options: dict[str, Any] = {"concurrency": concurrency}
        if scheduling is not None:
            options["scheduling"] = scheduling
        workflow_id = await orch.create_workflow(specs, **options)
        result: sr.WorkflowResult | None = None

        async def execute() -> None:
            nonlocal result
            result = await orch.execute_workflow(workflow_id)

        with anyio.fail_after(GUARD):
            async with anyio.create_task_group() as tg:
                tg.start_soon(execute)
                while result is None:
                    await anyio.wait_all_tasks_blocked()
                    if result is None:
                        clock.advance(1.0)
    assert result is not None
    return started, result


def makespan(started: Mapping[str, float], seconds: Mapping[str, float]) -> float:
    return max(started[name] + seconds[name] for name in started)


# a, b: short and independent; c is short but d, which needs it, is long
FORK = [
    {"name": "a", "estimate": 1},
    {"name": "b", "estimate": 1},
    {"name": "c", "estimate": 1},
    {"name": "d", "depends_on": ["c"], "estimate": 10},
]
FORK_SECONDS = {"a": 1, "b": 1, "c": 1, "d": 10}


async def test_fifo_starts_in_declaration_order_and_finishes_later() -> None:
    """With two slots, FIFO starts a and b first, so the long chain c -> d starts late."""
    started, result = await run_on_clock(FORK, FORK_SECONDS, scheduling="fifo", concurrency=2)
    assert result.ok
    assert started == {"a": 0, "b": 0, "c": 1, "d": 2}
    assert makespan(started, FORK_SECONDS) == 12


async def test_critical_path_starts_the_long_chain_first_and_finishes_sooner() -> None:
    """Critical-path-first starts c (rank 11) at once and d as soon as c is done: the run
    ends at 11, the length of its critical path (the lower bound), against FIFO's 12."""
    started, result = await run_on_clock(FORK, FORK_SECONDS, concurrency=2)
    assert result.ok
    assert started == {"c": 0, "a": 0, "d": 1, "b": 1}
    assert makespan(started, FORK_SECONDS) == 11
    assert result.tasks["d"].estimated == 10


async def test_priority_still_comes_before_rank() -> None:
    """An explicit priority beats a longer remaining path."""
    tasks = [{**t, "priority": 5} if t["name"] == "b" else t for t in FORK]
    started, _ = await run_on_clock(tasks, FORK_SECONDS, concurrency=1)
    assert min(started, key=started.__getitem__) == "b"
    assert sorted(started, key=started.__getitem__) == ["b", "c", "d", "a"]


async def test_ranks_update_after_a_surprise_duration() -> None:
    """No estimates: the two chains look alike until y1 takes 10 s against x1's 1 s; the
    ranks are then recomputed and the rest of the y chain goes before x2 (with the old
    ranks x2 and y2 would tie and x2, declared first, would win)."""
    tasks = [
        {"name": "x1", "agent": "ax"},
        {"name": "x2", "agent": "ax", "depends_on": ["x1"]},
        {"name": "x3", "agent": "ax", "depends_on": ["x2"]},
        {"name": "y1", "agent": "ay"},
        {"name": "y2", "agent": "ay", "depends_on": ["y1"]},
        {"name": "y3", "agent": "ay", "depends_on": ["y2"]},
    ]
    seconds = {"x1": 1, "x2": 1, "x3": 1, "y1": 10, "y2": 10, "y3": 10}
    started, result = await run_on_clock(tasks, seconds, concurrency=1, agents=("ax", "ay"))
    assert result.ok
    assert sorted(started, key=started.__getitem__) == ["x1", "y1", "y2", "y3", "x2", "x3"]
    # y2 was dispatched under the learned estimate of its agent
    assert result.tasks["y2"].estimated == pytest.approx(10.0)
    assert result.tasks["x2"].estimated == pytest.approx(1.0)


async def test_learned_estimates_converge() -> None:
    """Tasks of one agent that all take 3 s: once a few have run, the estimate each later
    task is dispatched under is 3 s (it started from the 1 s default)."""
    tasks = [{"name": f"t{i}", "depends_on": [f"t{i - 1}"] if i else []} for i in range(8)]
    seconds = {f"t{i}": 3.0 for i in range(8)}
    _, result = await run_on_clock(tasks, seconds)
    assert result.ok
    estimated = [result.tasks[f"t{i}"].estimated for i in range(8)]
    assert estimated[0] == 1.0
    assert estimated[-1] == pytest.approx(3.0)


async def test_estimates_start_from_earlier_runs_in_the_run_store() -> None:
    """A second run of the same workflow starts from what the first measured: per task
    where the task recurs, per agent for a task it never ran."""
    store = MemoryRunStore()
    seconds = {"a": 4.0, "b": 2.0, "c": 5.0}
    first = [{"name": "a"}, {"name": "b", "depends_on": ["a"]}]
    _, result = await run_on_clock(first, seconds, store=store)
    assert result.tasks["a"].estimated == 1.0  # nothing known yet
    again = [*first, {"name": "c", "depends_on": ["a"]}]
    _, result = await run_on_clock(again, seconds, store=store)
    assert result.ok
    assert result.tasks["a"].estimated == 4.0
    assert result.tasks["b"].estimated == 2.0
    # the agent's mean: the first run's two tasks (3 s on average), then a's 4 s now
    assert result.tasks["c"].estimated == pytest.approx(10 / 3)


@pytest.mark.parametrize("value", ["lifo", "", 3])
async def test_bad_scheduling_is_a_config_error_naming_the_choices(value: Any) -> None:
    """``scheduling`` accepts critical_path or fifo, on the orchestrator and per workflow."""
    async with sr.Runtime(queue="memory://", services=False) as rt:
        with pytest.raises(ConfigError, match=r"scheduling must be one of critical_path, fifo"):
            WorkflowOrchestrator(rt, scheduling=value)
        orch = WorkflowOrchestrator(rt)
        orch.register_agent("w", _noop)
        with pytest.raises(ConfigError, match=r"scheduling must be one of critical_path, fifo"):
            await orch.create_workflow(["a"], scheduling=value)


async def test_orchestrator_default_scheduling_applies_to_its_workflows() -> None:
    """``WorkflowOrchestrator(scheduling="fifo")`` is the default of its workflows."""
    async with sr.Runtime(queue="memory://", services=False) as rt:
        orch = WorkflowOrchestrator(rt, scheduling="fifo")
        orch.register_agent("w", _noop)
        first = await orch.create_workflow(["a"])
        second = await orch.create_workflow(["a"], scheduling="critical_path")
        assert orch._runs[first].scheduling == "fifo"
        assert orch._runs[second].scheduling == "critical_path"


async def _noop(msg: sr.Message, ctx: sr.Context) -> None:
    return None


PIPELINE = {
    "name": "p",
    "queue": "memory://",
    "agents": [{"name": "w", "uses": "tests.orchestrator.test_critical_path:_noop"}],
    "tasks": [{"name": "a", "agent": "w", "estimate": 5}, {"name": "b", "agent": "w"}],
}


def test_pipeline_yaml_takes_scheduling_and_estimates() -> None:
    """``scheduling`` defaults to critical_path; ``estimate`` is seconds (ints allowed)."""
    config = parse_pipeline(PIPELINE)
    assert config.scheduling == "critical_path"
    assert config.task("a").estimate == 5.0
    assert config.task("b").estimate is None
    assert parse_pipeline({**PIPELINE, "scheduling": "fifo"}).scheduling == "fifo"


@pytest.mark.parametrize(
    ("change", "field", "message"),
    [
        ({"scheduling": "lifo"}, "scheduling", "expected 'critical_path' or 'fifo', got 'lifo'"),
        ({"tasks": [{"name": "a", "agent": "w", "estimate": -1}]}, "tasks[0].estimate", ">= 0"),
        ({"tasks": [{"name": "a", "agent": "w", "estimate": "x"}]}, "tasks[0].estimate", "number"),
    ],
)
def test_pipeline_yaml_bad_scheduling_or_estimate(
    change: dict[str, Any], field: str, message: str
) -> None:
    """A bad value is a config error naming the field and what it accepts."""
    with pytest.raises(PipelineConfigError) as caught:
        parse_pipeline({**PIPELINE, **change})
    text = str(caught.value)
    assert f"{field}:" in text
    assert message in text


async def test_pipeline_scheduling_reaches_the_run() -> None:
    """The pipeline's setting (or the orchestrator's override) is what the run uses."""
    orch = DataPipelineOrchestrator(services=False)
    fifo = orch.create_pipeline({**PIPELINE, "scheduling": "fifo"})
    result = await orch.execute_pipeline(fifo)
    assert result.ok
    assert orch._get(fifo).orchestrator._runs[result.run_id].scheduling == "fifo"  # type: ignore[union-attr]
    assert result.status.tasks["a"].estimated == 5.0
    override = DataPipelineOrchestrator(services=False, scheduling="critical_path")
    pid = override.create_pipeline({**PIPELINE, "scheduling": "fifo"})
    result = await override.execute_pipeline(pid)
    assert override._get(pid).orchestrator._runs[result.run_id].scheduling == "critical_path"  # type: ignore[union-attr]
    with pytest.raises(ConfigError, match="scheduling must be one of critical_path, fifo"):
        DataPipelineOrchestrator(scheduling="lifo")  # type: ignore[arg-type]
