"""Failures: retries, both failure policies, timeouts and cancellation."""

from __future__ import annotations

from typing import Any

import anyio
import pytest

import swarm_runtime as sr
from swarm_runtime.orchestrator import TaskState, WorkflowState

from ._helpers import echo, orchestrator

GUARD = 10


async def test_retries_then_success() -> None:
    """A task that fails twice and then succeeds completes on attempt 3, and its history
    shows the two failures; its dependents see only the good result."""
    async with orchestrator() as orch:

        @orch.agent("flaky")
        async def flaky(msg: sr.Message, ctx: sr.Context) -> Any:
            if msg.payload["params"].get("flaky") and msg.attempts < 3:
                raise RuntimeError(f"boom {msg.attempts}")
            return {"attempt": msg.attempts, "inputs": msg.payload["inputs"]}

        workflow_id = await orch.create_workflow(
            [{"name": "a", "params": {"flaky": True}}, {"name": "b", "depends_on": ["a"]}]
        )
        result = await orch.execute_workflow(workflow_id)
    assert result.ok
    task = result.tasks["a"]
    assert task.attempts == 3
    assert [a.outcome for a in task.history] == ["error", "error", "ok"]
    assert task.history[0].error == "RuntimeError: boom 1"
    assert result.results["b"]["inputs"] == {"a": {"attempt": 3, "inputs": {}}}


async def test_per_task_max_attempts() -> None:
    """A task's own ``retry.max_attempts`` overrides the workflow's."""
    async with orchestrator() as orch:

        @orch.agent("bad")
        async def bad(msg: sr.Message, ctx: sr.Context) -> None:
            raise ValueError("always")

        workflow_id = await orch.create_workflow(
            [{"name": "a", "retry": {"max_attempts": 5}}], retry=sr.RetryPolicy(2, 0.0, 0.0)
        )
        result = await orch.execute_workflow(workflow_id)
    assert result.tasks["a"].attempts == 5
    assert result.tasks["a"].max_attempts == 5


async def _failing_workflow(policy: str) -> Any:
    """``bad`` always fails; ``after`` depends on it; ``side`` -> ``side2`` is independent
    and ``side`` waits until ``bad`` has failed for good."""
    failed = anyio.Event()
    ran: list[str] = []
    async with orchestrator() as orch:

        @orch.agent("w", concurrency=4)
        async def work(msg: sr.Message, ctx: sr.Context) -> str:
            name = msg.payload["params"]["name"]
            if name == "bad":
                if msg.attempts == 3:
                    failed.set()
                raise RuntimeError("bad data")
            if name == "side":
                await failed.wait()
                await anyio.sleep(0.01)  # let the failure reach the scheduler first
            ran.append(name)
            return name

        workflow_id = await orch.create_workflow(
            [
                {"name": "bad", "params": {"name": "bad"}},
                {"name": "after", "depends_on": ["bad"], "params": {"name": "after"}},
                {"name": "side", "params": {"name": "side"}},
                {"name": "side2", "depends_on": ["side"], "params": {"name": "side2"}},
            ],
            failure_policy=policy,  # type: ignore[arg-type]
        )
        with anyio.fail_after(GUARD):
            result = await orch.execute_workflow(workflow_id)
    return result, ran


async def test_retries_then_failure_fail_fast() -> None:
    """With ``fail_fast`` the first task that fails for good fails the workflow and every
    task not finished is cancelled: nothing else runs."""
    result, ran = await _failing_workflow("fail_fast")
    assert result.state is WorkflowState.FAILED
    assert not result.ok
    assert result.tasks["bad"].state is TaskState.FAILED
    assert result.tasks["bad"].attempts == 3
    assert result.error == "task 'bad' failed after 3 attempt(s): RuntimeError: bad data"
    assert {n: t.state for n, t in result.tasks.items() if n != "bad"} == {
        "after": TaskState.CANCELLED,
        "side": TaskState.CANCELLED,
        "side2": TaskState.CANCELLED,
    }
    assert "side2" not in ran


