"""MonitoringSystem: thresholds, alert raise/dedup/escalate/resolve, sinks, sampler, probes."""

from __future__ import annotations

import anyio
import pytest
import structlog

import swarm_runtime as sr
from swarm_runtime.clock import ManualClock
from swarm_runtime.errors import ConfigError
from swarm_runtime.services import Alert, LoadBalancer, MonitoringSystem, Reading, queue_depth_probe

from ._events import event, run_task


def quiet(clock: ManualClock, **options: object) -> MonitoringSystem:
    """A monitor without the loop-lag probe, whose readings depend on real time."""
    return MonitoringSystem(clock=clock, measure_loop_lag=False, **options)  # type: ignore[arg-type]


def test_seed_example_raises_one_medium_alert(clock: ManualClock) -> None:
    """The seed's slide 7: a queue of 120 (threshold 100) is one active medium alert."""
    monitor = quiet(clock)
    monitor.record_metric("agent_1", "response_time", 0.8)
    monitor.record_metric("agent_1", "queue_size", 120)
    assert [m.metric for m in monitor.get_agent_metrics("agent_1")] == [
        "response_time",
        "queue_size",
    ]
    assert len(monitor.alerts) == 1
    alert = monitor.alerts[0]
    assert (alert.agent, alert.metric, alert.severity, alert.threshold) == (
        "agent_1",
        "queue_size",
        "medium",
        100.0,
    )


def test_alert_dedup_escalate_and_resolve(clock: ManualClock) -> None:
    """Repeated breaches are one alert; past 1.5x it escalates to high; below, it resolves."""
    seen: list[Alert] = []
    monitor = quiet(clock, thresholds={"response_time": 1.0}, on_alert=seen.append)
    for value in (1.2, 1.3, 1.1):
        monitor.record_metric("a", "response_time", value)
    assert [(a.status, a.severity) for a in seen] == [("raised", "medium")]
    assert monitor.record_metric("a", "response_time", 1.6) is not None
    monitor.record_metric("a", "response_time", 2.0)
    assert [(a.status, a.severity) for a in seen] == [("raised", "medium"), ("escalated", "high")]
    clock.advance(30)
    resolved = monitor.record_metric("a", "response_time", 0.5)
    assert resolved is not None
    assert (resolved.status, resolved.peak, resolved.updated_at - resolved.raised_at) == (
        "resolved",
        2.0,
        30.0,
    )
    assert monitor.alerts == []
    monitor.record_metric("a", "response_time", 1.7)  # a new episode starts high
    assert (seen[-1].status, seen[-1].severity) == ("raised", "high")
    assert len(monitor.alert_history) == 4


def test_sinks_log_callback_and_report(clock: ManualClock) -> None:
    """Alerts reach the structlog log, every callback (even after a broken one) and the report."""
    got: list[str] = []

    def broken(alert: Alert) -> None:
        raise RuntimeError("sink down")

    monitor = quiet(clock, on_alert=broken)
    monitor.add_alert_callback(lambda alert: got.append(alert.status))
    with structlog.testing.capture_logs() as logs:
        monitor.record_metric("a", "error_rate", 0.5)
        monitor.record_metric("a", "error_rate", 0.0)
    assert got == ["raised", "resolved"]
    events = [(entry["event"], entry["log_level"]) for entry in logs]
    assert ("alert raised", "warning") in events
    assert ("alert resolved", "info") in events
    assert ("alert callback failed", "error") in events
    report = monitor.report()
    assert [a["status"] for a in report["alerts"]] == ["raised", "resolved"]
    assert report["active_alerts"] == []
    assert report["latest"]["a:error_rate"] == 0.0


async def test_always_failing_agent_raises_error_rate_then_recovery_resolves(
    clock: ManualClock,
) -> None:
    """Task events of a failing agent give a high error-rate alert; successes resolve it."""
    monitor = quiet(clock)
    for _ in range(10):
        run_task([monitor], "bad", "error", error=RuntimeError())
    await monitor.sample_once()
    [alert] = monitor.alerts
    assert (alert.agent, alert.metric, alert.value, alert.severity) == (
        "bad",
        "error_rate",
        1.0,
        "high",
    )
    for _ in range(10):
        run_task([monitor], "bad", "ok")
    await monitor.sample_once()
    assert monitor.alerts == []
    assert monitor.alert_history[-1].status == "resolved"


