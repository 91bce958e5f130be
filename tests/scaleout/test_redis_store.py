"""RedisRunStore: workflow runs kept in Redis, resumable from any process, each result once."""

from __future__ import annotations

from typing import Any

import anyio
import orjson
import pytest
import redis.asyncio as aioredis

import swarm_runtime as sr
from swarm_runtime.agents.base import FunctionAgent
from swarm_runtime.backends.redis import RedisRunStore
from swarm_runtime.orchestrator import WorkflowOrchestrator, WorkflowState
from swarm_runtime.orchestrator._scaleout import DispatchRuntime

from ..conftest import REDIS_URL
from ..orchestrator._helpers import FAST_RETRY

pytestmark = pytest.mark.redis


def _url(prefix: str) -> str:
    return f"{REDIS_URL}?prefix={prefix}"


def _runtime(prefix: str) -> sr.Runtime:
    return sr.Runtime(queue=_url(prefix), retry=FAST_RETRY, grace_period=0.0)


async def _log_records(prefix: str, run_id: str) -> list[dict[str, Any]]:
    client = aioredis.Redis.from_url(REDIS_URL)
    try:
        raw = await client.lrange(f"{prefix}:wf:r:{run_id}:log", 0, -1)
    finally:
        await client.aclose()
    return [orjson.loads(item) for item in raw]


async def test_redis_queue_selects_the_redis_store(prefix: str) -> None:
    """An orchestrator on a redis:// queue keeps its runs in Redis, under the queue's prefix."""
    async with _runtime(prefix) as rt:
        orch = WorkflowOrchestrator(rt)
        assert isinstance(orch.store, RedisRunStore)
        assert orch.store.prefix == prefix


async def test_run_completes_and_is_listed_from_another_process(prefix: str) -> None:
    """A completed run's summary and results are readable by a second runtime on the same Redis."""

    async def double(msg: sr.Message, ctx: sr.Context) -> int:
        inputs = msg.payload["inputs"]
        return 1 + sum(inputs.values()) if inputs else 1

    async with _runtime(prefix) as rt:
        orch = WorkflowOrchestrator(rt)
        orch.register_agent("double", double)
        run_id = await orch.create_workflow(
            ["a", "b", "c"], {"b": ["a"], "c": ["a", "b"]}, name="chain"
        )
        result = await orch.execute_workflow(run_id)
        assert result.ok
    async with _runtime(prefix) as rt:
        other = WorkflowOrchestrator(rt)
        [summary] = await other.list_runs()
        assert (summary.run_id, summary.state, summary.completed, summary.tasks) == (
            run_id,
            WorkflowState.COMPLETED,
            3,
            3,
        )
        status = await other.load_workflow(run_id)
        assert status.state.value == "completed"
        assert other.get_results(run_id) == {"a": 1, "b": 2, "c": 4}


async def test_interrupted_run_resumes_elsewhere_without_redoing_tasks(prefix: str) -> None:
    """A run cancelled mid-way is resumed by another orchestrator, which runs only the rest."""
    ran: list[str] = []
    gate = anyio.Event()

    async def work(msg: sr.Message, ctx: sr.Context) -> str:
        name = msg.payload["params"]["n"]
        ran.append(name)
        if name == "second":
            gate.set()
            await anyio.sleep_forever()
        return name

    tasks = [
        {"name": "first", "params": {"n": "first"}},
        {"name": "second", "params": {"n": "second"}},
    ]
    async with _runtime(prefix) as rt:
        orch = WorkflowOrchestrator(rt)
        orch.register_agent("work", work)
        run_id = await orch.create_workflow(tasks, {"second": ["first"]}, name="two")
        async with anyio.create_task_group() as tg:
            tg.start_soon(orch.execute_workflow, run_id)
            await gate.wait()
            tg.cancel_scope.cancel()
    assert ran == ["first", "second"]
    ran.clear()

    async def finish(msg: sr.Message, ctx: sr.Context) -> str:
        ran.append(msg.payload["params"]["n"])
        return "done"

    async with _runtime(prefix) as rt:
        orch = WorkflowOrchestrator(rt)
        orch.register_agent("work", finish)
        found = await orch.find_unfinished("two")
        assert found is not None
        assert found.run_id == run_id
        assert found.completed == 1
        result = await orch.resume_workflow(run_id)
        assert result.ok
        assert result.results == {"first": "first", "second": "done"}
    assert ran == ["second"]
    completed = [
        r["name"]
        for r in await _log_records(prefix, run_id)
        if r.get("k") == "task" and r.get("state") == "completed"
    ]
    assert sorted(completed) == ["first", "second"]