async def test_retries_then_failure_continue() -> None:
    """With ``continue`` everything not downstream of the failure still runs; the
    failed task's dependents are skipped and the workflow ends failed."""
    result, ran = await _failing_workflow("continue")
    assert result.state is WorkflowState.FAILED
    assert result.tasks["bad"].state is TaskState.FAILED
    assert result.tasks["after"].state is TaskState.SKIPPED
    assert result.tasks["after"].error == "upstream task 'bad' failed"
    assert result.tasks["side"].state is TaskState.COMPLETED
    assert result.tasks["side2"].state is TaskState.COMPLETED
    assert ran == ["side", "side2"]


async def test_timeout_fails_attempts() -> None:
    """An attempt running past the task's timeout fails with TaskTimeoutError and is
    retried; when every attempt times out, the task fails."""
    calls = 0
    async with orchestrator() as orch:

        @orch.agent("sleepy")
        async def sleepy(msg: sr.Message, ctx: sr.Context) -> str:
            nonlocal calls
            calls += 1
            if msg.payload["params"]["hang"]:
                await anyio.sleep_forever()
            return "quick"

        workflow_id = await orch.create_workflow(
            [
                {"name": "hang", "params": {"hang": True}, "timeout": 0.05},
                {"name": "ok", "params": {"hang": False}, "timeout": 5},
            ],
            retry=sr.RetryPolicy(2, 0.0, 0.0),
            failure_policy="continue",
        )
        with anyio.fail_after(GUARD):
            result = await orch.execute_workflow(workflow_id)
    hang = result.tasks["hang"]
    assert hang.state is TaskState.FAILED
    assert hang.attempts == 2
    assert [a.outcome for a in hang.history] == ["timeout", "timeout"]
    assert hang.error is not None
    assert hang.error.startswith("TaskTimeoutError: task 'hang' took longer than its timeout")
    assert result.tasks["ok"].state is TaskState.COMPLETED
    assert calls == 3


async def test_cancel_running_workflow() -> None:
    """``cancel_workflow`` stops a running workflow: it ends ``cancelled``, unfinished tasks
    are cancelled and their dependents never run."""
    started = anyio.Event()
    ran: list[str] = []
    async with orchestrator() as orch:

        @orch.agent("w")
        async def work(msg: sr.Message, ctx: sr.Context) -> None:
            name = msg.payload["params"]["name"]
            ran.append(name)
            if name == "block":
                started.set()
                await anyio.sleep_forever()

        workflow_id = await orch.create_workflow(
            [
                {"name": "first", "params": {"name": "first"}},
                {"name": "block", "depends_on": ["first"], "params": {"name": "block"}},
                {"name": "last", "depends_on": ["block"], "params": {"name": "last"}},
            ]
        )
        results: list[Any] = []

        async def execute() -> None:
            results.append(await orch.execute_workflow(workflow_id))

        with anyio.fail_after(GUARD):
            async with anyio.create_task_group() as tg:
                tg.start_soon(execute)
                await started.wait()
                assert orch.get_workflow_status(workflow_id).state is WorkflowState.RUNNING
                assert await orch.cancel_workflow(workflow_id)
        assert not await orch.cancel_workflow(workflow_id)  # already finished
    result = results[0]
    assert result.state is WorkflowState.CANCELLED
    assert result.error == "the workflow was cancelled"
    assert result.tasks["first"].state is TaskState.COMPLETED
    assert result.tasks["block"].state is TaskState.CANCELLED
    assert result.tasks["last"].state is TaskState.CANCELLED
    assert ran == ["first", "block"]


