"""Prometheus export: task metrics via the official client, served on ``/metrics``.

:class:`PrometheusExporter` is a runtime listener that counts ``swarm_messages_total``,
``swarm_task_duration_seconds``, ``swarm_tasks_in_flight``, ``swarm_task_retries_total`` and
``swarm_dead_letters_total`` in its own registry (built with the client's metric families
at scrape time), and also exports what the linked services know (metrics collector,
monitoring, circuit breakers, load balancer).
:meth:`PrometheusExporter.run` serves the text format over HTTP on 127.0.0.1 by default; the
server runs on the event loop (no thread), so scrapes never race the services' state.
"""

from __future__ import annotations

import itertools
import math
from bisect import bisect_left
from collections.abc import Callable, Iterator, Sequence
from typing import TYPE_CHECKING

import anyio
import structlog
from anyio.abc import SocketAttribute, SocketStream, TaskStatus
from prometheus_client import CollectorRegistry
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.exposition import choose_encoder
from prometheus_client.registry import Collector
from prometheus_client.utils import floatToGoString

from ..errors import ConfigError
from ..events import TaskEvent
from .circuit import CircuitState
from .metrics import TaskTotals

if TYPE_CHECKING:
    from .error_handler import ErrorHandler
    from .load_balancer import LoadBalancer
    from .metrics import MetricsCollector
    from .monitoring import MonitoringSystem

__all__ = ["DEFAULT_BUCKETS", "PrometheusExporter"]

DEFAULT_BUCKETS: Sequence[float] = (
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0,
)  # fmt: skip
"""Histogram buckets of task durations, in seconds."""

_log = structlog.get_logger("swarm_runtime.prometheus")
_MAX_REQUEST = 16 * 1024
_READ_TIMEOUT = 10.0


class _Tally:
    """Plain counts for one agent, updated without locks on the event loop."""

    __slots__ = (
        "buckets",
        "dead",
        "duration_count",
        "duration_sum",
        "failed",
        "in_flight",
        "outcomes",
        "retries",
    )

    def __init__(self, size: int) -> None:
        self.outcomes: dict[str, int] = {}
        self.in_flight = 0
        self.retries = 0
        self.dead = 0
        self.buckets = [0] * size  # per bucket, not cumulative; the last one is +Inf
        self.duration_sum = 0.0
        self.duration_count = 0
        self.failed = 0

    def totals(self) -> TaskTotals:
        return TaskTotals(
            in_flight=self.in_flight,
            retries=self.retries,
            dead_letters=self.dead,
            outcomes=dict(self.outcomes),
            failed=self.failed,
            duration_sum=self.duration_sum,
            duration_count=self.duration_count,
            buckets=tuple(self.buckets),
        )


