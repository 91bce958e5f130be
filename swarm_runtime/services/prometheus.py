"""Prometheus export: the metrics store through ``prometheus_client``, served by its server.

:class:`PrometheusExporter` registers one collector in a per-runtime
:class:`~prometheus_client.CollectorRegistry` (never the global one). At scrape time it turns
the :class:`MetricsCollector` (the one metrics store: task ledger, recorded series with their
windows, monitoring readings and alerts) and the linked services (circuit breakers, load
balancer) into metric families: ``swarm_messages_total``, ``swarm_task_duration_seconds``,
``swarm_tasks_in_flight``, ``swarm_task_retries_total``, ``swarm_dead_letters_total``, ...
:meth:`PrometheusExporter.run` serves them with ``prometheus_client.start_http_server``
(127.0.0.1 by default). The server answers in its own thread; the families are built on the
event loop (through a blocking portal), so a scrape never races the services' state.
"""

from __future__ import annotations

import itertools
import math
import threading
from collections.abc import Callable, Iterator, Sequence
from typing import TYPE_CHECKING, Any

import anyio
from anyio.abc import TaskStatus
from anyio.from_thread import BlockingPortal
from prometheus_client import CollectorRegistry, start_http_server
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.exposition import choose_encoder
from prometheus_client.registry import Collector
from prometheus_client.utils import floatToGoString

from .._logging import get_logger
from ..errors import ConfigError
from ..events import TaskEvent
from .circuit import CircuitState
from .metrics import MetricsCollector, TaskTotals

if TYPE_CHECKING:
    from .error_handler import ErrorHandler
    from .load_balancer import LoadBalancer
    from .monitoring import MonitoringSystem

__all__ = ["DEFAULT_BUCKETS", "PrometheusExporter"]

DEFAULT_BUCKETS: Sequence[float] = (
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0,
)  # fmt: skip
"""Histogram buckets of task durations, in seconds."""

_log = get_logger("swarm_runtime.prometheus")


