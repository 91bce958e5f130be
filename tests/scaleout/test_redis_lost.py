"""Redis lost mid-run: the orchestrator's connection drops and Redis refuses it for a while;
calls are retried with backoff and a warning, and no result is lost or recorded twice."""

from __future__ import annotations

from collections import Counter
from typing import Any

import anyio
import orjson
import pytest
import redis.asyncio as aioredis
from structlog.testing import capture_logs

import swarm_runtime as sr
from swarm_runtime.agents.base import FunctionAgent
from swarm_runtime.orchestrator import WorkflowOrchestrator, _scheduler
from swarm_runtime.orchestrator._scaleout import DispatchRuntime

from ..conftest import REDIS_URL
from ..queue.redis_helpers import redis_proxy

pytestmark = pytest.mark.redis

TASKS = 30


async def test_results_survive_a_lost_connection(
    prefix: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A worker runtime keeps working while the orchestrator's Redis connection is cut and
    refused for half a second; the run completes with every result recorded once."""
    # A subscribe whose reply the cut loses leaves its batch of results leased to nobody
    # until the lease ends (see the redis queue's docs): keep that lease short here.
    monkeypatch.setattr(_scheduler, "RESULT_LEASE", 2.0)
    executed: Counter[str] = Counter()
    halfway = anyio.Event()

    async def work(msg: sr.Message, ctx: sr.Context) -> Any:
        name = msg.payload["params"]["n"]
        executed[name] += 1
        if sum(executed.values()) >= TASKS // 2:
            halfway.set()
        await anyio.sleep(0.02)
        return name

    async with redis_proxy() as proxy:
        direct = f"{REDIS_URL}?prefix={prefix}"
        proxied = f"{proxy.url}?prefix={prefix}&retries=8"
        agent = FunctionAgent("work", work, concurrency=4)
        worker = sr.Runtime(direct, grace_period=0.0, services=False)
        worker.add_agent(agent)
        remote = FunctionAgent("work", work, concurrency=4)
        dispatcher = DispatchRuntime(proxied, remote=[remote], grace_period=0.0, services=False)
        with capture_logs() as logs:
            async with worker, dispatcher:
                orch = WorkflowOrchestrator(dispatcher)
                tasks = [{"name": f"t{i}", "params": {"n": f"t{i}"}} for i in range(TASKS)]
                run_id = await orch.create_workflow(tasks, name="lost", agent="work")
                outcome: list[Any] = []

                async def execute() -> None:
                    outcome.append(await orch.execute_workflow(run_id))

                async with anyio.create_task_group() as tg:
                    tg.start_soon(execute)
                    await halfway.wait()
                    proxy.stop()  # drop the connections and refuse new ones
                    await anyio.sleep(0.5)
                    await proxy.start()  # Redis is back
        [result] = outcome
        assert result.ok, result.error
        assert result.results == {f"t{i}": f"t{i}" for i in range(TASKS)}
    assert set(executed) == {f"t{i}" for i in range(TASKS)}
    assert any(entry["event"] == "redis connection lost; retrying" for entry in logs)
    client = aioredis.Redis.from_url(REDIS_URL)
    try:
        raw = await client.lrange(f"{prefix}:wf:r:{run_id}:log", 0, -1)
        done = await client.hlen(f"{prefix}:wf:r:{run_id}:done")
    finally:
        await client.aclose()
    records = [orjson.loads(item) for item in raw]
    completed = Counter(
        r["name"] for r in records if r.get("k") == "task" and r.get("state") == "completed"
    )
    assert done == TASKS
    assert set(completed.values()) == {1}
    assert len(completed) == TASKS
