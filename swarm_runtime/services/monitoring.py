"""MonitoringSystem (seed slide 7): a background sampler, thresholds and alerts.

Every ``interval`` the sampler (:meth:`MonitoringSystem.run`, owned by the runtime's task
group) reads, per agent, the tasks in flight and the mean response time and error rate of the
tasks finished since the previous sample (all three from the task-event ledger of its
:class:`MetricsCollector`), the event loop's lag, and whatever the registered probes measure
(queue depth, replica load, ...). An agent with no task since the last sample keeps its last
response time and error rate.
Readings past a threshold raise an alert (``medium``; ``high`` beyond 1.5x), deduplicated while
active and resolved when the value comes back; alerts go to the log, to user callbacks and to
the history the run report reads.

Monitoring keeps no figures of its own: readings are series of its :class:`MetricsCollector`
(time ranges, windows, p95/p99 and the Prometheus export come from there), thresholds are
that collector's ``max`` alert rules, and alerts are that collector's alerts.
"""

from __future__ import annotations

import heapq
import inspect
import math
import time
from collections.abc import Callable, Iterable, Mapping
from typing import Any, NamedTuple

import anyio
from anyio.abc import TaskStatus

from .._logging import get_logger
from ..clock import Clock, SystemClock
from ..errors import ConfigError
from ..events import TaskEvent
from ..queue.base import MessageQueue
from ._alerts import Alert, AlertCallback
from ._probe import SYSTEM, Probe, Reading
from .metrics import MetricsCollector, TaskTotals

__all__ = [
    "DEFAULT_THRESHOLDS",
    "SYSTEM",
    "MetricSample",
    "MonitoringSystem",
    "Probe",
    "Reading",
    "loop_lag_probe",
    "queue_depth_probe",
]

DEFAULT_THRESHOLDS: Mapping[str, float] = {
    "response_time": 1.0,
    "queue_size": 100.0,
    "error_rate": 0.05,
}
"""The seed's thresholds; YAML ``monitoring.thresholds`` overrides them one by one."""

_log = get_logger("swarm_runtime.monitoring")


class MetricSample(NamedTuple):
    """One recorded value of one metric."""

    metric: str
    value: float
    timestamp: float


async def loop_lag_probe() -> list[Reading]:
    """How long the event loop took to come back to us after a yield (``loop_lag``, s)."""
    start = time.perf_counter()
    await anyio.lowlevel.checkpoint()
    return [Reading("loop_lag", time.perf_counter() - start)]


def queue_depth_probe(
    queue: MessageQueue,
    topics: Iterable[str] | Callable[[], Iterable[str]] | None = None,
) -> Probe:
    """A probe reading ``queue_size`` (unsettled messages) of each topic, labelled by topic.

    ``topics``: a fixed list, a callable returning the current list, or None for every topic
    the queue knows.
    """

    async def probe() -> list[Reading]:
        if topics is None:
            names: Iterable[str] = await queue.topics()
        elif callable(topics):
            names = topics()
        else:
            names = topics
        return [Reading("queue_size", float(await queue.depth(name)), name) for name in names]

    return probe