class PrometheusExporter:
    """Prometheus metrics of the runtime and its services, with an HTTP endpoint.

    ``port`` 0 picks a free port (the bound one is given to ``task_status.started`` and kept
    in :attr:`port`). ``metrics`` is the store exported (by default the monitoring's, else a
    new one); pass the services whose state should be exported too. The exporter's own
    listener methods feed the store only when the exporter made it (a shared store is fed by
    the runtime's middleware, so each task is counted once).
    """

    def __init__(
        self,
        *,
        host: str = "127.0.0.1",
        port: int = 9464,
        registry: CollectorRegistry | None = None,
        buckets: Sequence[float] = DEFAULT_BUCKETS,
        metrics: MetricsCollector | None = None,
        monitoring: MonitoringSystem | None = None,
        errors: ErrorHandler | None = None,
        balancer: LoadBalancer | None = None,
    ) -> None:
        if not 0 <= port <= 65535:
            raise ConfigError(f"--metrics-port must be between 0 and 65535, got {port}")
        bounds = sorted(float(b) for b in buckets if b != math.inf)
        if not bounds or len(set(bounds)) != len(bounds):
            raise ConfigError(f"histogram buckets must be distinct numbers, got {list(buckets)}")
        self.host = host
        self.port = port
        self.registry = registry or CollectorRegistry()
        if metrics is None and monitoring is not None:
            metrics = monitoring.metrics
        self._owns_metrics = metrics is None
        self.metrics = metrics or MetricsCollector()
        self.metrics.track_histogram(bounds)
        self._labels = [str(floatToGoString(b)) for b in bounds] + ["+Inf"]  # type: ignore[no-untyped-call]
        self._monitoring = monitoring
        self._errors = errors
        self._balancer = balancer
        self._portal: BlockingPortal | None = None
        self._loop_thread: int | None = None
        self.registry.register(_Families(self._on_loop))

    # -- runtime listener ----------------------------------------------------------------

    def on_task_started(self, event: TaskEvent) -> None:
        """Count the task in flight (in the exporter's own store, if it made one)."""
        if self._owns_metrics:
            self.metrics.on_task_started(event)

    def on_task_finished(self, event: TaskEvent) -> None:
        """Count the outcome and duration (in the exporter's own store, if it made one)."""
        if self._owns_metrics:
            self.metrics.on_task_finished(event)

    # -- exposition ----------------------------------------------------------------------

    def render(self, accept: str | None = None) -> tuple[bytes, str]:
        """The exposition body and its content type, negotiated from an Accept header."""
        encoder, content_type = choose_encoder(accept or "")
        return encoder(self.registry), content_type

    def families(self) -> list[Metric]:
        """Every metric family, built from the store and the services now."""
        out = list(_task_families(self.metrics, self._labels))
        out.extend(_collect_metrics(self.metrics))
        if self._monitoring is not None:
            out.extend(_collect_monitoring(self._monitoring))
        if self._errors is not None:
            out.extend(_collect_errors(self._errors))
        if self._balancer is not None:
            out.extend(_collect_balancer(self._balancer))
        return out

    def _on_loop(self) -> list[Metric]:
        """:meth:`families`, built on the event loop when called from the server's thread."""
        portal = self._portal
        if portal is None or threading.get_ident() == self._loop_thread:
            return self.families()
        return portal.call(self.families)

    async def run(self, *, task_status: TaskStatus[int] = anyio.TASK_STATUS_IGNORED) -> None:
        """Serve ``/metrics`` until cancelled; reports the bound port when listening."""
        try:
            server, thread = await anyio.to_thread.run_sync(
                lambda: start_http_server(self.port, addr=self.host, registry=self.registry)
            )
        except OSError as exc:
            raise ConfigError(
                f"cannot serve metrics on {self.host}:{self.port}: {exc.strerror or exc}; "
                f"choose another --metrics-port"
            ) from exc
        try:
            async with BlockingPortal() as portal:
                self._portal, self._loop_thread = portal, threading.get_ident()
                self.port = int(server.server_port)
                _log.info(
                    "serving Prometheus metrics", url=f"http://{self.host}:{self.port}/metrics"
                )
                task_status.started(self.port)
                await anyio.sleep_forever()
        finally:
            self._portal = None
            with anyio.CancelScope(shield=True):
                await anyio.to_thread.run_sync(_stop, server, thread)


def _stop(server: Any, thread: threading.Thread) -> None:
    """Stop the server's loop, free its port and wait for its thread."""
    server.shutdown()
    server.server_close()
    thread.join()


class _Families(Collector):
    """The registry's one collector: the families are built at every scrape."""

    def __init__(self, build: Callable[[], list[Metric]]) -> None:
        self._build = build

    def describe(self) -> list[Metric]:
        return []  # families vary with what the services hold; collect() at every scrape

    def collect(self) -> Iterator[Metric]:
        yield from self._build()


def _task_families(metrics: MetricsCollector, labels: list[str]) -> Iterator[Metric]:
    """The task families, from the store's running totals per agent."""
    messages = CounterMetricFamily(
        "swarm_messages", "Tasks finished by agents, by outcome.", labels=["agent", "outcome"]
    )
    duration = HistogramMetricFamily(
        "swarm_task_duration_seconds", "Time agents took to handle a task.", labels=["agent"]
    )
    in_flight = GaugeMetricFamily(
        "swarm_tasks_in_flight", "Tasks being handled right now.", labels=["agent"]
    )
    retries = CounterMetricFamily(
        "swarm_task_retries", "Deliveries that were retries of a failed task.", labels=["agent"]
    )
    dead = CounterMetricFamily(
        "swarm_dead_letters", "Tasks dead-lettered after their last attempt.", labels=["agent"]
    )
    found = [(a, metrics.task_totals(a)) for a in metrics.task_agents()]
    totals_by_agent: list[tuple[str, TaskTotals]] = sorted(
        (a, t) for a, t in found if t is not None
    )
    for agent, totals in totals_by_agent:
        for outcome, count in sorted(totals.outcomes.items()):
            messages.add_metric([agent, outcome], float(count))
        if totals.duration_count and len(totals.buckets) == len(labels):
            cumulative = itertools.accumulate(totals.buckets)
            duration.add_metric(
                [agent],
                [(le, float(n)) for le, n in zip(labels, cumulative, strict=True)],
                totals.duration_sum,
            )
        in_flight.add_metric([agent], float(totals.in_flight))
        retries.add_metric([agent], float(totals.retries))
        dead.add_metric([agent], float(totals.dead_letters))
    yield from (messages, duration, in_flight, retries, dead)


