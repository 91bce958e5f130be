"""Workflow validation: every kind of problem is reported before anything runs."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import pytest

import swarm_runtime as sr
from swarm_runtime.errors import ConfigError, PipelineConfigError, WorkflowError
from swarm_runtime.orchestrator import WorkflowOrchestrator

from ._helpers import echo, orchestrator


@asynccontextmanager
async def worker() -> AsyncIterator[WorkflowOrchestrator]:
    """An orchestrator with one agent, ``w``, on a memory runtime."""
    async with orchestrator() as orch:
        orch.register_agent("w", echo)
        yield orch


async def problems(orch: WorkflowOrchestrator, tasks: list[Any], **kw: Any) -> list[Any]:
    with pytest.raises(PipelineConfigError) as info:
        await orch.create_workflow(tasks, **kw)
    return list(info.value.problems)


async def test_duplicate_task_names() -> None:
    """Two tasks with one name are a ``duplicate`` problem naming the first one."""
    async with worker() as orch:
        found = await problems(orch, [{"name": "a", "agent": "w"}, {"name": "a", "agent": "w"}])
        assert [p.kind for p in found] == ["duplicate"]
        assert "tasks[0]" in found[0].message


async def test_unknown_dependency() -> None:
    """A dependency on a task that does not exist is reported with its field path."""
    async with worker() as orch:
        found = await problems(orch, [{"name": "a", "agent": "w", "depends_on": ["nope"]}])
        assert [(p.kind, p.path) for p in found] == [
            ("unknown_dependency", "tasks[0].depends_on[0]")
        ]


async def test_unknown_agent() -> None:
    """A task run by an agent the runtime does not have is an ``unknown_agent`` problem."""
    async with worker() as orch:
        found = await problems(orch, [{"name": "a", "agent": "ghost"}])
        assert [p.kind for p in found] == ["unknown_agent"]
        assert found[0].message.endswith("agents: w")  # lists the agents that exist


async def test_self_dependency() -> None:
    """A task depending on itself is reported as such (not as a cycle)."""
    async with worker() as orch:
        found = await problems(orch, [{"name": "a", "agent": "w", "depends_on": ["a"]}])
        assert [p.kind for p in found] == ["self_dependency"]


async def test_cycle_is_printed() -> None:
    """A cycle is printed in data-flow order, ``a -> b -> c -> a``."""
    async with worker() as orch:
        tasks = [
            {"name": "a", "agent": "w", "depends_on": ["c"]},
            {"name": "b", "agent": "w", "depends_on": ["a"]},
            {"name": "c", "agent": "w", "depends_on": ["b"]},
        ]
        found = await problems(orch, tasks)
        assert [p.kind for p in found] == ["cycle"]
        assert "a -> b -> c -> a" in found[0].message


async def test_seed_form_dependencies() -> None:
    """The seed's ``(tasks, dependencies)`` form works, and a dependency key naming no task
    is a problem."""
    async with worker() as orch:
        workflow_id = await orch.create_workflow(
            ["process_data", "analyze_results"], {"analyze_results": ["process_data"]}
        )
        result = await orch.execute_workflow(workflow_id)
        assert result.ok
        assert result.tasks["analyze_results"].depends_on == ("process_data",)
        found = await problems(orch, ["a"], dependencies={"zzz": ["a"]})
        assert [p.path for p in found] == ["dependencies.zzz"]


async def test_invalid_task_fields() -> None:
    """Bad field values are reported per field, all at once."""
    async with worker() as orch:
        found = await problems(
            orch,
            [
                {"name": "a b", "agent": "w"},
                {"name": "c", "agent": "w", "priority": "high", "timeout": -1},
            ],
        )
        assert {p.path for p in found} == {"tasks[0].name", "tasks[1].priority", "tasks[1].timeout"}


async def test_task_without_agent() -> None:
    """With several agents, a task that names none is a problem (no guessing)."""
    async with orchestrator() as orch:
        for name in ("x", "y"):
            orch.register_agent(name, echo)
        found = await problems(orch, ["a"])
    assert [p.path for p in found] == ["tasks[0].agent"]


async def test_options_are_checked() -> None:
    """Failure policy, limits and ids are checked, with messages saying what is expected."""
    async with worker() as orch:
        with pytest.raises(ConfigError, match="failure_policy"):
            await orch.create_workflow(["a"], failure_policy="sometimes")  # type: ignore[arg-type]
        with pytest.raises(ConfigError, match="concurrency"):
            await orch.create_workflow(["a"], concurrency=0)
        found = await problems(orch, ["a"], agent_limits={"ghost": 1})
        assert [p.path for p in found] == ["agent_limits"]
        with pytest.raises(ConfigError, match="workflow_id"):
            await orch.create_workflow(["a"], workflow_id="../x")


async def test_unknown_workflow() -> None:
    """Executing or querying an unknown workflow id is a WorkflowError."""
    async with worker() as orch:
        with pytest.raises(WorkflowError, match="unknown workflow"):
            await orch.execute_workflow("nope")
        with pytest.raises(WorkflowError, match="unknown workflow"):
            orch.get_workflow_status("nope")


async def test_seed_style_agent_registration() -> None:
    """``register_agent(agent_id, agent_instance)`` (the seed's form) registers an Agent
    subclass behind the guard; a mismatched name is refused."""

    class Processor(sr.Agent):
        async def handle(self, msg: sr.Message, ctx: sr.Context) -> str:
            return f"{self.name}:{msg.payload['params']['x']}"

    async with orchestrator() as orch:
        orch.register_agent("agent_1", Processor("agent_1", role="processor"))
        with pytest.raises(ConfigError, match="use the same name"):
            orch.register_agent("agent_2", Processor("other"))
        workflow_id = await orch.create_workflow([{"name": "a", "params": {"x": 1}}])
        result = await orch.execute_workflow(workflow_id)
    assert result.results == {"a": "agent_1:1"}
