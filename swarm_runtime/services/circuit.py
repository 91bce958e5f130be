"""CircuitBreaker: stop sending work to an agent that keeps failing, then probe it back.

States: ``closed`` (traffic flows) → ``open`` after ``failure_threshold`` consecutive failures
or a failure rate of at least ``failure_rate`` over the last ``window`` outcomes (once
``min_calls`` are in) → ``half_open`` when ``cooldown`` seconds have passed, letting
``half_open_max_calls`` probes through → ``closed`` on a successful probe (counts reset), or
``open`` again on a failed one. A success always resets the consecutive-failure count.
Time comes from an injectable :class:`~swarm_runtime.clock.Clock`.
"""

from __future__ import annotations

import enum
import math
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

from ..clock import Clock, SystemClock
from ..errors import CircuitOpenError, ConfigError

__all__ = ["BreakerConfig", "CircuitBreaker", "CircuitState", "StateChange"]


class CircuitState(enum.StrEnum):
    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half_open"


StateChange = Callable[[str, CircuitState, CircuitState], None]
"""Called with (breaker name, old state, new state) on every transition."""


@dataclass(frozen=True, slots=True)
class BreakerConfig:
    """When a breaker opens and how it recovers (see the module docstring)."""

    failure_threshold: int = 5
    failure_rate: float | None = None
    window: int = 20
    min_calls: int = 10
    cooldown: float = 30.0
    half_open_max_calls: int = 1

    def __post_init__(self) -> None:
        if self.failure_threshold < 1:
            raise ConfigError(f"failure_threshold must be >= 1, got {self.failure_threshold}")
        if self.failure_rate is not None and not 0.0 < self.failure_rate <= 1.0:
            raise ConfigError(f"failure_rate must be in (0, 1], got {self.failure_rate}")
        if self.window < 1 or not 1 <= self.min_calls <= self.window:
            raise ConfigError(
                f"need window >= 1 and 1 <= min_calls <= window, got window={self.window}, "
                f"min_calls={self.min_calls}"
            )
        if not (math.isfinite(self.cooldown) and self.cooldown >= 0):
            raise ConfigError(f"cooldown must be >= 0 seconds, got {self.cooldown}")
        if self.half_open_max_calls < 1:
            raise ConfigError(f"half_open_max_calls must be >= 1, got {self.half_open_max_calls}")