class PrometheusExporter:
    """Prometheus metrics of the runtime and its services, with an HTTP endpoint.

    ``port`` 0 picks a free port (the bound one is given to ``task_status.started`` and kept
    in :attr:`port`). Pass the services whose state should be exported at scrape time.
    With ``metrics``, task figures come from that collector's ledger (register the collector
    with the runtime; the exporter's own listener methods then do nothing, so each event is
    counted once). Without it, the exporter counts task events itself in plain counters (no
    locks, O(log buckets) per event). Either way the families are built at scrape time.
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
        self._bounds = bounds
        self._tallies: dict[str, _Tally] = {}
        self._source = metrics
        if metrics is not None:
            metrics.track_histogram(bounds)
        self.registry.register(_TaskCollector(self._totals, bounds))
        self.registry.register(_ServicesCollector(metrics, monitoring, errors, balancer))

    def _totals(self) -> list[tuple[str, TaskTotals]]:
        if self._source is not None:
            found = [(a, self._source.task_totals(a)) for a in self._source.task_agents()]
            return sorted((a, t) for a, t in found if t is not None)
        return sorted((agent, tally.totals()) for agent, tally in self._tallies.items())

    def _tally(self, agent: str) -> _Tally:
        tally = self._tallies.get(agent)
        if tally is None:
            tally = self._tallies[agent] = _Tally(len(self._bounds) + 1)
        return tally

    # -- runtime listener ----------------------------------------------------------------

    def on_task_started(self, event: TaskEvent) -> None:
        """Count the task in flight (and as a retry past its first attempt)."""
        if self._source is not None:
            return
        tally = self._tally(event.agent)
        tally.in_flight += 1
        if event.attempts > 1:
            tally.retries += 1

    def on_task_finished(self, event: TaskEvent) -> None:
        """Count the outcome and observe the duration."""
        if self._source is not None:
            return
        tally = self._tally(event.agent)
        if tally.in_flight > 0:
            tally.in_flight -= 1
        outcome = event.outcome
        outcomes = tally.outcomes
        outcomes[outcome] = outcomes.get(outcome, 0) + 1
        if outcome == "error" or outcome == "timeout":
            tally.failed += 1
        duration = event.duration
        if duration is not None and (outcome == "ok" or outcome == "error" or outcome == "timeout"):
            tally.buckets[bisect_left(self._bounds, duration)] += 1
            tally.duration_sum += duration
            tally.duration_count += 1
        if event.dead_lettered:
            tally.dead += 1

    # -- exposition ----------------------------------------------------------------------

    def render(self, accept: str | None = None) -> tuple[bytes, str]:
        """The exposition body and its content type, negotiated from an Accept header."""
        encoder, content_type = choose_encoder(accept or "")
        return encoder(self.registry), content_type

    async def run(self, *, task_status: TaskStatus[int] = anyio.TASK_STATUS_IGNORED) -> None:
        """Serve ``/metrics`` until cancelled; reports the bound port when listening."""
        try:
            listener = await anyio.create_tcp_listener(local_host=self.host, local_port=self.port)
        except OSError as exc:
            raise ConfigError(
                f"cannot serve metrics on {self.host}:{self.port}: {exc.strerror or exc}; "
                f"choose another --metrics-port"
            ) from exc
        async with listener:
            self.port = int(listener.extra(SocketAttribute.local_port))
            _log.info("serving Prometheus metrics", url=f"http://{self.host}:{self.port}/metrics")
            task_status.started(self.port)
            await listener.serve(self._serve_one)

    async def _serve_one(self, stream: SocketStream) -> None:
        async with stream:
            try:
                request = await self._read_request(stream)
                if request is not None:
                    await stream.send(self._respond(*request))
            except (anyio.EndOfStream, anyio.BrokenResourceError, anyio.ClosedResourceError):
                pass  # the client went away
            except Exception as exc:  # one bad request must not stop the endpoint
                _log.warning("metrics request failed", error=repr(exc))

    async def _read_request(self, stream: SocketStream) -> tuple[str, str, dict[str, str]] | None:
        data = b""
        with anyio.move_on_after(_READ_TIMEOUT):
            while b"\r\n\r\n" not in data and len(data) <= _MAX_REQUEST:
                data += await stream.receive(4096)
        if b"\r\n\r\n" not in data:
            await stream.send(_response(400, "text/plain", b"bad request\n"))
            return None
        head = data.split(b"\r\n\r\n", 1)[0].decode("latin-1")
        lines = head.split("\r\n")
        parts = lines[0].split(" ")
        if len(parts) != 3:
            await stream.send(_response(400, "text/plain", b"bad request\n"))
            return None
        headers = {}
        for line in lines[1:]:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        return parts[0], parts[1], headers

    def _respond(self, method: str, target: str, headers: dict[str, str]) -> bytes:
        path = target.split("?", 1)[0]
        if method not in ("GET", "HEAD"):
            return _response(
                405, "text/plain", b"method not allowed\n", extra="Allow: GET, HEAD\r\n"
            )
        if path not in ("/metrics", "/"):
            return _response(404, "text/plain", b"not found; metrics are at /metrics\n")
        body, content_type = self.render(headers.get("accept"))
        return _response(200, content_type, body, head=method == "HEAD")


def _response(
    status: int, content_type: str, body: bytes, *, head: bool = False, extra: str = ""
) -> bytes:
    reason = {200: "OK", 400: "Bad Request", 404: "Not Found", 405: "Method Not Allowed"}[status]
    header = (
        f"HTTP/1.1 {status} {reason}\r\nContent-Type: {content_type}\r\n"
        f"Content-Length: {len(body)}\r\n{extra}Connection: close\r\n\r\n"
    )
    return header.encode("latin-1") + (b"" if head else body)


class _TaskCollector(Collector):
    """Builds the task families from running totals at scrape time."""

    def __init__(
        self, totals: Callable[[], list[tuple[str, TaskTotals]]], bounds: list[float]
    ) -> None:
        self._totals = totals
        self._labels = [str(floatToGoString(b)) for b in bounds] + ["+Inf"]  # type: ignore[no-untyped-call]

    def collect(self) -> Iterator[Metric]:
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
        for agent, totals in self._totals():
            for outcome, count in sorted(totals.outcomes.items()):
                messages.add_metric([agent, outcome], float(count))
            if totals.duration_count and len(totals.buckets) == len(self._labels):
                cumulative = itertools.accumulate(totals.buckets)
                duration.add_metric(
                    [agent],
                    [(le, float(n)) for le, n in zip(self._labels, cumulative, strict=True)],
                    totals.duration_sum,
                )
            in_flight.add_metric([agent], float(totals.in_flight))
            retries.add_metric([agent], float(totals.retries))
            dead.add_metric([agent], float(totals.dead_letters))
        yield from (messages, duration, in_flight, retries, dead)


class _ServicesCollector(Collector):
    """Exports, at scrape time, what the linked services hold."""

    def __init__(
        self,
        metrics: MetricsCollector | None,
        monitoring: MonitoringSystem | None,
        errors: ErrorHandler | None,
        balancer: LoadBalancer | None,
    ) -> None:
        self._metrics = metrics
        self._monitoring = monitoring
        self._errors = errors
        self._balancer = balancer

    def describe(self) -> list[Metric]:
        return []  # families vary with what the services hold; collect() at every scrape

    def collect(self) -> Iterator[Metric]:
        if self._metrics is not None:
            yield from _collect_metrics(self._metrics)
        if self._monitoring is not None:
            yield from _collect_monitoring(self._monitoring)
        if self._errors is not None:
            yield from _collect_errors(self._errors)
        if self._balancer is not None:
            yield from _collect_balancer(self._balancer)


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
