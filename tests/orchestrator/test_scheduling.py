"""Ready-set scheduling: no level barrier, limits, priorities, and results passed by name."""

from __future__ import annotations

from typing import Any

import anyio
import anyio.lowlevel

import swarm_runtime as sr
from swarm_runtime.orchestrator import TaskState, WorkflowState

from ._helpers import echo, orchestrator

GUARD = 10  # seconds: a hung workflow fails the test instead of blocking the suite


async def test_fast_branch_does_not_wait_for_slow_sibling() -> None:
    """A task whose inputs are done starts at once: the slow branch's task finishes only
    after the fast branch's second level has run, which a level barrier would deadlock."""
    fast_done = anyio.Event()
    order: list[str] = []
    async with orchestrator() as orch:

        @orch.agent("w", concurrency=4)
        async def work(msg: sr.Message, ctx: sr.Context) -> Any:
            name = msg.payload["params"]["name"]
            if name == "slow":
                await fast_done.wait()
            order.append(name)
            if name == "fast2":
                fast_done.set()
            return name

        workflow_id = await orch.create_workflow(
            [
                {"name": "root", "params": {"name": "root"}},
                {"name": "slow", "depends_on": ["root"], "params": {"name": "slow"}},
                {"name": "fast1", "depends_on": ["root"], "params": {"name": "fast1"}},
                {"name": "fast2", "depends_on": ["fast1"], "params": {"name": "fast2"}},
                {"name": "join", "depends_on": ["slow", "fast2"], "params": {"name": "join"}},
            ]
        )
        with anyio.fail_after(GUARD):
            result = await orch.execute_workflow(workflow_id)
    assert result.ok
    assert order == ["root", "fast1", "fast2", "slow", "join"]


async def test_results_are_passed_downstream_by_name() -> None:
    """Each task gets its params and its upstream results keyed by upstream task name;
    root tasks get the workflow's inputs as ``input``."""
    async with orchestrator() as orch:

        @orch.agent("add")
        async def add(msg: sr.Message, ctx: sr.Context) -> int:
            inputs = msg.payload["inputs"]
            base = inputs.pop("input", 0)
            return base + msg.payload["params"]["n"] + sum(inputs.values())

        workflow_id = await orch.create_workflow(
            [
                {"name": "a", "params": {"n": 1}},
                {"name": "b", "depends_on": ["a"], "params": {"n": 10}},
                {"name": "c", "depends_on": ["a"], "params": {"n": 100}},
                {"name": "d", "depends_on": ["b", "c"], "params": {"n": 1000}},
            ],
            inputs=5,
        )
        result = await orch.execute_workflow(workflow_id)
    assert result.results == {"a": 6, "b": 16, "c": 106, "d": 1122}
    assert orch.get_results(workflow_id) == result.results


async def test_workflow_concurrency_limit_is_reached_never_exceeded() -> None:
    """With ``concurrency=3`` at most three tasks run at once, and three do: every handler
    waits until three are running together (so a lower limit would hang)."""
    running = 0
    peak = 0
    full = anyio.Event()
    async with orchestrator() as orch:

        @orch.agent("w", concurrency=10)
        async def work(msg: sr.Message, ctx: sr.Context) -> None:
            nonlocal running, peak
            running += 1
            peak = max(peak, running)
            if running == 3:
                full.set()
            await full.wait()
            await anyio.lowlevel.checkpoint()
            running -= 1

        workflow_id = await orch.create_workflow([f"t{i}" for i in range(10)], concurrency=3)
        with anyio.fail_after(GUARD):
            result = await orch.execute_workflow(workflow_id)
    assert result.ok
    assert peak == 3


async def test_per_agent_limit() -> None:
    """``agent_limits`` bounds one agent's tasks in flight while other agents run freely."""
    running = {"a": 0, "b": 0}
    peak = {"a": 0, "b": 0}
    gates = {"a": anyio.Event(), "b": anyio.Event()}
    wanted = {"a": 2, "b": 4}
    async with orchestrator() as orch:

        def make(name: str) -> Any:
            async def work(msg: sr.Message, ctx: sr.Context) -> None:
                running[name] += 1
                peak[name] = max(peak[name], running[name])
                if running[name] == wanted[name]:
                    gates[name].set()
                await gates[name].wait()
                await anyio.lowlevel.checkpoint()
                running[name] -= 1

            return work

        orch.register_agent("a", make("a"), concurrency=10)
        orch.register_agent("b", make("b"), concurrency=10)
        tasks = [{"name": f"{agent}{i}", "agent": agent} for agent in "ab" for i in range(8)]
        workflow_id = await orch.create_workflow(tasks, agent_limits={"a": 2}, concurrency=6)
        with anyio.fail_after(GUARD):
            result = await orch.execute_workflow(workflow_id)
    assert result.ok
    assert peak == {"a": 2, "b": 4}


