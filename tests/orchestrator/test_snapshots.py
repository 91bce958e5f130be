"""Status snapshots: frozen copies, statuses made on access, attempts kept in order."""

from __future__ import annotations

import anyio

import swarm_runtime as sr
from swarm_runtime.orchestrator import TaskState, TaskStatus
from swarm_runtime.orchestrator.status import Attempt, TaskStatuses

from ._helpers import orchestrator

GUARD = 10


async def test_snapshot_is_a_frozen_mapping_of_task_statuses() -> None:
    """A run's snapshot maps each task to a TaskStatus (with its attempts), keeps what it
    saw when the run changes later, and counts states without building statuses."""
    failing = {"b": 1}
    async with orchestrator() as orch:

        @orch.agent("w")
        async def work(msg: sr.Message, ctx: sr.Context) -> str:
            name = str(msg.payload["params"]["name"])
            if failing.get(name):
                failing[name] -= 1
                raise ValueError("first time")
            return name

        workflow_id = await orch.create_workflow(
            [
                {"name": "a", "params": {"name": "a"}},
                {"name": "b", "depends_on": ["a"], "params": {"name": "b"}},
            ]
        )
        with anyio.fail_after(GUARD):
            result = await orch.execute_workflow(workflow_id)
        status = orch.get_workflow_status(workflow_id)
        later = orch.get_workflow_status(workflow_id)
    tasks = result.tasks
    assert isinstance(tasks, TaskStatuses)
    assert list(tasks) == ["a", "b"]
    assert len(tasks) == 2
    assert "a" in tasks
    assert "z" not in tasks
    b = tasks["b"]
    assert isinstance(b, TaskStatus)
    assert tasks["b"] is b  # made once
    assert b.state is TaskState.COMPLETED
    assert b.depends_on == ("a",)
    assert b.attempts == 2
    assert [type(h) for h in b.history] == [Attempt, Attempt]
    assert [(h.number, h.outcome) for h in b.history] == [(1, "error"), (2, "ok")]
    assert b.history[0].error == "ValueError: first time"
    assert b.history[1].duration is not None
    assert result.status.counts[TaskState.COMPLETED] == 2
    assert result.status.done == 2
    assert status == later
    assert dict(status.tasks) == dict(result.tasks)
    assert "TaskStatuses(" in repr(tasks)


async def test_earlier_snapshot_is_unchanged_by_a_later_session() -> None:
    """Executing a failed run again changes its tasks, not a snapshot taken before."""
    fail = [True]
    async with orchestrator() as orch:

        @orch.agent("w")
        async def work(msg: sr.Message, ctx: sr.Context) -> str:
            if fail[0]:
                raise ValueError("down")
            return "ok"

        workflow_id = await orch.create_workflow(
            [{"name": "a", "retry": {"max_attempts": 1}}], agent="w"
        )
        with anyio.fail_after(GUARD):
            first = await orch.execute_workflow(workflow_id)
            fail[0] = False
            second = await orch.execute_workflow(workflow_id)
    assert first.tasks["a"].state is TaskState.FAILED
    assert [h.outcome for h in first.tasks["a"].history] == ["error"]
    assert second.tasks["a"].state is TaskState.COMPLETED
    assert [h.outcome for h in second.tasks["a"].history] == ["ok"]
