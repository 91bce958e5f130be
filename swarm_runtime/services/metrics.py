"""MetricsCollector (seed slide 13): counters, gauges and sample series per agent.

Each series keeps its recent samples (bounded) for time-range queries and a sliding window
kept sorted (new samples are folded in by batch), so mean, median, stdev, min, max, p95 and
p99 are read without re-sorting. ``configure_alert`` adds min/max rules checked on every
record. As a :class:`~swarm_runtime.events.RuntimeListener` it counts messages by outcome,
tracks in-flight tasks and records the durations of tasks that reached a verdict (ok, error,
timeout; not cancelled or rejected ones) in a per-agent ledger, in O(1) per event (plus one bisect
when a duration histogram is tracked); monitoring and the Prometheus exporter read their task
figures from that ledger instead of counting the same events again.
"""

from __future__ import annotations

import math
from bisect import bisect_left
from collections import deque
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple, Protocol

from .._args import bad_argument, is_number
from .._logging import get_logger
from ..clock import Clock, SystemClock
from ..errors import ConfigError
from ..events import TaskEvent
from ._alerts import Alert, AlertBook, AlertCallback, Condition, Rule
from ._window import SlidingWindow, WindowStats, summarize

__all__ = [
    "DURATION",
    "IN_FLIGHT",
    "MESSAGES",
    "MetricsCollector",
    "Sample",
    "TaskRecorder",
    "TaskTotals",
]

DURATION = "task_duration_seconds"
"""Series of handler durations per agent, recorded from task events."""
IN_FLIGHT = "in_flight"
"""Gauge of tasks being handled per agent."""
MESSAGES = "messages_total"
"""Counter of finished tasks per agent; ``messages_<outcome>`` counts each outcome."""

_log = get_logger("swarm_runtime.metrics")
_CONDITIONS: dict[str, Condition] = {"max": "exceeded_max", "min": "below_min"}


class TaskRecorder(Protocol):
    """One agent's task bookkeeping (see :meth:`MetricsCollector.task_recorder`)."""

    def start(self, attempts: int) -> None: ...

    def finish(self, outcome: str, duration: float | None, ended: float, dead: bool) -> None: ...


class Sample(NamedTuple):
    """One recorded value and when it was recorded (wall-clock seconds)."""

    timestamp: float
    value: float


class _Series:
    __slots__ = ("samples", "window")

    def __init__(self, max_samples: int, window: int) -> None:
        self.samples: deque[tuple[float, float]] = deque(maxlen=max_samples)
        self.window = SlidingWindow(window)


@dataclass(frozen=True, slots=True)
class TaskTotals:
    """Running totals of one agent's task events since start (see ``task_totals``).

    ``buckets`` are per-bucket (not cumulative) duration counts for the bounds given to
    :meth:`MetricsCollector.track_histogram`, the last one for +Inf; empty if none.
    """

    in_flight: int
    retries: int
    dead_letters: int
    outcomes: dict[str, int]
    failed: int  # error + timeout
    duration_sum: float
    duration_count: int
    buckets: tuple[int, ...]

    @property
    def finished(self) -> int:
        """Tasks that ran to a verdict (ok, error or timeout)."""
        return self.outcomes.get("ok", 0) + self.failed


class _Ledger:
    """What task events say about one agent, kept in slots (cheap to bump per event)."""

    __slots__ = (
        "agent",
        "buckets",
        "collector",
        "dead",
        "duration_count",
        "duration_sum",
        "durations",
        "failed",
        "in_flight",
        "outcomes",
        "retries",
    )

    def __init__(
        self, collector: MetricsCollector, agent: str, durations: _Series, buckets: int
    ) -> None:
        self.collector = collector
        self.agent = agent
        self.in_flight = 0
        self.retries = 0
        self.dead = 0
        self.failed = 0
        self.outcomes: dict[str, int] = {}
        self.durations = durations
        self.duration_sum = 0.0
        self.duration_count = 0
        self.buckets = [0] * buckets

    def start(self, attempts: int) -> None:
        """A task of the agent started (a retry past its first attempt)."""
        self.in_flight += 1
        if attempts > 1:
            self.retries += 1

    def finish(self, outcome: str, duration: float | None, ended: float, dead: bool) -> None:
        """A task of the agent finished: count the outcome, record the duration."""
        if self.in_flight > 0:
            self.in_flight -= 1
        outcomes = self.outcomes
        outcomes[outcome] = outcomes.get(outcome, 0) + 1
        if outcome == "ok":
            timed = True
        elif outcome == "error" or outcome == "timeout":
            self.failed += 1
            timed = True
        else:  # cancelled or rejected: cut short, its duration says nothing
            timed = False
        if dead:
            self.dead += 1
        if timed and duration is not None:
            self.duration_sum += duration
            self.duration_count += 1
            collector = self.collector
            if collector._bounds:
                self.buckets[bisect_left(collector._bounds, duration)] += 1
            if DURATION in collector._rules:
                collector._record(self.agent, DURATION, duration, ended)
            else:
                series = self.durations
                series.samples.append((ended, duration))
                series.window.add(duration)

    def counters(self) -> dict[str, float]:
        out = {f"messages_{outcome}": float(n) for outcome, n in self.outcomes.items()}
        if self.outcomes:
            out[MESSAGES] = float(sum(self.outcomes.values()))
        if self.retries:
            out["retries_total"] = float(self.retries)
        if self.dead:
            out["dead_letters_total"] = float(self.dead)
        return out