async def test_priorities_order_ready_tasks() -> None:
    """Among ready tasks, higher priority is dispatched first (ties: declaration order)."""
    order: list[str] = []
    async with orchestrator() as orch:

        @orch.agent("w")
        async def work(msg: sr.Message, ctx: sr.Context) -> None:
            order.append(msg.payload["params"]["name"])

        tasks: list[dict[str, Any]] = [{"name": "root", "params": {"name": "root"}}]
        for name, priority in [("low", -1), ("mid", 0), ("high", 5), ("mid2", 0), ("top", 9)]:
            tasks.append(
                {
                    "name": name,
                    "depends_on": ["root"],
                    "priority": priority,
                    "params": {"name": name},
                }
            )
        workflow_id = await orch.create_workflow(tasks, concurrency=1)
        await orch.execute_workflow(workflow_id)
    assert order == ["root", "top", "high", "mid", "mid2", "low"]


async def test_first_tasks_start_while_a_large_ready_set_is_sent() -> None:
    """On memory://, where a publish never waits, the scheduler sends a large ready set in
    small batches with a yield between them: the first task runs before the whole set is
    in the queue (its most critical tasks are not held back by the rest)."""
    queued_at_first: list[int] = []
    async with orchestrator() as orch:

        @orch.agent("w")
        async def work(msg: sr.Message, ctx: sr.Context) -> None:
            if not queued_at_first:
                stats = await orch.runtime.queue.stats(sr.CommunicationSystem.inbox("w"))
                queued_at_first.append(stats.depth)

        tasks = [{"name": f"t{i}"} for i in range(500)]
        workflow_id = await orch.create_workflow(tasks)
        with anyio.fail_after(GUARD):
            result = await orch.execute_workflow(workflow_id)
    assert result.ok
    assert 0 < queued_at_first[0] < 500


async def test_status_snapshots_are_copies() -> None:
    """States, attempts and timings are queryable, and snapshots do not change afterwards."""
    seen: dict[str, Any] = {}
    async with orchestrator() as orch:

        @orch.agent("w")
        async def work(msg: sr.Message, ctx: sr.Context) -> None:
            if msg.payload["params"].get("look"):
                status = orch.get_workflow_status(msg.workflow_id or "")
                seen["during"] = status
                seen["self"] = status.tasks["b"].state

        workflow_id = await orch.create_workflow(
            [{"name": "a"}, {"name": "b", "depends_on": ["a"], "params": {"look": True}}]
        )
        before = orch.get_workflow_status(workflow_id)
        result = await orch.execute_workflow(workflow_id)
    assert before.state is WorkflowState.PENDING
    assert before.tasks["a"].state is TaskState.PENDING
    during = seen["during"]
    assert during.state is WorkflowState.RUNNING
    assert during.tasks["a"].state is TaskState.COMPLETED
    assert seen["self"] is TaskState.RUNNING
    assert during.tasks["b"].finished_at is None
    final = result.status
    assert final.state is WorkflowState.COMPLETED
    assert final.counts[TaskState.COMPLETED] == 2
    for task in final.tasks.values():
        assert task.attempts == 1
        assert task.started_at is not None
        assert task.finished_at is not None
        assert task.dispatched_at is not None
        assert task.dispatched_at <= task.started_at
        assert [a.outcome for a in task.history] == ["ok"]
    assert orch.get_task_status(workflow_id, "b").state is TaskState.COMPLETED


async def test_unguarded_agents_work_through_runtime_events() -> None:
    """An agent added to the runtime directly runs workflow tasks too; its attempts are
    followed through the runtime's task events."""
    async with orchestrator() as orch:
        orch.runtime.agent("plain")(echo)
        workflow_id = await orch.create_workflow(
            [{"name": "a", "params": {"x": 1}}, {"name": "b", "depends_on": ["a"]}],
            agent="plain",
        )
        result = await orch.execute_workflow(workflow_id)
    assert result.ok
    assert result.results["b"]["inputs"]["a"]["params"] == {"x": 1}
    assert result.tasks["b"].replica == 0
    assert [a.outcome for a in result.tasks["b"].history] == ["ok"]


async def test_executing_a_completed_workflow_runs_nothing() -> None:
    """A completed workflow executed again returns its result without running a task."""
    calls = 0
    async with orchestrator() as orch:

        @orch.agent("w")
        async def work(msg: sr.Message, ctx: sr.Context) -> int:
            nonlocal calls
            calls += 1
            return calls

        workflow_id = await orch.create_workflow(["a"])
        first = await orch.execute_workflow(workflow_id)
        second = await orch.execute_workflow(workflow_id)
    assert calls == 1
    assert first.results == second.results == {"a": 1}