def _collect_metrics(metrics: MetricsCollector) -> Iterator[Metric]:
    events = CounterMetricFamily(
        "swarm_agent_events",
        "Counters recorded by agents and services.",
        labels=["agent", "metric"],
    )
    for (agent, name), total in sorted(metrics.counters().items()):
        events.add_metric([agent, name], total)
    yield events
    values = GaugeMetricFamily(
        "swarm_agent_value", "Gauges recorded by agents and services.", labels=["agent", "metric"]
    )
    for (agent, name), value in sorted(metrics.gauges().items()):
        values.add_metric([agent, name], value)
    yield values
    window = GaugeMetricFamily(
        "swarm_agent_metric_window",
        "Aggregates of each recorded series over its sliding window.",
        labels=["agent", "metric", "stat"],
    )
    for agent, name in sorted(metrics.series()):
        stats = metrics.aggregate(agent, name)
        if stats is not None:
            for stat, value in stats.as_dict().items():
                window.add_metric([agent, name, stat], float(value))
    yield window


def _collect_monitoring(monitoring: MonitoringSystem) -> Iterator[Metric]:
    readings = GaugeMetricFamily(
        "swarm_monitor_reading",
        "Latest value sampled by the monitoring system.",
        labels=["agent", "metric"],
    )
    for (agent, metric), value in sorted(monitoring.latest().items()):
        readings.add_metric([agent, metric], value)
    yield readings
    active = GaugeMetricFamily(
        "swarm_alerts_active", "Alerts active now.", labels=["agent", "metric", "severity"]
    )
    for alert in monitoring.alerts:
        active.add_metric([alert.agent, alert.metric, alert.severity], 1.0)
    yield active


def _collect_errors(errors: ErrorHandler) -> Iterator[Metric]:
    state = GaugeMetricFamily(
        "swarm_circuit_state",
        "Circuit breaker state: 1 for the current state of each breaker.",
        labels=["agent", "state"],
    )
    for name, current in sorted(errors.circuit_states().items()):
        for candidate in CircuitState:
            state.add_metric([name, candidate.value], 1.0 if candidate is current else 0.0)
    yield state
    failures = CounterMetricFamily(
        "swarm_errors", "Task failures by agent and error kind.", labels=["agent", "kind"]
    )
    for (agent, kind), count in sorted(errors.error_counts().items()):
        failures.add_metric([agent, kind], float(count))
    yield failures


def _collect_balancer(balancer: LoadBalancer) -> Iterator[Metric]:
    load = GaugeMetricFamily(
        "swarm_replica_load_ratio",
        "Load of each replica as a fraction of its capacity.",
        labels=["agent", "replica"],
    )
    for replica in balancer.snapshot():
        load.add_metric([replica.agent, str(replica.replica)], replica.utilization)
    yield load
    waiting = GaugeMetricFamily(
        "swarm_balancer_waiting", "Tasks waiting for a replica with room.", labels=["agent"]
    )
    for agent in balancer.agents:
        waiting.add_metric([agent], float(balancer.waiting(agent)))
    yield waiting
