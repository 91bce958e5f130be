"""The services as listeners of the real Runtime: the task events they need really arrive."""

from __future__ import annotations

import pytest

import swarm_runtime as sr
from swarm_runtime.services import (
    BreakerConfig,
    CircuitState,
    ErrorHandler,
    MetricsCollector,
    MonitoringSystem,
    PrometheusExporter,
)

FAST = sr.RetryPolicy(max_attempts=2, base_delay=0.0, max_delay=0.0)


async def test_services_see_successes_failures_and_dead_letters() -> None:
    """A working and a failing agent show up in metrics, monitoring, breakers and Prometheus."""
    metrics = MetricsCollector()
    monitor = MonitoringSystem(measure_loop_lag=False)
    errors = ErrorHandler(breaker=BreakerConfig(failure_threshold=2))
    exporter = PrometheusExporter()
    async with sr.Runtime(
        queue="memory://", retry=FAST, listeners=[metrics, monitor, errors, exporter]
    ) as rt:

        @rt.agent("echo")
        async def echo(msg: sr.Message, ctx: sr.Context) -> object:
            return msg.payload

        @rt.agent("broken")
        async def broken(msg: sr.Message, ctx: sr.Context) -> None:
            raise ConnectionError("backend down")

        for number in range(3):
            assert await rt.request("echo", number) == number
        with pytest.raises(sr.AgentError):
            await rt.request("broken", {})
    assert metrics.counter("echo", "messages_ok") == 3
    assert metrics.counter("broken", "messages_error") == 2
    assert metrics.counter("broken", "dead_letters_total") == 1
    assert metrics.gauge("echo", "in_flight") == 0
    assert errors.state("broken") is CircuitState.OPEN
    assert [r.kind for r in errors.error_log] == ["communication_error"] * 2
    await monitor.sample_once()
    assert {(a.agent, a.metric) for a in monitor.alerts} == {("broken", "error_rate")}
    text = exporter.render()[0].decode()
    assert 'swarm_messages_total{agent="echo",outcome="ok"} 3.0' in text