async def test_a_result_is_recorded_once_whoever_brings_it(prefix: str) -> None:
    """Two writers recording the same task, and a retried batch, leave one completed record."""
    client = aioredis.Redis.from_url(REDIS_URL)
    try:
        store = RedisRunStore(client, prefix=prefix)
        header = {"k": "run", "run_id": "r1", "name": "w", "created_at": 1.0, "tasks": [{}]}
        first = await store.create(header)
        with pytest.raises(sr.WorkflowError, match="already exists"):
            await store.create({**header, "name": "other"})
        _, second = await store.load("r1")
        record = {"k": "task", "name": "t", "state": "completed", "result": 1, "at": 2.0}
        first.append(record)
        second.append({**record, "result": 2})
        await first.flush()
        await second.flush()
        await second._store_batch([{**record, "result": 3}])  # type: ignore[attr-defined]
        second._seq -= 1  # type: ignore[attr-defined]  # replay the batch number: a retry
        await second._store_batch([{"k": "end", "state": "completed", "at": 3.0}])  # type: ignore[attr-defined]
        await first.close()
        await second.close()
        loaded, _ = await store.load("r1")
        assert loaded.completed["t"]["result"] == 1
        assert loaded.state.value == "pending"  # the replayed end record was not applied
        records = await _log_records(prefix, "r1")
        assert [r.get("k") for r in records] == ["run", "task"]
        assert await store.recorded("r1") == {"t"}
        [summary] = await store.list_runs()
        assert summary.completed == 1
        assert summary.updated_at == 2.0
        with pytest.raises(sr.WorkflowError, match="no run with id 'nope'"):
            await store.load("nope")
    finally:
        await client.aclose()


async def test_a_run_executing_elsewhere_is_not_executed_twice(prefix: str) -> None:
    """While one process executes a run (its tasks handled by a guarded agent of another
    runtime), the run is listed as running, not offered for resumption, and the other
    orchestrator's attempt to execute it is refused."""
    started = anyio.Event()
    release = anyio.Event()

    async def slow(msg: sr.Message, ctx: sr.Context) -> str:
        started.set()
        await release.wait()
        return "ok"

    url = f"{REDIS_URL}?prefix={prefix}"
    remote = FunctionAgent("slow", slow)
    dispatcher = DispatchRuntime(url, remote=[remote], grace_period=0.0)
    async with dispatcher, _runtime(prefix) as second_rt:
        first = WorkflowOrchestrator(dispatcher)
        run_id = await first.create_workflow(["only"], name="busy", agent="slow")
        second = WorkflowOrchestrator(second_rt)
        second.register_agent("slow", slow)  # behind the guard; the run is not live here
        async with anyio.create_task_group() as tg:
            tg.start_soon(first.execute_workflow, run_id)
            await started.wait()
            [summary] = await second.list_runs()
            assert summary.state is WorkflowState.RUNNING
            assert await second.find_unfinished("busy") is None
            with pytest.raises(sr.WorkflowError, match="being executed by another process"):
                await second.resume_workflow(run_id)
            release.set()
        [summary] = await second.list_runs()
        assert summary.state is WorkflowState.COMPLETED
        assert summary.completed == 1
