"""Background services inside a running Runtime: they act on what happens to messages."""

from __future__ import annotations

import urllib.request

import anyio
import pytest

import swarm_runtime as sr
from swarm_runtime.services import BreakerConfig, CircuitState, Services

FAST = sr.RetryPolicy(max_attempts=10, base_delay=0.0, max_delay=0.0)


async def test_services_run_in_the_runtime_and_stop_with_it() -> None:
    """services=True (the default) counts every task; the services stop on shutdown."""
    async with sr.Runtime(queue="memory://") as rt:

        @rt.agent("a")
        async def a(msg: sr.Message, ctx: sr.Context) -> int:
            return 1

        for _ in range(5):
            await rt.request("a", None)
        assert rt.services is not None
        totals = rt.services.metrics.task_totals("a")
        assert totals.outcomes.get("ok") == 5
    assert not rt.running


async def test_open_circuit_really_stops_traffic_then_recovers() -> None:
    """After N consecutive failures the agent takes no messages; after the cooldown a
    successful probe closes the circuit and the rest are handled."""
    services = Services.create(retry=FAST, breaker=BreakerConfig(failure_threshold=3, cooldown=0.3))
    healthy = anyio.Event()
    handled: list[int] = []
    async with sr.Runtime(queue="memory://", retry=FAST, services=services) as rt:

        @rt.agent("flaky")
        async def flaky(msg: sr.Message, ctx: sr.Context) -> None:
            if not healthy.is_set():
                raise ConnectionError("backend down")
            handled.append(msg.payload)

        await rt.send("flaky", 0)
        with anyio.fail_after(10):
            while services.errors.state("flaky") is not CircuitState.OPEN:
                await anyio.sleep(0.01)
        calls_when_opened = services.metrics.task_totals("flaky").outcomes.get("error", 0)
        assert calls_when_opened == 3
        for i in range(1, 4):
            await rt.send("flaky", i)
        await anyio.sleep(0.1)  # open: nothing is taken from the inbox
        assert services.metrics.task_totals("flaky").outcomes.get("error", 0) == 3
        assert await rt.queue.depth("agent.flaky") == 4
        healthy.set()
        await rt.join(timeout=10)
        assert services.errors.state("flaky") is CircuitState.CLOSED
    assert sorted(handled) == [0, 1, 2, 3]


async def test_fatal_errors_are_dead_lettered_at_once() -> None:
    """An error classified as fatal is not retried."""
    services = Services.create(retry=FAST, classify={PermissionError: "fatal"})
    async with sr.Runtime(queue="memory://", retry=FAST, services=services) as rt:

        @rt.agent("a")
        async def a(msg: sr.Message, ctx: sr.Context) -> None:
            raise PermissionError("no access to the bucket")

        with pytest.raises(sr.AgentError, match="1 attempt.*no access"):
            await rt.request("a", None, timeout=5)
        [dead] = await rt.queue.dead_letters("agent.a")
        assert dead.attempts == 1


async def test_balancer_spreads_work_and_never_exceeds_capacity() -> None:
    """With several replicas the balancer places each message; no replica runs more than
    its concurrency at once, and every replica gets work."""
    running: dict[int, int] = {}
    peak: dict[int, int] = {}
    done: dict[int, int] = {}
    async with sr.Runtime(queue="memory://", balancer="least_loaded") as rt:

        @rt.agent("w", replicas=3, concurrency=2)
        async def w(msg: sr.Message, ctx: sr.Context) -> None:
            running[ctx.replica] = running.get(ctx.replica, 0) + 1
            peak[ctx.replica] = max(peak.get(ctx.replica, 0), running[ctx.replica])
            await anyio.sleep(0.002)
            running[ctx.replica] -= 1
            done[ctx.replica] = done.get(ctx.replica, 0) + 1

        for i in range(60):
            await rt.send("w", i)
        await rt.join(timeout=20)
        assert rt.services is not None
        # settled load is released; only the dispatcher's reservation for the next message
        assert sum(r.in_flight for r in rt.services.balancer.snapshot("w")) <= 1
    assert sum(done.values()) == 60
    assert set(done) == {0, 1, 2}
    assert max(peak.values()) <= 2


async def test_optimizer_changes_resize_the_agent() -> None:
    """A parameter change from the self-optimizer resizes the replicas' concurrency."""
    async with sr.Runtime(queue="memory://") as rt:

        @rt.agent("tuned", concurrency=2, max_concurrency=8)
        async def tuned(msg: sr.Message, ctx: sr.Context) -> None:
            return None

        assert rt.services is not None
        assert rt.services.optimizer.get_parameters("tuned") == {"concurrency": 2.0}
        rt._on_parameters("tuned", {"concurrency": 5.4})
        assert rt.agents["tuned"].concurrency == 5
        rt._on_parameters("tuned", {"concurrency": 50})
        assert rt.agents["tuned"].concurrency == 8


async def test_queue_size_threshold_raises_and_resolves_an_alert() -> None:
    """A backlog past the threshold raises an alert (high above 1.5x); draining resolves it."""
    alerts: list[object] = []
    services = Services.create(thresholds={"queue_size": 2}, sample_interval=0.02)
    services.monitoring.add_alert_callback(alerts.append)
    gate = anyio.Event()
    async with sr.Runtime(queue="memory://", services=services) as rt:

        @rt.agent("slow")
        async def slow(msg: sr.Message, ctx: sr.Context) -> None:
            await gate.wait()

        for i in range(6):
            await rt.send("slow", i)
        with anyio.fail_after(10):
            while not services.monitoring.alerts:
                await anyio.sleep(0.01)
        [alert] = services.monitoring.alerts
        assert (alert.metric, alert.agent, alert.severity) == ("queue_size", "slow", "high")
        gate.set()
        await rt.join(timeout=10)
        with anyio.fail_after(10):
            while services.monitoring.alerts:
                await anyio.sleep(0.01)
    assert alerts


async def test_metrics_endpoint_serves_prometheus_text() -> None:
    """Runtime(metrics_port=0) serves /metrics on 127.0.0.1 with swarm_* metric names."""
    async with sr.Runtime(queue="memory://", metrics_port=0) as rt:

        @rt.agent("a")
        async def a(msg: sr.Message, ctx: sr.Context) -> int:
            return 1

        await rt.request("a", None)
        assert rt.services is not None
        assert rt.services.exporter is not None
        port = rt.services.exporter.port
        body = await anyio.to_thread.run_sync(
            lambda: urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5).read()
        )
    text = body.decode()
    assert 'swarm_messages_total{agent="a",outcome="ok"} 1.0' in text
    assert "swarm_task_duration_seconds_bucket" in text


def test_service_options_need_services() -> None:
    """thresholds / metrics_port without services, or beside a ready bundle, are refused."""
    with pytest.raises(sr.ConfigError, match="need services=True"):
        sr.Runtime(services=False, metrics_port=9000)
    with pytest.raises(sr.ConfigError, match="need services=True"):
        sr.Runtime(services=False, balancer="p2c")
    with pytest.raises(sr.ConfigError, match=r"Services\.create"):
        sr.Runtime(services=Services.create(), thresholds={"queue_size": 1})
