"""ErrorHandler: classification, retry decisions with jittered backoff, dead-lettering, breakers."""

from __future__ import annotations

import errno
import random

import pytest
import structlog

from swarm_runtime.clock import ManualClock
from swarm_runtime.errors import (
    CircuitOpenError,
    PayloadError,
    QueueFullError,
    RequestTimeoutError,
)
from swarm_runtime.retry import RetryPolicy
from swarm_runtime.services import BreakerConfig, CircuitState, ErrorHandler, ErrorKind

from ._events import event, run_task


class InvalidInput(ValueError):
    pass


class VeryInvalidInput(InvalidInput):
    pass


@pytest.mark.parametrize(
    ("error", "kind"),
    [
        (TimeoutError(), ErrorKind.TIMEOUT),
        (RequestTimeoutError("late"), ErrorKind.TIMEOUT),
        (ConnectionResetError(), ErrorKind.COMMUNICATION),
        (QueueFullError("disk"), ErrorKind.RESOURCE_EXHAUSTION),
        (MemoryError(), ErrorKind.RESOURCE_EXHAUSTION),
        (OSError(errno.EMFILE, "too many open files"), ErrorKind.RESOURCE_EXHAUSTION),
        (OSError(errno.ENOENT, "missing"), ErrorKind.TASK_FAILURE),
        (PayloadError("bad"), ErrorKind.FATAL),
        (ValueError("boom"), ErrorKind.TASK_FAILURE),
        (ExceptionGroup("g", [TimeoutError()]), ErrorKind.TIMEOUT),
    ],
)
def test_builtin_classification(error: BaseException, kind: str) -> None:
    """Each error lands in its built-in class."""
    assert ErrorHandler().classify(error) == kind


def test_user_mapping_wins_and_most_specific_class_first() -> None:
    """A user mapping overrides the built-in one, and a subclass entry beats its base's."""
    handler = ErrorHandler(
        classify={InvalidInput: "bad_input", VeryInvalidInput: "fatal", TimeoutError: "slow"}
    )
    assert handler.classify(InvalidInput()) == "bad_input"
    assert handler.classify(VeryInvalidInput()) == "fatal"
    assert handler.classify(RequestTimeoutError()) == "slow"
    assert handler.classify(KeyError()) == ErrorKind.TASK_FAILURE


def test_retry_delay_is_full_jitter_exponential_capped() -> None:
    """Retries wait a random time in [0, min(max_delay, base * 2^(attempt-1))]."""
    policy = RetryPolicy(max_attempts=20, base_delay=0.5, max_delay=4.0)
    handler = ErrorHandler(retry=policy, rng=random.Random(7))
    for attempt in range(1, 10):
        ceiling = min(4.0, 0.5 * 2 ** (attempt - 1))
        delays = [handler.decide("a", ValueError(), attempt=attempt).delay for _ in range(50)]
        assert all(0.0 <= d <= ceiling for d in delays)
        assert max(delays) > ceiling * 0.8  # jitter spreads over the whole range
        assert len(set(delays)) > 40


def test_last_attempt_and_fatal_errors_are_dead_lettered() -> None:
    """Out of attempts, or not retryable, the decision is to dead-letter with no delay."""
    handler = ErrorHandler(retry=RetryPolicy(max_attempts=3))
    assert handler.decide("a", ValueError(), attempt=2).action == "retry"
    last = handler.decide("a", ValueError("x"), attempt=3)
    assert (last.action, last.delay, last.error) == ("dead_letter", 0.0, "ValueError: x")
    assert handler.decide("a", PayloadError("p"), attempt=1).action == "dead_letter"
    assert handler.decide("a", ValueError(), attempt=3, max_attempts=5).action == "retry"


def test_policy_per_kind() -> None:
    """A kind with its own policy uses its delays and attempt limit."""
    slow = RetryPolicy(max_attempts=10, base_delay=5.0, max_delay=5.0, jitter=False)
    handler = ErrorHandler(policies={ErrorKind.RESOURCE_EXHAUSTION: slow})
    decision = handler.decide("a", MemoryError(), attempt=4)
    assert (decision.action, decision.delay, decision.max_attempts) == ("retry", 5.0, 10)


def test_seed_style_handle_error_decides_and_logs() -> None:
    """The seed's call (agent, type string, data with retry_count) returns a retry decision."""
    handler = ErrorHandler()
    result = handler.handle_error("agent_1", "task_failure", {"task_id": "t", "retry_count": 1})
    assert (result.kind, result.action, result.attempt) == ("task_failure", "retry", 2)
    assert result.delay >= 0
    assert [(r.agent, r.kind) for r in handler.error_log] == [("agent_1", "task_failure")]


