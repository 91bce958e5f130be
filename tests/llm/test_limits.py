"""Provider limits: metrics, the endpoint's circuit breaker, rate limits (shared on Redis)."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry

from swarm_runtime.errors import CircuitOpenError, ConfigError
from swarm_runtime.llm import Agent, LLMMetrics, RateLimit, Swarm
from swarm_runtime.services.circuit import BreakerConfig
from swarm_runtime.testing import ScriptedModel, ScriptedServer, error, reply, tool_call

from ..conftest import REDIS_URL, require_redis
from .conftest import NO_WAIT, user

ROOT = Path(__file__).resolve().parents[2]


def sample(registry: CollectorRegistry, name: str, **labels: str) -> float:
    return registry.get_sample_value(name, labels) or 0.0


async def test_metrics_count_calls_tokens_latency_and_replays() -> None:
    """Requests by model and status, tokens in and out, latency, replayed steps."""
    registry = CollectorRegistry()
    metrics = LLMMetrics(registry)

    def act() -> str:
        return "x"

    model = ScriptedModel(
        error(503, "down"), tool_call("act"), reply("ok", usage=(10, 4)), default=None
    )
    client = Swarm(model, retry=NO_WAIT, metrics=metrics, store="memory://")
    first = await client.arun(Agent(model="m1", functions=[act]), user("x"))
    labels = {"endpoint": "scripted", "model": "m1"}
    assert sample(registry, "swarm_llm_requests_total", status="200", **labels) == 2
    assert sample(registry, "swarm_llm_requests_total", status="503", **labels) == 1
    assert sample(registry, "swarm_llm_tokens_total", model="m1", direction="out") >= 4
    assert sample(registry, "swarm_llm_tokens_total", model="m1", direction="in") >= 10
    assert sample(registry, "swarm_llm_request_seconds_count", model="m1") == 2
    await client.arun(Agent(model="m1", functions=[act]), user("x"), run_id=first.run_id)
    assert sample(registry, "swarm_llm_replayed_steps_total", kind="model") == 2
    assert sample(registry, "swarm_llm_replayed_steps_total", kind="tool") == 1


async def test_the_endpoint_breaker_opens_on_server_errors() -> None:
    """Server errors in a row open the endpoint's breaker: the next call is refused
    without reaching the server."""
    model = ScriptedModel(*[error(500, "boom")] * 6)
    client = Swarm(model, retry=NO_WAIT, breaker=BreakerConfig(failure_threshold=2, cooldown=60))
    with pytest.raises(CircuitOpenError):
        await client.arun(Agent(), user("x"))
    assert len(model.requests) == 2
    with pytest.raises(CircuitOpenError):
        await client.arun(Agent(), user("x"))
    assert len(model.requests) == 2


async def test_rate_limited_answers_do_not_open_the_breaker() -> None:
    """429s show the endpoint is up: retried after retry-after, breaker stays closed."""
    model = ScriptedModel(*[error(429, "slow", retry_after=0)] * 3, reply("ok"))
    client = Swarm(model, retry=NO_WAIT, breaker=BreakerConfig(failure_threshold=2))
    response = await client.arun(Agent(), user("x"))
    assert response.messages[0]["content"] == "ok"
    assert len(model.requests) == 4


def test_rate_limit_settings_are_checked() -> None:
    """Bad limits are configuration errors naming the field."""
    with pytest.raises(ConfigError, match="requests"):
        RateLimit(requests=0)
    with pytest.raises(ConfigError, match="per"):
        RateLimit(requests=1, per=0.1)
    with pytest.raises(ConfigError, match="storage 'ftp://x'"):
        Swarm(ScriptedModel(), rate_limit=RateLimit(requests=1, storage="ftp://x"))


async def test_tokens_per_window_hold_back_the_next_call() -> None:
    """A token budget used up by one call makes the next wait for the window to move."""
    import anyio

    waits: list[float] = []
    model = ScriptedModel(reply("a", usage=(5, 50)), reply("b"))
    client = Swarm(model, rate_limit=RateLimit(tokens=60, per=1))

    original = client.caller.limiter._sleep  # type: ignore[union-attr]

    async def record(seconds: float) -> None:
        waits.append(seconds)
        await original(seconds)

    client.caller.limiter._sleep = record  # type: ignore[union-attr]
    with anyio.fail_after(10):
        await client.arun(Agent(), user("x"))
        await client.arun(Agent(), user("x"))
    assert waits  # the second call's prompt did not fit the first call's window


@pytest.mark.redis
@pytest.mark.slow
def test_two_processes_share_a_rate_limit_on_redis(tmp_path: Path) -> None:
    """Two processes under one Redis limit of 2 requests per 2 seconds: together they send
    2 at once, the other 2 two seconds later (each alone would send its 2 at once)."""
    require_redis()
    prefix = f"swarmtest:{uuid.uuid4().hex[:12]}"
    go = tmp_path / "go"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    worker = Path(__file__).with_name("ratelimit_worker.py")
    with ScriptedServer(default=reply("ok")) as server:
        args = [sys.executable, str(worker), server.base_url, REDIS_URL, prefix, str(go)]
        children = [
            subprocess.Popen(args, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
            for _ in range(2)
        ]
        try:
            for child in children:
                assert child.stdout is not None
                assert child.stdout.readline().strip() == b"ready", child.stderr
            go.touch()
            outputs = [child.communicate(timeout=30) for child in children]
        finally:
            for child in children:
                if child.poll() is None:
                    child.kill()
                    child.communicate()
        assert [c.returncode for c in children] == [0, 0], outputs
        times = sorted(request.at for request in server.requests)
    assert len(times) == 4
    assert sum(1 for t in times if t - times[0] < 1.5) == 2
    import asyncio

    from ..queue.redis_helpers import delete_keys

    asyncio.run(delete_keys(prefix))