async def test_slow_agent_raises_response_time_and_in_flight_is_counted(clock: ManualClock) -> None:
    """A slow agent's mean response time alerts; tasks in flight are sampled per agent."""
    monitor = quiet(clock, thresholds={"in_flight": 2})
    for _ in range(5):
        run_task([monitor], "slow", "ok", duration=3.0)
    for number in range(4):
        monitor.on_task_started(event("slow", "started", message_id=f"r{number}"))
    readings = {(r.agent, r.metric): r.value for r in await monitor.sample_once()}
    assert readings[("slow", "response_time")] == 3.0
    assert readings[("slow", "in_flight")] == 4.0
    assert {(a.metric, a.severity) for a in monitor.alerts} == {
        ("response_time", "high"),
        ("in_flight", "high"),
    }
    for number in range(4):  # the replica crashed: its tasks end cancelled
        monitor.on_task_finished(event("slow", "cancelled", message_id=f"r{number}"))
    await monitor.sample_once()
    assert {a.metric for a in monitor.alerts} == {"response_time"}


async def test_probes_sync_async_and_broken(clock: ManualClock) -> None:
    """Sync and async probes are sampled; a failing probe is logged and skipped."""

    def sync_probe() -> list[Reading]:
        return [Reading("temperature", 3.0, "a")]

    async def async_probe() -> list[Reading]:
        await anyio.lowlevel.checkpoint()
        return [Reading("queue_size", 500.0)]

    def broken() -> list[Reading]:
        raise OSError("probe down")

    monitor = quiet(clock, probes=[sync_probe, broken])
    monitor.add_probe(async_probe)
    with structlog.testing.capture_logs() as logs:
        readings = await monitor.sample_once()
    assert {(r.agent, r.metric) for r in readings} == {
        ("a", "temperature"),
        ("system", "queue_size"),
    }
    assert any(entry["event"] == "monitoring probe failed" for entry in logs)
    assert [(a.agent, a.metric, a.severity) for a in monitor.alerts] == [
        ("system", "queue_size", "high")
    ]


async def test_queue_depth_and_balancer_probes(clock: ManualClock) -> None:
    """The queue probe reads depth per topic; the balancer's readings give per-agent load."""
    balancer = LoadBalancer()
    balancer.register_agent("a", capacity=4)
    await balancer.assign_task(agent="a")
    async with await sr.MessageQueue.open("memory://") as queue:
        for number in range(3):
            await queue.publish("jobs", number)
        monitor = quiet(
            clock,
            probes=[
                queue_depth_probe(queue, ["jobs"]),
                balancer.readings,
                queue_depth_probe(queue),
            ],
        )
        readings = await monitor.sample_once()
    assert Reading("queue_size", 3.0, "jobs") in readings
    assert Reading("load", 0.25, "a") in readings
    assert [s.value for s in monitor.get_agent_metrics("jobs", "queue_size")] == [3.0, 3.0]


async def test_loop_lag_is_measured_by_default() -> None:
    """The default monitor reports the event loop's lag as a system reading."""
    monitor = MonitoringSystem()
    readings = await monitor.sample_once()
    [lag] = [r for r in readings if r.metric == "loop_lag"]
    assert lag.agent == "system"
    assert lag.value >= 0


async def test_sampler_runs_in_a_task_group_until_cancelled(clock: ManualClock) -> None:
    """run() samples every interval of the clock and stops when its task group is cancelled."""
    monitor = quiet(clock, interval=5)
    async with anyio.create_task_group() as group:
        await group.start(monitor.run)
        await anyio.wait_all_tasks_blocked()
        assert monitor.samples_taken == 1
        for _ in range(3):
            clock.advance(5)
            await anyio.wait_all_tasks_blocked()
        assert monitor.samples_taken == 4
        group.cancel_scope.cancel()
    clock.advance(50)
    assert monitor.samples_taken == 4


def test_thresholds_are_validated_and_can_be_dropped(clock: ManualClock) -> None:
    """Bad thresholds name their YAML path; None drops a default threshold."""
    with pytest.raises(ConfigError, match=r"monitoring\.thresholds\.queue_size"):
        quiet(clock, thresholds={"queue_size": "many"})
    with pytest.raises(ConfigError, match="interval"):
        quiet(clock, interval=0)
    monitor = quiet(clock, thresholds={"queue_size": None, "loop_lag": 0.1})
    assert monitor.thresholds == {"response_time": 1.0, "error_rate": 0.05, "loop_lag": 0.1}
    monitor.record_metric("a", "queue_size", 10_000)
    assert monitor.alerts == []