def test_handle_error_trips_the_breaker_which_then_refuses(clock: ManualClock) -> None:
    """Five failures through handle_error open the agent's circuit; acquire then raises."""
    handler = ErrorHandler(breaker=BreakerConfig(failure_threshold=5, cooldown=60), clock=clock)
    for attempt in range(1, 6):
        handler.handle_error("agent_1", ValueError("x"), attempt=attempt)
    assert handler.state("agent_1") is CircuitState.OPEN
    assert not handler.allows("agent_1")
    with pytest.raises(CircuitOpenError, match="agent_1"):
        handler.acquire("agent_1")
    assert handler.decide("agent_1", ValueError()).circuit is CircuitState.OPEN
    assert handler.retry_after("agent_1") == pytest.approx(60)


def test_always_failing_agent_opens_then_recovering_agent_closes(clock: ManualClock) -> None:
    """Fed task events: failures open the circuit; after cooldown a good probe closes it."""
    handler = ErrorHandler(breaker=BreakerConfig(failure_threshold=3, cooldown=10), clock=clock)
    for _ in range(3):
        run_task([handler], "flaky", "error", error=RuntimeError("down"))
    assert handler.state("flaky") is CircuitState.OPEN
    assert handler.error_counts() == {("flaky", "task_failure"): 3}
    clock.advance(10)
    assert handler.try_acquire("flaky")
    run_task([handler], "flaky", "ok")
    assert handler.state("flaky") is CircuitState.CLOSED
    assert handler.allows("flaky")


def test_timeouts_count_and_fatal_errors_do_not_trip(clock: ManualClock) -> None:
    """Timeouts trip the breaker; a bad payload is the message's fault and does not."""
    handler = ErrorHandler(breaker=BreakerConfig(failure_threshold=2), clock=clock)
    for _ in range(5):
        run_task([handler], "a", "error", error=PayloadError("bad"), dead=True)
    assert handler.state("a") is CircuitState.CLOSED
    assert [r.action for r in handler.error_log] == ["dead_letter"] * 5
    run_task([handler], "a", "timeout", error=TimeoutError())
    run_task([handler], "a", "timeout", error=TimeoutError())
    assert handler.state("a") is CircuitState.OPEN
    assert handler.error_log[-1].kind == ErrorKind.TIMEOUT


def test_crashed_probe_gives_its_slot_back(clock: ManualClock) -> None:
    """A probe cancelled by a crash frees the half-open slot for the next probe."""
    handler = ErrorHandler(breaker=BreakerConfig(failure_threshold=1, cooldown=5), clock=clock)
    run_task([handler], "a", "error", error=RuntimeError())
    clock.advance(5)
    assert handler.try_acquire("a")
    assert not handler.try_acquire("a")
    handler.on_task_finished(event("a", "cancelled"))
    assert handler.try_acquire("a")


def test_per_replica_breakers_are_independent(clock: ManualClock) -> None:
    """With per_replica, one replica's failures do not close the circuit of another."""
    handler = ErrorHandler(
        breaker=BreakerConfig(failure_threshold=2), per_replica=True, clock=clock
    )
    for _ in range(2):
        run_task([handler], "a", "error", replica=1, error=RuntimeError())
    assert not handler.allows("a", 1)
    assert handler.allows("a", 0)
    assert handler.circuit_states() == {"a#1": CircuitState.OPEN}


def test_error_log_is_bounded() -> None:
    """The error log keeps only the most recent entries."""
    handler = ErrorHandler(log_size=3)
    for attempt in range(1, 11):
        handler.handle_error("a", ValueError(str(attempt)), attempt=attempt)
    assert [r.error for r in handler.error_log] == [
        "ValueError: 8",
        "ValueError: 9",
        "ValueError: 10",
    ]


def test_a_broken_circuit_callback_does_not_break_handling(clock: ManualClock) -> None:
    """An exception in the user's circuit hook is logged, not raised."""

    def hook(name: str, old: CircuitState, new: CircuitState) -> None:
        raise RuntimeError("hook")

    handler = ErrorHandler(
        breaker=BreakerConfig(failure_threshold=1), clock=clock, on_circuit_change=hook
    )
    handler.handle_error("a", ValueError())
    assert handler.state("a") is CircuitState.OPEN


def test_an_opening_circuit_is_logged_as_an_error_saying_why_tasks_wait(
    clock: ManualClock,
) -> None:
    """`run` shows errors only: an open circuit must be one of them, or a pipeline whose
    agent keeps failing seems to hang for no reason while its messages wait."""
    handler = ErrorHandler(breaker=BreakerConfig(failure_threshold=2, cooldown=45), clock=clock)
    with structlog.testing.capture_logs() as logs:
        for attempt in (1, 2):
            handler.handle_error("agent_1", ValueError("x"), attempt=attempt)
    opened = [e for e in logs if e["event"].startswith("circuit open")]
    assert len(opened) == 1
    assert opened[0]["log_level"] == "error"
    assert opened[0]["circuit"] == "agent_1"
    assert opened[0]["cooldown"] == 45
    assert "services.breaker" in opened[0]["event"]
