"""Services: the bundle the runtime owns; shared ledger, one count per event, one run()."""

from __future__ import annotations

import json

import anyio
import pytest
from prometheus_client.parser import text_string_to_metric_families

from swarm_runtime.clock import ManualClock
from swarm_runtime.events import RuntimeListener
from swarm_runtime.services import (
    MetricsCollector,
    MonitoringSystem,
    PrometheusExporter,
    Services,
    default_listeners,
)

from ._events import run_task


def test_every_listener_is_a_runtime_listener() -> None:
    """Everything default_listeners returns satisfies the RuntimeListener protocol."""
    listeners = default_listeners()
    assert listeners
    assert all(isinstance(listener, RuntimeListener) for listener in listeners)


async def test_events_are_counted_once_and_read_by_all(clock: ManualClock) -> None:
    """Through the bundle's listeners, metrics, monitoring and /metrics all see each event once."""
    services = Services.create(
        thresholds={"error_rate": 0.5}, metrics_port=0, clock=clock, sample_interval=10
    )
    services.monitoring.set_threshold("loop_lag", None)
    services.balancer.register_agent("a", capacity=2)
    services.optimizer.register_parameters("a", {"concurrency": 2})
    listeners = services.listeners
    for _ in range(3):
        run_task(listeners, "a", "ok", duration=0.2)
    run_task(listeners, "a", "error", error=RuntimeError("x"), duration=0.6)
    async with anyio.create_task_group() as group:
        await group.start(services.run)
        assert services.exporter is not None
        assert services.exporter.port != 0
        assert services.monitoring.samples_taken == 1
        group.cancel_scope.cancel()
    assert services.metrics.counter("a", "messages_total") == 4
    latest = services.monitoring.latest()
    assert latest[("a", "error_rate")] == 0.25
    assert latest[("a", "response_time")] == pytest.approx(0.3)
    assert latest[("a", "load")] == 0.0
    text = services.exporter.render()[0].decode()
    got = {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }
    assert got[("swarm_messages_total", (("agent", "a"), ("outcome", "ok")))] == 3
    assert got[("swarm_task_duration_seconds_count", (("agent", "a"),))] == 4
    report = services.report()
    json.dumps(report)
    assert report["errors"][0]["kind"] == "task_failure"
    assert report["parameters"] == {"a": {"concurrency": 2}}


def test_monitor_and_exporter_given_a_collector_do_not_count_twice(clock: ManualClock) -> None:
    """With a shared collector, registering monitor and exporter too does not double counts."""
    metrics = MetricsCollector(clock=clock)
    monitor = MonitoringSystem(metrics=metrics, clock=clock, measure_loop_lag=False)
    exporter = PrometheusExporter(metrics=metrics)
    for _ in range(2):
        run_task([metrics, monitor, exporter], "a", "ok")
    assert metrics.counter("a", "messages_ok") == 2
    text = exporter.render()[0].decode()
    assert 'swarm_messages_total{agent="a",outcome="ok"} 2.0' in text
    totals = metrics.task_totals("a")
    assert totals is not None
    assert (totals.finished, totals.duration_count, sum(totals.buckets)) == (2, 2, 2)
