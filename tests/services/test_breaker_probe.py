"""The circuit breaker in a running Runtime, on a manual clock: three failures open it, and
after the cooldown exactly one probe goes through and closes it. Configured from Python and
from a pipeline YAML file."""

from __future__ import annotations

from collections.abc import Callable

import anyio
import pytest
import yaml

import swarm_runtime as sr
from swarm_runtime.middleware import CallNext
from swarm_runtime.pipeline import parse_pipeline
from swarm_runtime.services import BreakerConfig, CircuitState, Services

PIPELINE = """
name: probe
queue: memory://
agents: [{name: flaky, uses: "tests.services.test_breaker_probe:unused"}]
tasks: [{name: t, agent: flaky}]
retry: {max_attempts: 10, base_delay: 0, max_delay: 0}
services:
  breaker: {failure_threshold: 3, cooldown: 30}
"""


async def unused(msg: sr.Message, ctx: sr.Context) -> None:
    """The pipeline's agent (never run: the test hosts its own handler)."""


async def _wait_for(predicate: Callable[[], bool]) -> None:
    with anyio.fail_after(10):
        while not predicate():
            await anyio.sleep(0.001)


def _rejected(services: Services) -> int:
    totals = services.metrics.task_totals("flaky")
    return 0 if totals is None else totals.outcomes.get("rejected", 0)


async def three_failures_then_one_probe(
    services: Services, clock: sr.ManualClock, retry: sr.RetryPolicy
) -> None:
    """The scenario both tests run."""
    calls: list[str] = []
    healthy = False
    async with sr.Runtime(queue="memory://", clock=clock, retry=retry, services=services) as rt:

        @rt.agent("flaky")
        async def flaky(msg: sr.Message, ctx: sr.Context) -> str:
            calls.append("ok" if healthy else "fail")
            if not healthy:
                raise ConnectionError("backend down")
            return "fine"

        await rt.send("flaky", 1)
        await _wait_for(lambda: services.errors.state("flaky") is CircuitState.OPEN)
        assert calls == ["fail", "fail", "fail"]
        # the redelivery is refused: handed back untouched, the replica waits for the cooldown
        await _wait_for(lambda: _rejected(services) >= 1)
        clock.advance(29)
        await anyio.sleep(0.05)
        assert calls == ["fail", "fail", "fail"]  # still cooling down: nothing ran
        assert _rejected(services) == 1  # the replica waits: no busy loop of refusals
        assert await rt.queue.depth("agent.flaky") == 1
        healthy = True
        clock.advance(1)  # the cooldown is over: one probe goes through
        await _wait_for(lambda: len(calls) == 4)
        await rt.join(timeout=10)
        assert calls == ["fail", "fail", "fail", "ok"]
        assert services.errors.state("flaky") is CircuitState.CLOSED
        totals = services.metrics.task_totals("flaky")
        assert totals is not None
        assert totals.outcomes["error"] == 3
        assert totals.outcomes["ok"] == 1


async def test_breaker_from_python_opens_after_three_failures_and_one_probe_closes_it() -> None:
    """Services.create(breaker=BreakerConfig(failure_threshold=3, cooldown=30))."""
    clock = sr.ManualClock()
    retry = sr.RetryPolicy(max_attempts=10, base_delay=0.0, max_delay=0.0)
    services = Services.create(
        retry=retry, breaker=BreakerConfig(failure_threshold=3, cooldown=30), clock=clock
    )
    await three_failures_then_one_probe(services, clock, retry)


async def test_breaker_from_pipeline_yaml_opens_after_three_failures_and_one_probe_closes_it() -> (
    None
):
    """The same breaker from a pipeline file's ``services.breaker`` block."""
    config = parse_pipeline(PIPELINE, source="probe.yaml")
    assert config.services.breaker.failure_threshold == 3
    clock = sr.ManualClock()
    services = config.services.build(retry=config.retry, monitoring=config.monitoring, clock=clock)
    assert services.errors.breaker_config.cooldown == 30
    await three_failures_then_one_probe(services, clock, config.retry.to_policy())


def test_a_bad_services_block_names_the_field() -> None:
    """A breaker value out of range is a PipelineConfigError naming the field path."""
    bad = PIPELINE.replace("failure_threshold: 3", "failure_threshold: 0")
    with pytest.raises(sr.PipelineConfigError, match=r"services\.breaker\.failure_threshold"):
        parse_pipeline(bad, source="probe.yaml")
    bad = PIPELINE.replace("cooldown: 30}", "cooldown: 30}\n  balancer: fastest")
    with pytest.raises(sr.PipelineConfigError, match=r"services\.balancer"):
        parse_pipeline(bad, source="probe.yaml")