class MetricsCollector:
    """Per-agent metrics with windowed aggregations, time-range queries and alerts.

    ``window`` is how many recent samples a series aggregates over; ``max_samples`` how many
    it keeps for time-range queries; ``max_series`` caps the number of series (and of
    counters and gauges) so memory stays bounded whatever names callers invent.
    """

    def __init__(
        self,
        *,
        window: int = 1000,
        max_samples: int = 10_000,
        max_series: int = 10_000,
        clock: Clock | None = None,
        on_alert: AlertCallback | None = None,
        alert_history: int = 1000,
    ) -> None:
        if window < 1 or max_samples < 1 or max_series < 1:
            raise ConfigError(
                f"metrics window, max_samples and max_series must be >= 1, got "
                f"{window}, {max_samples}, {max_series}"
            )
        self._window = window
        self._max_samples = max_samples
        self._max_series = max_series
        self._clock: Clock = clock or SystemClock()
        self._series: dict[tuple[str, str], _Series] = {}
        self._counters: dict[tuple[str, str], float] = {}
        self._gauges: dict[tuple[str, str], float] = {}
        self._rules: dict[str, list[tuple[str | None, Rule]]] = {}
        self._alerts = AlertBook(
            clock=self._clock, callbacks=[on_alert] if on_alert else (), history=alert_history
        )
        self._ledgers: dict[str, _Ledger] = {}
        self._bounds: list[float] = []
        self._dropped_warned = False

    # -- recording ---------------------------------------------------------------------------

    def record_metric(
        self, agent: str, name: str, value: float, *, timestamp: float | None = None
    ) -> Alert | None:
        """Record one sample of ``name`` for ``agent`` and check its alert rules; returns the
        alert transition it caused, if any."""
        if not is_number(value) or not math.isfinite(value):
            raise bad_argument(
                f"metric {name!r} of agent {agent!r}: value",
                value,
                "a finite number",
                kind=is_number(value),
            )
        value = float(value)
        return self._record(
            agent, name, value, self._clock.time() if timestamp is None else timestamp
        )

    def _record(self, agent: str, name: str, value: float, when: float) -> Alert | None:
        key = (agent, name)
        series = self._series.get(key)
        if series is None:
            if len(self._series) >= self._max_series:
                self._drop(key)
                return None
            series = self._series[key] = _Series(self._max_samples, self._window)
        series.samples.append((when, value))
        series.window.add(value)
        transition = None
        if self._rules:
            rules = self._rules.get(name)
            if rules:
                for scope, rule in rules:
                    if scope is None or scope == agent:
                        transition = self._alerts.evaluate(agent, name, value, rule) or transition
        return transition

    def increment(self, agent: str, name: str, amount: float = 1.0) -> float:
        """Add ``amount`` (>= 0) to a counter; returns the new total."""
        if not is_number(amount) or not amount >= 0:
            raise bad_argument(
                f"counter {name!r} increment (counters only go up; use a gauge)",
                amount,
                "a number >= 0",
                kind=is_number(amount),
            )
        key = (agent, name)
        total = self._counters.get(key)
        if total is None:
            if len(self._counters) >= self._max_series:
                self._drop(key)
                return 0.0
            total = 0.0
        total += amount
        self._counters[key] = total
        return total

    def set_gauge(self, agent: str, name: str, value: float) -> None:
        """Set a gauge to its current value."""
        key = (agent, name)
        if key not in self._gauges and len(self._gauges) >= self._max_series:
            self._drop(key)
            return
        self._gauges[key] = float(value)

    def _drop(self, key: tuple[str, str]) -> None:
        if not self._dropped_warned:
            self._dropped_warned = True
            _log.warning(
                "metric dropped: too many series; raise max_series or use fewer names",
                agent=key[0],
                name=key[1],
                max_series=self._max_series,
            )

    # -- reading -----------------------------------------------------------------------------

    def counter(self, agent: str, name: str) -> float:
        ledger = self._ledgers.get(agent)
        if ledger is not None:
            derived = ledger.counters().get(name)
            if derived is not None:
                return derived + self._counters.get((agent, name), 0.0)
        return self._counters.get((agent, name), 0.0)

    def gauge(self, agent: str, name: str) -> float | None:
        ledger = self._ledgers.get(agent)
        if name == IN_FLIGHT and ledger is not None:
            return float(ledger.in_flight)
        return self._gauges.get((agent, name))

    def counters(self) -> dict[tuple[str, str], float]:
        """Every counter (those recorded plus those kept from task events), by (agent, name)."""
        out = dict(self._counters)
        for agent, ledger in self._ledgers.items():
            for name, value in ledger.counters().items():
                out[(agent, name)] = out.get((agent, name), 0.0) + value
        return out

    def gauges(self) -> dict[tuple[str, str], float]:
        """Every gauge, keyed by (agent, name)."""
        out = dict(self._gauges)
        for agent, ledger in self._ledgers.items():
            out[(agent, IN_FLIGHT)] = float(ledger.in_flight)
        return out

    def series(self) -> list[tuple[str, str]]:
        """The (agent, name) of every sample series."""
        return list(self._series)

    def agents(self) -> list[str]:
        """Agents that have any metric, sorted."""
        names = {a for a, _ in self._series} | {a for a, _ in self._counters}
        return sorted(names | {a for a, _ in self._gauges} | set(self._ledgers))

    def get_metrics(
        self, agent: str, name: str, time_range: tuple[float, float] | None = None
    ) -> list[Sample]:
        """Samples of one series, oldest first; ``time_range`` is inclusive (start, end)."""
        series = self._series.get((agent, name))
        if series is None:
            return []
        if time_range is None:
            return [Sample(t, v) for t, v in series.samples]
        start, end = time_range
        return [Sample(t, v) for t, v in series.samples if start <= t <= end]

    def aggregate(
        self, agent: str, name: str, time_range: tuple[float, float] | None = None
    ) -> WindowStats | None:
        """Aggregates over the series' sliding window, or over the samples in ``time_range``."""
        series = self._series.get((agent, name))
        if series is None:
            return None
        if time_range is None:
            return series.window.stats()
        return summarize(sorted(s.value for s in self.get_metrics(agent, name, time_range)))

    @property
    def aggregations(self) -> dict[str, dict[str, float]]:
        """Window aggregates of every series, keyed ``"agent:name"`` (as the seed does)."""
        out: dict[str, dict[str, float]] = {}
        for (agent, name), series in self._series.items():
            stats = series.window.stats()
            if stats is not None:
                out[f"{agent}:{name}"] = stats.as_dict()
        return out

    # -- alerts ------------------------------------------------------------------------------

    def configure_alert(
        self, metric_name: str, conditions: Mapping[str, float], *, agent: str | None = None
    ) -> None:
        """Alert when ``metric_name`` goes above ``conditions['max']`` or below ``['min']``.

        Replaces earlier rules for the same metric and agent scope (``None``: every agent).
        """
        rules: list[tuple[str | None, Rule]] = []
        for key, threshold in conditions.items():
            condition = _CONDITIONS.get(key)
            if condition is None:
                raise ConfigError(
                    f"alert condition {key!r} for metric {metric_name!r} is unknown; "
                    f"use 'max' or 'min'"
                )
            rules.append((agent, Rule(float(threshold), condition)))
        kept = [(s, r) for s, r in self._rules.get(metric_name, []) if s != agent]
        self._rules[metric_name] = kept + rules

    def clear_alert(self, metric_name: str, *, agent: str | None = None) -> None:
        """Drop the rules of ``metric_name`` for one agent scope (``None``: every agent)."""
        kept = [(s, r) for s, r in self._rules.get(metric_name, []) if s != agent]
        if kept:
            self._rules[metric_name] = kept
        else:
            self._rules.pop(metric_name, None)

    def last(self, agent: str, name: str) -> float | None:
        """The last value recorded in a series (None if none)."""
        series = self._series.get((agent, name))
        return series.samples[-1][1] if series is not None and series.samples else None

    def add_alert_callback(self, callback: AlertCallback) -> None:
        """Also send every alert transition to ``callback``."""
        self._alerts.add_callback(callback)

    @property
    def alerts(self) -> list[Alert]:
        """Alerts currently active."""
        return self._alerts.active

    @property
    def alert_history(self) -> list[Alert]:
        """Alert transitions (raised, escalated, resolved), bounded, oldest first."""
        return self._alerts.history

    # -- runtime listener --------------------------------------------------------------------

    def track_histogram(self, bounds: Sequence[float]) -> None:
        """Also count task durations into buckets with these upper bounds (for exporters)."""
        wanted = sorted(float(b) for b in bounds if b != math.inf)
        if not wanted or len(set(wanted)) != len(wanted):
            raise ConfigError(f"histogram buckets must be distinct numbers, got {list(bounds)}")
        if self._bounds and self._bounds != wanted:
            raise ConfigError(
                f"this collector already counts durations into buckets {self._bounds}; "
                f"give each exporter with other buckets its own collector"
            )
        if not self._bounds:
            self._bounds = wanted
            for ledger in self._ledgers.values():
                ledger.buckets = [0] * (len(wanted) + 1)

    @property
    def histogram_bounds(self) -> list[float]:
        return list(self._bounds)

    def task_agents(self) -> list[str]:
        """Agents that task events were seen for."""
        return list(self._ledgers)

    def task_totals(self, agent: str) -> TaskTotals | None:
        """Running totals of an agent's task events (None if none seen)."""
        ledger = self._ledgers.get(agent)
        if ledger is None:
            return None
        return TaskTotals(
            in_flight=ledger.in_flight,
            retries=ledger.retries,
            dead_letters=ledger.dead,
            outcomes=dict(ledger.outcomes),
            failed=ledger.failed,
            duration_sum=ledger.duration_sum,
            duration_count=ledger.duration_count,
            buckets=tuple(ledger.buckets),
        )

    def _ledger(self, agent: str) -> _Ledger:
        ledger = self._ledgers.get(agent)
        if ledger is None:
            series = self._series.get((agent, DURATION))
            if series is None:
                series = _Series(self._max_samples, self._window)
                if len(self._series) < self._max_series:
                    self._series[(agent, DURATION)] = series
                else:
                    self._drop((agent, DURATION))
            size = len(self._bounds) + 1 if self._bounds else 0
            ledger = self._ledgers[agent] = _Ledger(self, agent, series, size)
        return ledger

    def task_recorder(self, agent: str) -> TaskRecorder:
        """The bookkeeping of ``agent``'s tasks, looked up once (what the Metrics middleware
        holds): ``start(attempts)`` and ``finish(outcome, duration, ended, dead)``."""
        return self._ledgers.get(agent) or self._ledger(agent)

    def task_started(self, agent: str, attempts: int) -> None:
        """Count a task of ``agent`` in flight (and as a retry past its first attempt)."""
        (self._ledgers.get(agent) or self._ledger(agent)).start(attempts)

    def task_finished(
        self, agent: str, outcome: str, duration: float | None, ended: float, dead: bool
    ) -> None:
        """Count the outcome, record the duration (ended at ``ended``, wall-clock) and take
        the task out of flight."""
        (self._ledgers.get(agent) or self._ledger(agent)).finish(outcome, duration, ended, dead)

    def on_task_started(self, event: TaskEvent) -> None:
        """Count the task as in flight (and as a retry when it is not the first attempt)."""
        self.task_started(event.agent, event.attempts)

    def on_task_finished(self, event: TaskEvent) -> None:
        """Count the outcome, record the duration and take the task out of flight."""
        duration = event.duration
        ended = event.started_at + (duration or 0.0)  # the event's own clock: no call per event
        self.task_finished(event.agent, event.outcome, duration, ended, event.dead_lettered)

    # -- report ------------------------------------------------------------------------------

    def snapshot(self, agents: Iterable[str] | None = None) -> dict[str, Any]:
        """Counters, gauges and window aggregates per agent, JSON-ready, for the run report."""
        wanted = set(agents) if agents is not None else None
        out: dict[str, dict[str, Any]] = {}

        def entry(agent: str) -> dict[str, Any]:
            return out.setdefault(agent, {"counters": {}, "gauges": {}, "series": {}})

        for (agent, name), total in self.counters().items():
            if wanted is None or agent in wanted:
                entry(agent)["counters"][name] = total
        for (agent, name), value in self.gauges().items():
            if wanted is None or agent in wanted:
                entry(agent)["gauges"][name] = value
        for (agent, name), series in self._series.items():
            stats = series.window.stats()
            if stats is not None and (wanted is None or agent in wanted):
                entry(agent)["series"][name] = stats.as_dict()
        return {"agents": out, "alerts": [a.to_dict() for a in self.alert_history]}
