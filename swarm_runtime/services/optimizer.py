"""SelfOptimizer (seed slide 10): tune an agent's concurrency and batch size from measurements.

Each tuned parameter is hill-climbed on measured throughput, one parameter at a time. Moves
start at ``step`` (10%, at least 1) and double while they keep paying off (a slow start, so
the climb is quick); a miss resets the stride, so the final resolution stays fine:

* **concurrency**: an increase is kept only if throughput grows by at least ``min_gain`` of
  the proportional gain (by Little's law, latency then stays flat: the agent had idle
  capacity); a decrease is kept if throughput falls by less than that (the removed slots were
  only queueing, so latency drops). Past the knee where latency starts to climb, neither
  holds and the climber settles at the knee.
* **batch_size**: an increase must raise throughput by ``batch_min_gain``; a decrease that
  keeps throughput is kept (smaller batches, lower latency).
* **timeout** (if registered) follows the measured latency, ``timeout_factor`` times it,
  changed only when it moves by more than ``change``.

Every setting is measured over ``dwell`` windows (after ``warmup`` discarded ones) before it
is judged, and a move that looks bad is re-measured (``confirm`` times) before the climb
stops, so a noisy window does not end it early. Once settled, the setting holds: tuning
restarts only when throughput or latency changes by more than ``change``, and every
``probe_every`` judgements one small step up is tried and undone unless it pays (the only
way to see that an agent gained room above its limit). Values always stay within bounds.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

import anyio
from anyio.abc import TaskStatus

from .._logging import get_logger
from ..clock import Clock, SystemClock
from ..errors import ConfigError, UnknownAgentError
from ..events import TaskEvent

__all__ = ["DEFAULT_BOUNDS", "OptimizerConfig", "ParameterChange", "SelfOptimizer"]

DEFAULT_BOUNDS: Mapping[str, tuple[float, float]] = {
    "concurrency": (1, 256),
    "batch_size": (1, 100),
    "timeout": (1.0, 30.0),
    "retry_limit": (1, 5),
}
"""Bounds used when ``register_parameters`` is not given one for a parameter."""

ParameterChange = Callable[[str, dict[str, float]], None]
"""Called with (agent, new parameters) whenever the optimizer changes one."""

_log = get_logger("swarm_runtime.optimizer")
_TUNED = ("concurrency", "batch_size")


@dataclass(frozen=True, slots=True)
class OptimizerConfig:
    """How the optimizer moves (see the module docstring)."""

    step: float = 0.1
    dwell: int = 3
    warmup: int = 1
    min_gain: float = 0.5
    batch_min_gain: float = 0.02
    change: float = 0.25
    timeout_factor: float = 4.0
    min_utilization: float = 0.7
    confirm: int = 2
    probe_every: int | None = 20

    def __post_init__(self) -> None:
        if not 0.0 < self.step <= 1.0:
            raise ConfigError(f"optimizer step must be in (0, 1], got {self.step}")
        if self.dwell < 1 or self.warmup < 0:
            raise ConfigError(
                f"optimizer dwell must be >= 1 and warmup >= 0, got {self.dwell}, {self.warmup}"
            )
        if not 0.0 < self.min_gain < 1.0:
            raise ConfigError(f"optimizer min_gain must be in (0, 1), got {self.min_gain}")
        if self.probe_every is not None and self.probe_every < 1:
            raise ConfigError(f"optimizer probe_every must be >= 1 or None, got {self.probe_every}")
        if self.confirm < 1:
            raise ConfigError(f"optimizer confirm must be >= 1, got {self.confirm}")
        if self.change <= 0 or self.timeout_factor <= 0 or self.batch_min_gain < 0:
            raise ConfigError(
                "optimizer change and timeout_factor must be > 0, batch_min_gain >= 0"
            )


Phase = Literal["start", "remeasure", "up", "down", "settled"]


class _Climber:
    """Hill-climbs one integer parameter on throughput."""

    def __init__(self, name: str, value: int, low: int, high: int, config: OptimizerConfig) -> None:
        self.name = name
        self.value = value
        self.low = low
        self.high = high
        self.config = config
        self.proportional = name == "concurrency"
        self.phase: Phase = "start"
        self.base: tuple[int, float, float] = (value, 0.0, 0.0)
        self.climbed = False  # an up move was kept in this exploration
        self.descended = False  # a down move was kept in this exploration
        self.rejections = 0
        self.stride = config.step  # grows while moves pay off (slow start), reset on a miss
        self.direction_after_remeasure: Literal["up", "down"] = "up"
        self.reference: tuple[float, float] = (0.0, 0.0)

    @property
    def settled(self) -> bool:
        return self.phase == "settled"

    def probe(self, throughput: float, latency: float) -> bool:
        """From settled, try one small step up (kept only if it pays); False at the bound."""
        if self.value >= self.high:
            return False
        self.base = (self.value, throughput, latency)
        self.climbed, self.descended = True, False
        self.rejections = self.config.confirm - 1  # one miss ends the probe
        self._slow_down()
        self.value, self.phase = self._up(self.value), "up"
        return True

    def restart(self) -> None:
        self.phase = "start"
        self.direction_after_remeasure = "up"

    def _up(self, value: int) -> int:
        return min(self.high, max(value + 1, round(value * (1 + self.stride))))

    def _down(self, value: int) -> int:
        return max(self.low, min(value - 1, round(value * (1 - min(0.5, self.stride)))))

    def _accelerate(self) -> None:
        self.stride = min(1.0, self.stride * 2)

    def _slow_down(self) -> None:
        self.stride = self.config.step

    def _settle(self, throughput: float, latency: float) -> None:
        self.phase = "settled"
        self.reference = (throughput, latency)

    def _better_up(self, v0: int, t0: float, v1: int, t1: float) -> bool:
        if t0 <= 0:
            return t1 > 0
        if self.proportional:
            return (t1 / t0 - 1) >= self.config.min_gain * (v1 / v0 - 1)
        return t1 >= t0 * (1 + self.config.batch_min_gain)

    def _fine_down(self, v0: int, t0: float, v1: int, t1: float) -> bool:
        if t0 <= 0:
            return True
        if self.proportional:
            return (1 - t1 / t0) < self.config.min_gain * (1 - v1 / v0)
        return t1 >= t0 * (1 - self.config.batch_min_gain)

    def observe(self, throughput: float, latency: float) -> None:
        """Judge the current value from its measurement and choose the next one.

        A move that looks bad is tried again from a fresh measurement of where it started
        before it counts (``confirm`` times), so one noisy window cannot stop the climb.
        """
        if self.phase == "start":
            self.climbed = self.descended = False
            self.rejections = 0
            self._slow_down()
        if self.phase in ("start", "remeasure"):
            self.base = (self.value, throughput, latency)
            going_up = self.direction_after_remeasure != "down"
            if going_up and self.value < self.high:
                self.value, self.phase = self._up(self.value), "up"
            elif self.value > self.low:
                self.value, self.phase = self._down(self.value), "down"
            else:
                self._settle(throughput, latency)
            return
        v0, t0, l0 = self.base
        if self.phase == "up":
            if self._better_up(v0, t0, self.value, throughput):
                self.base, self.climbed, self.rejections = (
                    (self.value, throughput, latency),
                    True,
                    0,
                )
                self._accelerate()
                if self.value < self.high:
                    self.value = self._up(self.value)
                else:
                    self._settle(throughput, latency)
                return
            self.value = v0
            big_step = self.stride > self.config.step  # a miss at a big stride is no verdict
            self._slow_down()
            self.rejections += 0 if big_step else 1
            if big_step or self.rejections < self.config.confirm:
                self.phase, self.direction_after_remeasure = "remeasure", "up"
            elif self.climbed or self.descended or v0 <= self.low:
                self._settle(t0, l0)
            else:
                self.rejections = 0
                self.phase, self.direction_after_remeasure = "remeasure", "down"
            return
        if self.phase == "down":
            if self._fine_down(v0, t0, self.value, throughput):
                self.base, self.rejections = (self.value, throughput, latency), 0
                self.descended = True
                self._accelerate()
                if self.value > self.low:
                    self.value = self._down(self.value)
                else:
                    self._settle(throughput, latency)
                return
            self.value = v0
            big_step = self.stride > self.config.step  # a miss at a big stride is no verdict
            self._slow_down()
            self.rejections += 0 if big_step else 1
            if big_step or self.rejections < self.config.confirm:
                self.phase, self.direction_after_remeasure = "remeasure", "down"
            elif self.descended and not self.climbed and v0 < self.high:
                # big strides down may have jumped past the best point: check just above
                self.rejections = 0
                self.phase, self.direction_after_remeasure = "remeasure", "up"
            else:
                self._settle(t0, l0)


class _Window:
    """Task outcomes of one agent since the last tick (fed by task events)."""

    __slots__ = ("busy", "elapsed", "failed", "ok")

    def __init__(self) -> None:
        self.ok = 0
        self.failed = 0
        self.busy = 0.0  # sum of durations
        self.elapsed = 0.0


class _AgentTuning:
    def __init__(
        self,
        params: dict[str, float],
        bounds: dict[str, tuple[float, float]],
        config: OptimizerConfig,
        history: int,
    ) -> None:
        self.params = params
        self.bounds = bounds
        self.climbers = [
            _Climber(name, int(params[name]), int(bounds[name][0]), int(bounds[name][1]), config)
            for name in _TUNED
            if name in params
        ]
        self.pending: list[Mapping[str, float]] = []
        self.skip = config.warmup
        self.history: deque[dict[str, Any]] = deque(maxlen=history)
        self.reference: tuple[float, float] | None = None
        self.quiet = 0  # judgements since everything settled
        self.window = _Window()


class SelfOptimizer:
    """Tunes each registered agent's concurrency / batch size / timeout within bounds.

    Feed it with :meth:`record_performance` (one call per measurement window), or register it
    as a runtime listener and start :meth:`run`, which closes a window every ``interval``
    seconds once it holds ``min_tasks`` finished tasks. ``on_change(agent, params)`` is
    called when parameters change, so the owner can apply them (e.g. resize the agent's
    concurrency).
    """

    def __init__(
        self,
        learning_rate: float | None = None,
        *,
        config: OptimizerConfig | None = None,
        interval: float = 1.0,
        clock: Clock | None = None,
        on_change: ParameterChange | None = None,
        history: int = 500,
        min_tasks: int = 50,
    ) -> None:
        # ``learning_rate`` is accepted for the seed's signature; the step size is config.step.
        if learning_rate is not None and config is None:
            config = OptimizerConfig(step=min(1.0, max(0.01, learning_rate * 10)))
        if not (math.isfinite(interval) and interval > 0):
            raise ConfigError(f"optimizer interval must be > 0 seconds, got {interval}")
        self.config = config or OptimizerConfig()
        self.interval = interval
        self.min_tasks = min_tasks
        self._clock: Clock = clock or SystemClock()
        self.on_change = on_change
        self._history = history
        self._agents: dict[str, _AgentTuning] = {}

    # -- registration and reading --------------------------------------------------------

    def register_parameters(
        self,
        agent_id: str,
        initial_params: Mapping[str, float],
        *,
        bounds: Mapping[str, tuple[float, float]] | None = None,
    ) -> None:
        """Start tuning ``agent_id`` from ``initial_params`` (each within its bounds).

        ``concurrency`` and ``batch_size`` are tuned, ``timeout`` follows latency; other
        parameters are kept as given.
        """
        chosen: dict[str, tuple[float, float]] = {}
        for name, value in initial_params.items():
            low, high = (bounds or {}).get(name) or DEFAULT_BOUNDS.get(name, (-math.inf, math.inf))
            if not low <= high:
                raise ConfigError(
                    f"agent {agent_id!r}: bounds of {name} are empty: ({low}, {high})"
                )
            if not low <= value <= high:
                raise ConfigError(
                    f"agent {agent_id!r}: {name}={value} is outside its bounds "
                    f"[{low:g}, {high:g}]; pass bounds={{{name!r}: (low, high)}} to widen them"
                )
            chosen[name] = (low, high)
        self._agents[agent_id] = _AgentTuning(
            dict(initial_params), chosen, self.config, self._history
        )

    def get_parameters(self, agent_id: str) -> dict[str, float]:
        """The agent's current parameters (a copy)."""
        return dict(self._tuning(agent_id).params)

    def history(self, agent_id: str) -> list[dict[str, Any]]:
        """Recent measurements with the parameters they were taken under, oldest first."""
        return list(self._tuning(agent_id).history)

    def settled(self, agent_id: str) -> bool:
        """Whether every tuned parameter of the agent has settled."""
        return all(c.settled for c in self._tuning(agent_id).climbers)

    @property
    def agents(self) -> list[str]:
        return list(self._agents)

    def _tuning(self, agent_id: str) -> _AgentTuning:
        found = self._agents.get(agent_id)
        if found is None:
            raise UnknownAgentError(agent_id, self._agents)
        return found

    # -- measurement ---------------------------------------------------------------------

    def record_performance(self, agent_id: str, metrics: Mapping[str, float]) -> dict[str, float]:
        """Take one window's measurement; returns the (possibly new) parameters.

        ``metrics``: ``throughput`` (tasks/s), ``latency`` (s), optionally ``success_rate``,
        ``concurrency_in_use`` (mean tasks in flight) and ``latency_p99``.
        """
        tuning = self._tuning(agent_id)
        tuning.history.append(
            {
                "timestamp": self._clock.time(),
                "metrics": dict(metrics),
                "parameters": dict(tuning.params),
            }
        )
        throughput = float(metrics.get("throughput", math.nan))
        latency = float(metrics.get("latency", math.nan))
        if not (math.isfinite(throughput) and math.isfinite(latency)):
            return dict(tuning.params)
        if tuning.skip > 0:  # the window right after a change is still mixed: ignore it
            tuning.skip -= 1
            return dict(tuning.params)
        tuning.pending.append(metrics)
        if len(tuning.pending) < self.config.dwell:
            return dict(tuning.params)
        windows, tuning.pending = tuning.pending, []
        mean = {
            key: math.fsum(float(w.get(key, 0.0)) for w in windows) / len(windows)
            for key in ("throughput", "latency", "concurrency_in_use", "latency_p99")
        }
        before = dict(tuning.params)
        self._judge(tuning, mean, windows)
        self._follow_latency(tuning, mean, windows)
        if tuning.params != before:
            tuning.skip = self.config.warmup
            _log.info("agent parameters tuned", agent=agent_id, old=before, new=tuning.params)
            if self.on_change is not None:
                try:
                    self.on_change(agent_id, dict(tuning.params))
                except Exception as exc:  # the owner's hook must not stop tuning
                    _log.error("optimizer on_change failed", agent=agent_id, error=repr(exc))
        return dict(tuning.params)

    def _judge(
        self, tuning: _AgentTuning, mean: dict[str, float], windows: list[Mapping[str, float]]
    ) -> None:
        throughput, latency = mean["throughput"], mean["latency"]
        active = next((c for c in tuning.climbers if not c.settled), None)
        if active is None:
            if tuning.reference is None or not self._changed(tuning.reference, throughput, latency):
                tuning.quiet += 1
                every = self.config.probe_every
                if every is not None and tuning.quiet >= every and tuning.climbers:
                    # the agent may have room the settled limit cannot show: peek one step up
                    tuning.quiet = 0
                    first = tuning.climbers[0]
                    if first.probe(throughput, latency):
                        tuning.params[first.name] = first.value
                return
            _log.info(
                "agent performance changed; tuning again", throughput=throughput, latency=latency
            )
            for climber in tuning.climbers:
                climber.restart()
            tuning.reference = None
            active = tuning.climbers[0]
        idle = mean["concurrency_in_use"] < self.config.min_utilization * active.value
        if active.proportional and idle and all("concurrency_in_use" in w for w in windows):
            return  # demand, not the limit, decides throughput now: nothing to learn
        active.observe(throughput, latency)
        tuning.params[active.name] = active.value
        if all(c.settled for c in tuning.climbers):
            tuning.reference = active.reference
            tuning.quiet = 0

    def _changed(self, reference: tuple[float, float], throughput: float, latency: float) -> bool:
        limit = self.config.change
        return any(
            abs(now / then - 1) > limit if then > 0 else now > 0
            for then, now in zip(reference, (throughput, latency), strict=True)
        )

    def _follow_latency(
        self, tuning: _AgentTuning, mean: dict[str, float], windows: list[Mapping[str, float]]
    ) -> None:
        if "timeout" not in tuning.params:
            return
        if all("latency_p99" in w for w in windows):
            wanted = 2 * mean["latency_p99"]
        else:
            wanted = self.config.timeout_factor * mean["latency"]
        low, high = tuning.bounds["timeout"]
        wanted = min(high, max(low, wanted))
        current = tuning.params["timeout"]
        if current <= 0 or abs(wanted / current - 1) > self.config.change:
            tuning.params["timeout"] = wanted

    # -- runtime listener and background loop --------------------------------------------

    def on_task_started(self, event: TaskEvent) -> None:
        """Nothing to do: windows count finished tasks."""

    def tunes(self, agent_id: str) -> bool:
        """Whether the optimizer tunes ``agent_id`` (has its parameters registered)."""
        return agent_id in self._agents

    def record_task(self, agent_id: str, ok: bool, duration: float | None) -> None:
        """Count one finished task (ok or failed) in its agent's current window."""
        tuning = self._agents.get(agent_id)
        if tuning is None:
            return
        window = tuning.window
        if ok:
            window.ok += 1
        else:
            window.failed += 1
        if duration is not None:
            window.busy += duration

    def on_task_finished(self, event: TaskEvent) -> None:
        """Count the task in its agent's current window (registered agents only)."""
        if event.outcome in ("ok", "error", "timeout"):
            self.record_task(event.agent, event.outcome == "ok", event.duration)

    def tick(self, elapsed: float) -> None:
        """Close every agent's window that has seen ``min_tasks`` tasks and feed it to the tuner.

        A window with fewer tasks stays open (its throughput would be mostly noise); one
        with no task at all carries no information and changes nothing.
        """
        for agent_id, tuning in self._agents.items():
            window = tuning.window
            window.elapsed += elapsed
            finished = window.ok + window.failed
            if finished < max(1, self.min_tasks) or window.elapsed <= 0:
                continue
            tuning.window = _Window()
            self.record_performance(
                agent_id,
                {
                    "throughput": window.ok / window.elapsed,
                    "latency": window.busy / finished,
                    "success_rate": window.ok / finished,
                    "concurrency_in_use": window.busy / window.elapsed,
                },
            )

    async def run(self, *, task_status: TaskStatus[None] = anyio.TASK_STATUS_IGNORED) -> None:
        """Close a window every ``interval`` seconds until cancelled."""
        task_status.started()
        last = self._clock.time()
        while True:
            await self._clock.sleep(self.interval)
            now = self._clock.time()
            self.tick(now - last)
            last = now