FULL = """
name: everything
queue: memory://
agents:
  - {name: a, uses: "tests.services.test_breaker_probe:unused", concurrency: 2, max_concurrency: 8}
tasks: [{name: t, agent: a}]
retry: {max_attempts: 4, base_delay: 0.1, max_delay: 2}
monitoring:
  thresholds: {response_time: 2.5, error_rate: 0.2}
  interval: 0.5
  on_alert: "tests.services.test_breaker_probe:ALERTS.append"
services:
  balancer: p2c
  breaker: {failure_threshold: 4, failure_rate: 0.5, window: 10, min_calls: 5, per_replica: true}
  errors:
    classify: {"builtins:PermissionError": fatal, "builtins:KeyError": bad_key}
    non_retryable: [fatal, bad_key]
    policies: {timeout: {max_attempts: 6, base_delay: 1.0}}
  metrics: {window: 50, max_samples: 100, port: 0}
  optimizer: {interval: 2.0, min_tasks: 10, step: 0.2}
  middleware: ["tests.runtime.test_middleware:RequireToken"]
"""
ALERTS: list[object] = []


def test_every_service_is_configurable_from_yaml() -> None:
    """Each field of the services / monitoring blocks reaches the service it configures."""
    config = parse_pipeline(FULL, source="everything.yaml")
    assert config.agents[0].max_concurrency == 8
    services = config.services.build(retry=config.retry, monitoring=config.monitoring)
    errors = services.errors
    assert errors.classify(PermissionError()) == "fatal"
    assert errors.classify(KeyError()) == "bad_key"
    assert errors.decide("a", KeyError(), attempt=1).action == "dead_letter"
    assert errors.policy_for("timeout").max_attempts == 6
    assert errors.policy_for("timeout").max_delay == 2  # unset fields from retry:
    assert errors.breaker_config.failure_rate == 0.5
    assert errors.breaker("a", 1).name == "a#1"  # per replica
    assert services.balancer.strategy == "p2c"
    assert services.monitoring.thresholds["response_time"] == 2.5
    assert services.monitoring.interval == 0.5
    assert services.optimizer.interval == 2.0
    assert services.optimizer.min_tasks == 10
    assert services.exporter is not None
    assert services.exporter.port == 0
    services.monitoring.record_metric("a", "error_rate", 0.9)
    [alert] = ALERTS
    assert alert.metric == "error_rate"  # type: ignore[attr-defined]
    [layer] = config.services.user_middleware()
    assert type(layer).__name__ == "RequireToken"


def test_metrics_port_from_the_command_line_wins_over_yaml() -> None:
    """build(metrics_port=...) (the CLI's --metrics-port) overrides services.metrics.port."""
    config = parse_pipeline(FULL, source="everything.yaml")
    services = config.services.build(
        retry=config.retry, monitoring=config.monitoring, metrics_port=9999
    )
    assert services.exporter is not None
    assert services.exporter.port == 9999


def test_max_concurrency_below_concurrency_is_refused() -> None:
    """An agent's max_concurrency under its concurrency names the field."""
    bad = FULL.replace("max_concurrency: 8", "max_concurrency: 1")
    with pytest.raises(sr.PipelineConfigError, match="max_concurrency"):
        parse_pipeline(bad, source="everything.yaml")


SEEN: list[str] = []


async def record_task(msg: sr.Message, ctx: sr.Context, call_next: CallNext) -> object:
    """A user middleware named in a pipeline file: records each task it sees."""
    SEEN.append(ctx.agent)
    return await call_next(msg, ctx)


async def echo(msg: sr.Message, ctx: sr.Context) -> str:
    """A pipeline agent."""
    return "done"


async def test_a_pipeline_run_uses_the_services_block() -> None:
    """A run of a pipeline file goes through its middleware, balancer and breaker settings."""
    from swarm_runtime.orchestrator import DataPipelineOrchestrator

    SEEN.clear()
    text = """
name: configured
queue: memory://
agents: [{name: a, uses: "tests.services.test_breaker_probe:echo", replicas: 2}]
tasks: [{name: one, agent: a}, {name: two, agent: a, depends_on: [one]}]
services:
  balancer: round_robin
  breaker: {failure_threshold: 7}
  middleware: ["tests.services.test_breaker_probe:record_task"]
"""
    orchestrator = DataPipelineOrchestrator()
    pipeline_id = orchestrator.create_pipeline(yaml.safe_load(text))
    result = await orchestrator.execute_pipeline(pipeline_id)
    assert result.ok
    assert SEEN == ["a", "a"]
    assert result.services is not None
    assert result.services["circuits"] == {}


def test_a_services_block_naming_something_missing_fails_at_create_pipeline() -> None:
    """Middleware, exception classes and alert callbacks are imported when the pipeline is
    created, so a typo fails before any task runs, naming the field."""
    from swarm_runtime.orchestrator import DataPipelineOrchestrator

    base = yaml.safe_load(PIPELINE)
    cases = [
        ({"services": {"middleware": ["tests.services.test_breaker_probe:nope"]}}, "nope"),
        (
            {"services": {"errors": {"classify": {"builtins:len": "fatal"}}}},
            "services.errors.classify: 'builtins:len' is not an exception class",
        ),
        ({"monitoring": {"on_alert": "tests.services.test_breaker_probe:PIPELINE"}}, "callable"),
        (
            {"services": {"middleware": ["tests.services.test_breaker_probe:unused"]}},
            "services.middleware: 'tests.services.test_breaker_probe:unused'",
        ),
    ]
    for extra, message in cases:
        with pytest.raises(sr.ConfigError, match=message):
            DataPipelineOrchestrator().create_pipeline({**base, **extra})