class CircuitBreaker:
    """One agent's (or replica's) breaker; every method is O(1) and never blocks."""

    def __init__(
        self,
        name: str,
        config: BreakerConfig | None = None,
        *,
        clock: Clock | None = None,
        on_state_change: StateChange | None = None,
    ) -> None:
        self.name = name
        self.config = config or BreakerConfig()
        self._clock: Clock = clock or SystemClock()
        self._on_change = on_state_change
        self._state = CircuitState.CLOSED
        self._consecutive = 0
        self._outcomes: deque[bool] = deque(maxlen=self.config.window)  # True = failure
        self._window_failures = 0
        self._opened_at = 0.0
        self._probes = 0
        self._probe_at = 0.0
        self.times_opened = 0

    # -- state ---------------------------------------------------------------------------

    @property
    def state(self) -> CircuitState:
        """The current state; an open breaker past its cooldown reads as half-open."""
        if self._state is CircuitState.OPEN and self._cooled_down():
            self._transition(CircuitState.HALF_OPEN)
            self._probes = 0
        return self._state

    @property
    def consecutive_failures(self) -> int:
        return self._consecutive

    @property
    def failure_rate(self) -> float:
        """Failures over the outcomes in the window (0.0 when empty)."""
        return self._window_failures / len(self._outcomes) if self._outcomes else 0.0

    def retry_after(self) -> float:
        """Seconds until the breaker lets a probe through (0.0 when it would now)."""
        if self.state is not CircuitState.OPEN:
            return 0.0
        return max(0.0, self._opened_at + self.config.cooldown - self._clock.time())

    def _cooled_down(self) -> bool:
        return self._clock.time() >= self._opened_at + self.config.cooldown

    # -- admission -----------------------------------------------------------------------

    def allow(self) -> bool:
        """Whether a call would be let through now (does not take a probe slot)."""
        state = self.state
        if state is CircuitState.CLOSED:
            return True
        if state is CircuitState.OPEN:
            return False
        return self._probes < self.config.half_open_max_calls or self._probe_lost()

    def _probe_lost(self) -> bool:
        # A probe whose outcome never came back (e.g. its task vanished) must not wedge the
        # breaker half-open forever: after another cooldown, allow a fresh probe.
        return self._clock.time() >= self._probe_at + self.config.cooldown

    def try_acquire(self) -> bool:
        """Let one call through if allowed (taking a probe slot when half-open)."""
        if not self.allow():
            return False
        if self._state is CircuitState.HALF_OPEN:
            if self._probes >= self.config.half_open_max_calls:  # the lost-probe case
                self._probes = 0
            self._probes += 1
            self._probe_at = self._clock.time()
        return True

    def acquire(self) -> None:
        """Like :meth:`try_acquire`, but raise :class:`CircuitOpenError` when refused."""
        if not self.try_acquire():
            wait = self.retry_after()
            when = f"retry in {wait:.1f}s" if wait > 0 else "a probe is already in flight"
            raise CircuitOpenError(
                f"circuit of {self.name!r} is {self._state.value} after "
                f"{self._consecutive} consecutive failure(s); {when}"
            )

    def release_probe(self) -> None:
        """Give back a probe slot whose call ended without a verdict (cancelled, rejected)."""
        if self._state is CircuitState.HALF_OPEN and self._probes > 0:
            self._probes -= 1

    # -- outcomes ------------------------------------------------------------------------

    def record_success(self) -> None:
        """A call succeeded: reset the consecutive count; a half-open probe closes the breaker."""
        state = self.state
        if state is CircuitState.OPEN:
            return  # a straggler that started before the breaker opened: no verdict
        self._consecutive = 0
        if state is CircuitState.HALF_OPEN:
            self._reset_counts()
            self._transition(CircuitState.CLOSED)
            return
        self._push(False)

    def record_failure(self) -> None:
        """A call failed: count it; open the breaker when a limit is reached."""
        state = self.state
        if state is CircuitState.OPEN:
            return  # already open; stragglers do not extend the cooldown
        self._consecutive += 1
        if state is CircuitState.HALF_OPEN:
            self._open()
            return
        self._push(True)
        cfg = self.config
        over_rate = (
            cfg.failure_rate is not None
            and len(self._outcomes) >= cfg.min_calls
            and self.failure_rate >= cfg.failure_rate
        )
        if self._consecutive >= cfg.failure_threshold or over_rate:
            self._open()

    def reset(self) -> None:
        """Close the breaker and forget every count (an operator's override)."""
        self._reset_counts()
        self._consecutive = 0
        self._transition(CircuitState.CLOSED)

    def _push(self, failed: bool) -> None:
        if len(self._outcomes) == self._outcomes.maxlen and self._outcomes[0]:
            self._window_failures -= 1
        self._outcomes.append(failed)
        if failed:
            self._window_failures += 1

    def _reset_counts(self) -> None:
        self._outcomes.clear()
        self._window_failures = 0
        self._probes = 0

    def _open(self) -> None:
        self._opened_at = self._clock.time()
        self._probes = 0
        self.times_opened += 1
        self._transition(CircuitState.OPEN)

    def _transition(self, new: CircuitState) -> None:
        old = self._state
        if old is new:
            return
        self._state = new
        if self._on_change is not None:
            self._on_change(self.name, old, new)

    def __repr__(self) -> str:
        return f"<CircuitBreaker {self.name!r} {self._state.value} failures={self._consecutive}>"