async def test_cancel_pending_workflow() -> None:
    """A workflow cancelled before it ran is cancelled at once; executing it again runs it."""
    async with orchestrator() as orch:
        orch.register_agent("w", _ok)
        workflow_id = await orch.create_workflow(["a", "b"])
        assert await orch.cancel_workflow(workflow_id)
        status = orch.get_workflow_status(workflow_id)
        assert status.state is WorkflowState.CANCELLED
        assert {t.state for t in status.tasks.values()} == {TaskState.CANCELLED}
        result = await orch.execute_workflow(workflow_id)
    assert result.ok


async def test_interrupted_by_caller_cancellation() -> None:
    """Cancelling the caller marks the run ``interrupted`` (resumable) and the cancellation
    propagates; executing it again finishes it, taking the result the interrupted attempt
    delivered later instead of running the task again."""
    started = anyio.Event()
    release = anyio.Event()
    calls: list[str] = []
    async with orchestrator() as orch:

        @orch.agent("w")
        async def work(msg: sr.Message, ctx: sr.Context) -> str:
            name = msg.payload["params"]["name"]
            calls.append(name)
            if name == "b":
                started.set()
                await release.wait()
            return name

        workflow_id = await orch.create_workflow(
            [
                {"name": "a", "params": {"name": "a"}},
                {"name": "b", "depends_on": ["a"], "params": {"name": "b"}},
                {"name": "c", "depends_on": ["b"], "params": {"name": "c"}},
            ]
        )
        with anyio.fail_after(GUARD):
            async with anyio.create_task_group() as tg:
                tg.start_soon(orch.execute_workflow, workflow_id)
                await started.wait()
                tg.cancel_scope.cancel()
            status = orch.get_workflow_status(workflow_id)
            assert status.state is WorkflowState.INTERRUPTED
            assert status.tasks["a"].state is TaskState.COMPLETED
            assert status.tasks["b"].state is TaskState.PENDING
            release.set()
            result = await orch.execute_workflow(workflow_id)
    assert result.ok
    assert result.results == {"a": "a", "b": "b", "c": "c"}
    assert calls == ["a", "b", "c"]
    assert result.status.sessions == 2


async def test_running_workflow_cannot_run_twice() -> None:
    """Executing a workflow that is already running is refused."""
    started = anyio.Event()
    async with orchestrator() as orch:

        @orch.agent("w")
        async def work(msg: sr.Message, ctx: sr.Context) -> None:
            started.set()
            await anyio.sleep_forever()

        workflow_id = await orch.create_workflow(["a"])
        with anyio.fail_after(GUARD):
            async with anyio.create_task_group() as tg:
                tg.start_soon(orch.execute_workflow, workflow_id)
                await started.wait()
                with pytest.raises(sr.SwarmError, match="already running"):
                    await orch.execute_workflow(workflow_id)
                await orch.cancel_workflow(workflow_id)


async def _ok(msg: sr.Message, ctx: sr.Context) -> str:
    return "ok"


@pytest.mark.parametrize("backend", ["memory", "file"])
async def test_a_task_that_cannot_be_sent_fails_alone(backend: str, tmp_path: Any) -> None:
    """If a batch of ready tasks cannot be sent (an agent left the runtime after the
    workflow was created), its tasks are sent one by one: only the unsendable task fails,
    'could not dispatch', and the others of the same ready set run."""
    queue = "memory://" if backend == "memory" else f"file://{tmp_path / 'q'}"
    async with orchestrator(queue) as orch:
        orch.agent("ok")(echo)
        orch.agent("gone")(echo)
        tasks = [{"name": f"t{i}", "agent": "ok"} for i in range(40)]
        tasks.insert(3, {"name": "lost", "agent": "gone"})
        workflow_id = await orch.create_workflow(tasks, failure_policy="continue")
        del orch.runtime._routes["gone"]  # what leaving the runtime would do
        result = await orch.execute_workflow(workflow_id)
    lost = result.tasks["lost"]
    assert lost.state is TaskState.FAILED
    assert "could not dispatch" in (lost.error or "")
    assert "UnknownAgentError" in (lost.error or "")
    assert {result.tasks[f"t{i}"].state for i in range(40)} == {TaskState.COMPLETED}
