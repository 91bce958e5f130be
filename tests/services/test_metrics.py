"""MetricsCollector: aggregates checked against the statistics module, queries, alerts, events."""

from __future__ import annotations

import math
import statistics

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from swarm_runtime.clock import ManualClock
from swarm_runtime.errors import ConfigError
from swarm_runtime.services import Alert, MetricsCollector
from swarm_runtime.services._window import SlidingWindow

from ._events import event, run_task

values = st.floats(min_value=-1e6, max_value=1e6, allow_nan=False, allow_infinity=False)


def close(a: float, b: float) -> bool:
    return math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-6)


def check_against_statistics(got: dict[str, float], data: list[float]) -> None:
    assert got["count"] == len(data)
    assert close(got["mean"], statistics.fmean(data))
    assert close(got["median"], statistics.median(data))
    assert close(got["min"], min(data))
    assert close(got["max"], max(data))
    if len(data) > 1:
        assert close(got["stdev"], statistics.stdev(data))
        cuts = statistics.quantiles(data, n=100, method="inclusive")
        assert close(got["p95"], cuts[94])
        assert close(got["p99"], cuts[98])
    else:
        assert got["stdev"] == 0.0
        assert got["p95"] == got["p99"] == data[0]


@settings(max_examples=150, deadline=None)
@given(data=st.lists(values, min_size=1, max_size=300))
def test_window_aggregates_match_statistics(data: list[float]) -> None:
    """mean, median, stdev, min, max, p95 and p99 agree with the statistics module."""
    metrics = MetricsCollector(window=1000)
    for value in data:
        metrics.record_metric("a", "latency", value)
    stats = metrics.aggregate("a", "latency")
    assert stats is not None
    check_against_statistics(stats.as_dict(), data)


@settings(max_examples=100, deadline=None)
@given(data=st.lists(values, min_size=1, max_size=200), size=st.integers(1, 40))
def test_sliding_window_covers_only_the_last_values(data: list[float], size: int) -> None:
    """Past its size, the window aggregates exactly the most recent values, still sorted."""
    window = SlidingWindow(size)
    for value in data:
        window.add(value)
    recent = data[-size:]
    assert window.sorted_values() == sorted(recent)
    stats = window.stats()
    assert stats is not None
    check_against_statistics(stats.as_dict(), recent)


def test_time_range_queries(clock: ManualClock) -> None:
    """get_metrics with a time range returns the samples inside it, bounds included."""
    metrics = MetricsCollector(clock=clock)
    start = clock.time()
    for value in range(10):
        metrics.record_metric("a", "rt", float(value))
        clock.advance(60)
    inside = metrics.get_metrics("a", "rt", (start + 120, start + 300))
    assert [s.value for s in inside] == [2.0, 3.0, 4.0, 5.0]
    assert len(metrics.get_metrics("a", "rt")) == 10
    assert metrics.get_metrics("a", "other") == []
    assert metrics.get_metrics("nobody", "rt") == []
    ranged = metrics.aggregate("a", "rt", (start + 120, start + 300))
    assert ranged is not None
    assert (ranged.count, ranged.mean) == (4, 3.5)


def test_memory_is_bounded(clock: ManualClock) -> None:
    """Samples, window and series are all capped, whatever is recorded."""
    metrics = MetricsCollector(window=10, max_samples=50, max_series=3, clock=clock)
    for value in range(1000):
        metrics.record_metric("a", "x", float(value))
    assert len(metrics.get_metrics("a", "x")) == 50
    stats = metrics.aggregate("a", "x")
    assert stats is not None
    assert (stats.count, stats.min) == (10, 990.0)
    for name in ("y", "z", "w", "v"):
        metrics.record_metric("a", name, 1.0)
    assert len(metrics.series()) == 3
    assert metrics.get_metrics("a", "v") == []


