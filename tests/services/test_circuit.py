"""CircuitBreaker: the closed → open → half-open → closed state machine, on a manual clock."""

from __future__ import annotations

import pytest

from swarm_runtime.clock import ManualClock
from swarm_runtime.errors import CircuitOpenError, ConfigError
from swarm_runtime.services import BreakerConfig, CircuitBreaker, CircuitState


def make(clock: ManualClock, **config: object) -> CircuitBreaker:
    return CircuitBreaker("agent", BreakerConfig(**config), clock=clock)  # type: ignore[arg-type]


def test_opens_after_n_consecutive_failures_and_refuses_traffic(clock: ManualClock) -> None:
    """N consecutive failures open the breaker; it then refuses calls with CircuitOpenError."""
    breaker = make(clock, failure_threshold=3, cooldown=10)
    for _ in range(2):
        breaker.record_failure()
        assert breaker.state is CircuitState.CLOSED
    breaker.record_failure()
    assert breaker.state is CircuitState.OPEN
    assert not breaker.allow()
    assert not breaker.try_acquire()
    with pytest.raises(CircuitOpenError, match="retry in 10.0s"):
        breaker.acquire()
    clock.advance(4)
    assert breaker.retry_after() == pytest.approx(6)


def test_a_success_resets_the_consecutive_count(clock: ManualClock) -> None:
    """Failures separated by a success never add up to the threshold."""
    breaker = make(clock, failure_threshold=3)
    for _ in range(5):
        breaker.record_failure()
        breaker.record_failure()
        breaker.record_success()
        assert breaker.consecutive_failures == 0
    assert breaker.state is CircuitState.CLOSED


def test_half_open_after_cooldown_lets_one_probe_and_success_closes(clock: ManualClock) -> None:
    """After the cooldown one probe goes through; its success closes the breaker and resets."""
    breaker = make(clock, failure_threshold=2, cooldown=30)
    breaker.record_failure()
    breaker.record_failure()
    clock.advance(29.9)
    assert breaker.state is CircuitState.OPEN
    clock.advance(0.1)
    assert breaker.state is CircuitState.HALF_OPEN
    assert breaker.try_acquire()
    assert not breaker.try_acquire()  # only one probe at a time
    breaker.record_success()
    assert breaker.state is CircuitState.CLOSED
    assert breaker.consecutive_failures == 0
    assert breaker.try_acquire()
    assert breaker.try_acquire()
    breaker.record_failure()
    assert breaker.state is CircuitState.CLOSED  # counts started afresh


def test_failed_probe_reopens_for_a_fresh_cooldown(clock: ManualClock) -> None:
    """A failing probe sends the breaker back to open, cooling down from that moment."""
    breaker = make(clock, failure_threshold=1, cooldown=5)
    breaker.record_failure()
    clock.advance(5)
    assert breaker.try_acquire()
    clock.advance(1)
    breaker.record_failure()
    assert breaker.state is CircuitState.OPEN
    assert breaker.retry_after() == pytest.approx(5)
    assert breaker.times_opened == 2


def test_failure_rate_in_window_opens(clock: ManualClock) -> None:
    """With a failure-rate rule, alternating failures open it once min_calls are in."""
    breaker = make(clock, failure_threshold=100, failure_rate=0.5, window=10, min_calls=6)
    for _ in range(2):
        breaker.record_failure()
        breaker.record_success()
    assert breaker.state is CircuitState.CLOSED  # 4 calls < min_calls
    breaker.record_failure()
    assert breaker.state is CircuitState.CLOSED
    breaker.record_success()
    assert breaker.state is CircuitState.CLOSED  # 3/6 = 0.5 but last outcome ok: checked on failure
    breaker.record_failure()
    assert breaker.state is CircuitState.OPEN
    assert breaker.failure_rate == pytest.approx(4 / 7)


def test_failure_rate_forgets_outcomes_that_left_the_window(clock: ManualClock) -> None:
    """Old failures slide out of the window and stop counting."""
    breaker = make(clock, failure_threshold=100, failure_rate=0.5, window=4, min_calls=4)
    breaker.record_failure()
    for _ in range(4):
        breaker.record_success()
    assert breaker.failure_rate == 0.0
    breaker.record_failure()
    assert breaker.failure_rate == pytest.approx(0.25)
    assert breaker.state is CircuitState.CLOSED


def test_released_or_lost_probe_frees_the_slot(clock: ManualClock) -> None:
    """A probe with no verdict gives its slot back; one that never reports is replaced later."""
    breaker = make(clock, failure_threshold=1, cooldown=10)
    breaker.record_failure()
    clock.advance(10)
    assert breaker.try_acquire()
    breaker.release_probe()
    assert breaker.try_acquire()  # slot given back
    assert not breaker.allow()
    clock.advance(10)
    assert breaker.allow()  # the probe was lost: another may go
    assert breaker.try_acquire()
    assert not breaker.try_acquire()


def test_stragglers_while_open_do_not_change_it(clock: ManualClock) -> None:
    """Outcomes of calls started before the breaker opened neither close nor extend it."""
    breaker = make(clock, failure_threshold=1, cooldown=10)
    breaker.record_failure()
    clock.advance(6)
    breaker.record_failure()
    breaker.record_success()
    assert breaker.state is CircuitState.OPEN
    assert breaker.retry_after() == pytest.approx(4)


def test_state_changes_are_reported_in_order(clock: ManualClock) -> None:
    """The callback sees closed→open→half_open→closed."""
    seen: list[tuple[str, str]] = []
    breaker = CircuitBreaker(
        "x",
        BreakerConfig(failure_threshold=1, cooldown=1),
        clock=clock,
        on_state_change=lambda name, old, new: seen.append((old.value, new.value)),
    )
    breaker.record_failure()
    clock.advance(1)
    assert breaker.try_acquire()
    breaker.record_success()
    assert seen == [("closed", "open"), ("open", "half_open"), ("half_open", "closed")]


def test_reset_closes_and_forgets(clock: ManualClock) -> None:
    """An operator reset closes the breaker at once."""
    breaker = make(clock, failure_threshold=1)
    breaker.record_failure()
    breaker.reset()
    assert breaker.state is CircuitState.CLOSED
    assert breaker.consecutive_failures == 0


@pytest.mark.parametrize(
    "options",
    [
        {"failure_threshold": 0},
        {"failure_rate": 0.0},
        {"failure_rate": 1.5},
        {"window": 5, "min_calls": 6},
        {"cooldown": -1},
        {"half_open_max_calls": 0},
    ],
)
def test_invalid_config_is_refused(options: dict[str, float]) -> None:
    """Nonsense breaker settings raise ConfigError naming the field."""
    with pytest.raises(ConfigError):
        BreakerConfig(**options)  # type: ignore[arg-type]