class MonitoringSystem:
    """Samples the runtime's health, keeps the history and raises threshold alerts.

    ``thresholds``: metric → maximum (merged over :data:`DEFAULT_THRESHOLDS`; a value of
    ``None`` drops a default). ``probes``: extra sources of readings. ``interval``: seconds
    between samples. ``metrics``: where readings are stored and task figures come from. By
    default the monitor makes its own collector and feeds it from its listener methods; given
    a shared collector, those methods do nothing and that collector must be the one
    registered with the runtime (so each event is counted once).
    """

    def __init__(
        self,
        *,
        thresholds: Mapping[str, float | None] | None = None,
        probes: Iterable[Probe] = (),
        interval: float = 1.0,
        clock: Clock | None = None,
        metrics: MetricsCollector | None = None,
        on_alert: AlertCallback | None = None,
        alert_history: int = 1000,
        measure_loop_lag: bool = True,
    ) -> None:
        if not (math.isfinite(interval) and interval > 0):
            raise ConfigError(f"monitoring.interval must be > 0 seconds, got {interval}")
        self._clock: Clock = clock or SystemClock()
        self._owns_metrics = metrics is None
        self.metrics = metrics or MetricsCollector(clock=self._clock, alert_history=alert_history)
        if on_alert is not None:
            self.metrics.add_alert_callback(on_alert)
        self._thresholds: dict[str, float] = {}
        merged: dict[str, float | None] = {**DEFAULT_THRESHOLDS, **(thresholds or {})}
        for metric, value in merged.items():
            self.set_threshold(metric, value)
        self._probes: list[Probe] = list(probes)
        if measure_loop_lag:
            self._probes.insert(0, loop_lag_probe)
        self.interval = interval
        self._previous: dict[str, TaskTotals] = {}
        self._readings: set[str] = set()  # metric names sampled or recorded here
        self.samples_taken = 0

    # -- configuration -------------------------------------------------------------------

    @property
    def thresholds(self) -> dict[str, float]:
        return dict(self._thresholds)

    def set_threshold(self, metric: str, value: float | None) -> None:
        """Alert when ``metric`` exceeds ``value``; None removes the threshold."""
        if value is None:
            if self._thresholds.pop(metric, None) is not None:
                self.metrics.clear_alert(metric)
            return
        if isinstance(value, bool) or not isinstance(value, int | float) or not value > 0:
            raise ConfigError(
                f"monitoring.thresholds.{metric}: expected a number > 0, got {value!r}"
            )
        self.metrics.configure_alert(metric, {"max": float(value)})
        self._thresholds[metric] = float(value)

    def add_probe(self, probe: Probe) -> None:
        """Also call ``probe`` on every sample."""
        self._probes.append(probe)

    def add_alert_callback(self, callback: AlertCallback) -> None:
        """Also send every alert transition to ``callback``."""
        self.metrics.add_alert_callback(callback)

    # -- recording and queries -----------------------------------------------------------

    def record_metric(self, agent: str, metric_type: str, value: float) -> Alert | None:
        """Record a value and check it against its threshold; returns an alert transition."""
        self._readings.add(metric_type)
        return self.metrics.record_metric(agent, metric_type, value)

    def get_agent_metrics(self, agent: str, metric_type: str | None = None) -> list[MetricSample]:
        """Recorded values of an agent (one metric, or all of them), oldest first."""
        names = (
            [metric_type]
            if metric_type is not None
            else [name for owner, name in self.metrics.series() if owner == agent]
        )
        streams = [
            [
                MetricSample(name, s.value, s.timestamp)
                for s in self.metrics.get_metrics(agent, name)
            ]
            for name in names
        ]
        return list(heapq.merge(*streams, key=lambda sample: sample.timestamp))

    def latest(self) -> dict[tuple[str, str], float]:
        """The last value of every (agent, metric) monitoring sampled or recorded."""
        metrics = self.metrics
        out: dict[tuple[str, str], float] = {}
        for agent, name in metrics.series():
            if name in self._readings:
                value = metrics.last(agent, name)
                if value is not None:
                    out[(agent, name)] = value
        return out

    @property
    def alerts(self) -> list[Alert]:
        """Alerts active now (the metrics store's)."""
        return self.metrics.alerts

    @property
    def alert_history(self) -> list[Alert]:
        """Alert transitions (raised, escalated, resolved), bounded, oldest first."""
        return self.metrics.alert_history

    def report(self) -> dict[str, Any]:
        """Active alerts, their history and the latest readings, JSON-ready."""
        return {
            "active_alerts": [a.to_dict() for a in self.alerts],
            "alerts": [a.to_dict() for a in self.alert_history],
            "latest": {
                f"{agent}:{metric}": value for (agent, metric), value in self.latest().items()
            },
        }

    # -- sampling ------------------------------------------------------------------------

    async def sample_once(self) -> list[Reading]:
        """Take one sample: task-event figures, then every probe; check the thresholds."""
        readings = self._task_readings()
        for probe in self._probes:
            try:
                result = probe()
                if inspect.isawaitable(result):
                    result = await result
                readings.extend(result)
            except Exception as exc:  # a broken probe must not stop monitoring
                _log.warning("monitoring probe failed", probe=repr(probe), error=repr(exc))
        for reading in readings:
            self.record_metric(reading.agent, reading.metric, reading.value)
        self.samples_taken += 1
        return readings

    def _task_readings(self) -> list[Reading]:
        out: list[Reading] = []
        metrics = self.metrics
        for agent in metrics.task_agents():
            now = metrics.task_totals(agent)
            if now is None:
                continue
            before = self._previous.get(agent)
            self._previous[agent] = now
            out.append(Reading("in_flight", float(now.in_flight), agent))
            timed = now.duration_count - (before.duration_count if before else 0)
            if timed > 0:
                spent = now.duration_sum - (before.duration_sum if before else 0.0)
                out.append(Reading("response_time", spent / timed, agent))
            finished = now.finished - (before.finished if before else 0)
            if finished > 0:
                failed = now.failed - (before.failed if before else 0)
                out.append(Reading("error_rate", failed / finished, agent))
        return out

    async def run(self, *, task_status: TaskStatus[None] = anyio.TASK_STATUS_IGNORED) -> None:
        """Sample every ``interval`` until cancelled (start it in the runtime's task group)."""
        task_status.started()
        while True:
            await self.sample_once()
            await self._clock.sleep(self.interval)

    # -- runtime listener ----------------------------------------------------------------

    def on_task_started(self, event: TaskEvent) -> None:
        """Count the task in flight (in the monitor's own collector, if it owns one)."""
        if self._owns_metrics:
            self.metrics.on_task_started(event)

    def on_task_finished(self, event: TaskEvent) -> None:
        """Record the outcome and duration (in the monitor's own collector, if it owns one)."""
        if self._owns_metrics:
            self.metrics.on_task_finished(event)