def test_counters_and_gauges() -> None:
    """Counters only go up, gauges hold the last value, non-finite values are refused."""
    metrics = MetricsCollector()
    assert metrics.increment("a", "jobs") == 1.0
    assert metrics.increment("a", "jobs", 4) == 5.0
    with pytest.raises(ValueError, match="only go up"):
        metrics.increment("a", "jobs", -1)
    metrics.set_gauge("a", "depth", 7)
    metrics.set_gauge("a", "depth", 3)
    assert (metrics.counter("a", "jobs"), metrics.gauge("a", "depth")) == (5.0, 3.0)
    assert metrics.counter("a", "none") == 0.0
    with pytest.raises(ValueError, match="finite"):
        metrics.record_metric("a", "x", math.nan)
    assert metrics.agents() == ["a"]


async def test_seed_example_configure_alert_and_query(clock: ManualClock) -> None:
    """The seed's slide 13: alerts on max, values recorded, the last hour queried."""
    raised: list[Alert] = []
    metrics = MetricsCollector(clock=clock, on_alert=raised.append)
    metrics.configure_alert("response_time", {"max": 1.0})
    metrics.configure_alert("error_rate", {"max": 0.05})
    metrics.record_metric("agent_1", "response_time", 0.8)
    metrics.record_metric("agent_1", "error_rate", 0.02)
    now = clock.time()
    recent = metrics.get_metrics("agent_1", "response_time", (now - 3600, now))
    assert [s.value for s in recent] == [0.8]
    assert raised == []
    metrics.record_metric("agent_1", "response_time", 1.2)
    assert [(a.condition, a.severity, a.status) for a in raised] == [
        ("exceeded_max", "medium", "raised")
    ]
    assert "agent_1:response_time" in metrics.aggregations


def test_alert_rules_min_max_dedup_and_resolve(clock: ManualClock) -> None:
    """A breach raises once, escalates past 1.5x, resolves on return; 'min' works likewise."""
    metrics = MetricsCollector(clock=clock)
    metrics.configure_alert("rt", {"max": 2.0})
    metrics.configure_alert("throughput", {"min": 10.0}, agent="a")
    for value in (2.5, 2.9, 2.6):
        metrics.record_metric("a", "rt", value)
    assert [(a.status, a.severity) for a in metrics.alert_history] == [("raised", "medium")]
    metrics.record_metric("a", "rt", 3.5)
    metrics.record_metric("a", "rt", 1.0)
    assert [a.status for a in metrics.alert_history] == ["raised", "escalated", "resolved"]
    assert metrics.alert_history[-1].peak == 3.5
    metrics.record_metric("b", "throughput", 1.0)  # rule scoped to agent "a"
    metrics.record_metric("a", "throughput", 5.0)
    assert [(a.agent, a.condition, a.severity) for a in metrics.alerts] == [
        ("a", "below_min", "high")
    ]
    with pytest.raises(ConfigError, match="'avg'"):
        metrics.configure_alert("rt", {"avg": 1.0})


def test_listener_counts_outcomes_in_flight_and_durations() -> None:
    """Task events become outcome counters, an in-flight gauge and a duration series."""
    metrics = MetricsCollector()
    run_task([metrics], "a", "ok", duration=0.2)
    run_task([metrics], "a", "error", duration=0.4, error=RuntimeError(), attempts=2, dead=True)
    metrics.on_task_started(event("a", "started", message_id="running"))
    assert metrics.counter("a", "messages_total") == 2
    assert metrics.counter("a", "messages_ok") == 1
    assert metrics.counter("a", "messages_error") == 1
    assert metrics.counter("a", "retries_total") == 1
    assert metrics.counter("a", "dead_letters_total") == 1
    assert metrics.gauge("a", "in_flight") == 1
    stats = metrics.aggregate("a", "task_duration_seconds")
    assert stats is not None
    assert stats.mean == pytest.approx(0.3)
    metrics.on_task_finished(event("a", "cancelled", message_id="running"))  # replica crashed
    assert metrics.gauge("a", "in_flight") == 0
    snapshot = metrics.snapshot()
    assert snapshot["agents"]["a"]["counters"]["messages_cancelled"] == 1
