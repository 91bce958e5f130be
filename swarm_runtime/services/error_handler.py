"""ErrorHandler (seed slide 8): classify failures, decide retry or dead-letter, trip breakers.

* **Classification**: a user mapping from exception types to kinds wins (most specific class
  first), then the built-in one: timeouts, communication errors, resource exhaustion, fatal
  errors that retrying cannot fix (a bad payload, a bad config), and task failures.
* **Decision**: retry after exponential backoff with full jitter capped at ``max_delay``
  (:class:`~swarm_runtime.retry.RetryPolicy`, per kind if configured), or escalate to the
  dead-letter queue when attempts run out or the kind is not retryable.
* **Circuit breakers**, one per agent (or per replica): fed by task outcomes, they make
  :meth:`ErrorHandler.try_acquire` refuse traffic while open; the load balancer consults them.
"""

from __future__ import annotations

import enum
import errno
import random
from collections import Counter, deque
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any, Literal

import anyio

from .._logging import get_logger
from ..clock import Clock, SystemClock
from ..errors import (
    BackendUnavailableError,
    ConfigError,
    DataError,
    NoCapacityError,
    PayloadError,
    QueueFullError,
)
from ..events import TaskEvent
from ..retry import RetryPolicy
from .circuit import BreakerConfig, CircuitBreaker, CircuitState, StateChange

__all__ = ["Action", "ErrorDecision", "ErrorHandler", "ErrorKind", "ErrorRecord"]

_log = get_logger("swarm_runtime.errors")


class ErrorKind(enum.StrEnum):
    """Built-in error classes; user mappings may name their own kinds too."""

    TASK_FAILURE = "task_failure"
    TIMEOUT = "timeout"
    COMMUNICATION = "communication_error"
    RESOURCE_EXHAUSTION = "resource_exhaustion"
    FATAL = "fatal"


Action = Literal["retry", "dead_letter"]

_BUILTIN: dict[type[BaseException], str] = {
    TimeoutError: ErrorKind.TIMEOUT,
    ConnectionError: ErrorKind.COMMUNICATION,
    BackendUnavailableError: ErrorKind.COMMUNICATION,
    anyio.BrokenResourceError: ErrorKind.COMMUNICATION,
    anyio.ClosedResourceError: ErrorKind.COMMUNICATION,
    anyio.EndOfStream: ErrorKind.COMMUNICATION,
    MemoryError: ErrorKind.RESOURCE_EXHAUSTION,
    QueueFullError: ErrorKind.RESOURCE_EXHAUSTION,
    NoCapacityError: ErrorKind.RESOURCE_EXHAUSTION,
    PayloadError: ErrorKind.FATAL,
    ConfigError: ErrorKind.FATAL,
    DataError: ErrorKind.FATAL,
}
_EXHAUSTION_ERRNOS = frozenset({errno.ENOSPC, errno.EMFILE, errno.ENFILE, errno.ENOMEM})


@dataclass(frozen=True, slots=True)
class ErrorDecision:
    """What to do about one failure: ``retry`` after ``delay`` seconds, or ``dead_letter``."""

    agent: str
    kind: str
    action: Action
    delay: float
    attempt: int
    max_attempts: int
    error: str
    circuit: CircuitState

    def to_dict(self) -> dict[str, Any]:
        return {
            "agent": self.agent,
            "kind": self.kind,
            "action": self.action,
            "delay": self.delay,
            "attempt": self.attempt,
            "max_attempts": self.max_attempts,
            "error": self.error,
            "circuit": self.circuit.value,
        }


@dataclass(frozen=True, slots=True)
class ErrorRecord:
    """One failure in the (bounded) error log."""

    timestamp: float
    agent: str
    replica: int | None
    kind: str
    error: str
    attempt: int
    action: Action
    message_id: str | None = None


class ErrorHandler:
    """Classifies failures, decides retries and owns one circuit breaker per agent.

    ``classify``: user mapping from exception types to kinds (checked before the built-in
    one). ``retry``: the default policy; ``policies``: per-kind overrides. ``non_retryable``:
    kinds that go straight to the dead-letter queue. ``breaker``: breaker settings;
    ``per_replica``: one breaker per replica instead of per agent. ``trip_on``: kinds that
    count as breaker failures (default: every kind but ``fatal``, which is the message's
    fault, not the agent's).
    """

    def __init__(
        self,
        *,
        classify: Mapping[type[BaseException], str] | None = None,
        retry: RetryPolicy | None = None,
        policies: Mapping[str, RetryPolicy] | None = None,
        non_retryable: frozenset[str] | set[str] = frozenset({ErrorKind.FATAL}),
        breaker: BreakerConfig | None = None,
        per_replica: bool = False,
        trip_on: frozenset[str] | set[str] | None = None,
        clock: Clock | None = None,
        rng: random.Random | None = None,
        log_size: int = 1000,
        on_circuit_change: StateChange | None = None,
    ) -> None:
        if log_size < 1:
            raise ConfigError(f"error log_size must be >= 1, got {log_size}")
        self._user: dict[type[BaseException], str] = dict(classify or {})
        self.retry = retry or RetryPolicy()
        self._policies = dict(policies or {})
        self._non_retryable = frozenset(non_retryable)
        self._trip_on = None if trip_on is None else frozenset(trip_on)
        self.breaker_config = breaker or BreakerConfig()
        self._per_replica = per_replica
        self._clock: Clock = clock or SystemClock()
        self._rng = rng
        self._breakers: dict[str, CircuitBreaker] = {}
        #: every breaker by key (``agent`` or ``agent#replica``), a live read-only view
        self.breakers: Mapping[str, CircuitBreaker] = MappingProxyType(self._breakers)
        self._log: deque[ErrorRecord] = deque(maxlen=log_size)
        self._counts: Counter[tuple[str, str]] = Counter()
        self._on_circuit_change = on_circuit_change

    # -- classification and decisions ----------------------------------------------------

    def classify(self, error: BaseException | str) -> str:
        """The kind of an error: a string is taken as the kind itself (the seed's style)."""
        if isinstance(error, str):
            return error
        if isinstance(error, BaseExceptionGroup) and error.exceptions:
            return self.classify(error.exceptions[0])
        mro = type(error).__mro__
        if self._user:
            for cls in mro:
                kind = self._user.get(cls)
                if kind is not None:
                    return kind
        for cls in mro:
            kind = _BUILTIN.get(cls)
            if kind is not None:
                return kind
        if isinstance(error, OSError) and error.errno in _EXHAUSTION_ERRNOS:
            return ErrorKind.RESOURCE_EXHAUSTION
        return ErrorKind.TASK_FAILURE

    def policy_for(self, kind: str) -> RetryPolicy:
        return self._policies.get(kind, self.retry)

    def decide(
        self,
        agent: str,
        error: BaseException | str,
        *,
        attempt: int = 1,
        max_attempts: int | None = None,
        replica: int | None = None,
        policy: RetryPolicy | None = None,
    ) -> ErrorDecision:
        """Decide what to do after failed attempt number ``attempt``; no side effects.

        ``max_attempts`` overrides the policy's (e.g. the message's own limit); ``policy``
        (e.g. the agent's own retry policy) replaces the default one, not a per-kind one.
        """
        kind = self.classify(error)
        policy = self._policies.get(kind) or policy or self.retry
        limit = max_attempts if max_attempts is not None else policy.max_attempts
        retry = kind not in self._non_retryable and attempt < limit
        return ErrorDecision(
            agent=agent,
            kind=kind,
            action="retry" if retry else "dead_letter",
            delay=policy.delay(attempt, self._rng) if retry else 0.0,
            attempt=attempt,
            max_attempts=limit,
            error=_describe(error),
            circuit=self.state(agent, replica),
        )

    def handle_error(
        self,
        agent: str,
        error: BaseException | str,
        context: Mapping[str, Any] | None = None,
        *,
        attempt: int | None = None,
        max_attempts: int | None = None,
        replica: int | None = None,
        message_id: str | None = None,
    ) -> ErrorDecision:
        """Handle one failure: decide, log it and count it against the agent's breaker.

        For callers that do not feed task events (with :meth:`on_task_finished` registered,
        use :meth:`decide` instead, or the failure is counted twice). ``context`` may carry
        the seed's ``retry_count`` (retries already made) when ``attempt`` is not given.
        """
        if attempt is None:
            retries = int((context or {}).get("retry_count", 0))
            attempt = retries + 1
        decision = self.decide(
            agent, error, attempt=attempt, max_attempts=max_attempts, replica=replica
        )
        self.log_failure(decision, replica=replica, message_id=message_id)
        self.record_failure(agent, decision.kind, replica)
        return decision

    def log_failure(
        self, decision: ErrorDecision, *, replica: int | None = None, message_id: str | None = None
    ) -> None:
        """Keep a decided failure in the error log and the per-(agent, kind) counts."""
        self._record(
            decision.agent,
            replica,
            decision.kind,
            decision.error,
            decision.attempt,
            decision.action,
            message_id,
        )

    def _trips(self, kind: str) -> bool:
        if self._trip_on is None:
            return kind != ErrorKind.FATAL
        return kind in self._trip_on

    def _record(
        self,
        agent: str,
        replica: int | None,
        kind: str,
        error: str,
        attempt: int,
        action: Action,
        message_id: str | None,
    ) -> None:
        self._log.append(
            ErrorRecord(
                self._clock.time(), agent, replica, kind, error, attempt, action, message_id
            )
        )
        self._counts[(agent, kind)] += 1

    @property
    def error_log(self) -> list[ErrorRecord]:
        """Recent failures, oldest first (bounded by ``log_size``)."""
        return list(self._log)

    def error_counts(self) -> dict[tuple[str, str], int]:
        """Failures counted per (agent, kind) since start."""
        return dict(self._counts)

    # -- circuit breakers ----------------------------------------------------------------

    def _key(self, agent: str, replica: int | None) -> str:
        return f"{agent}#{replica}" if self._per_replica and replica is not None else agent

    def breaker(self, agent: str, replica: int | None = None) -> CircuitBreaker:
        """The breaker for an agent (or one of its replicas), created on first use."""
        key = self._key(agent, replica)
        found = self._breakers.get(key)
        if found is None:
            found = self._breakers[key] = CircuitBreaker(
                key, self.breaker_config, clock=self._clock, on_state_change=self._changed
            )
        return found

    def _changed(self, name: str, old: CircuitState, new: CircuitState) -> None:
        if new is CircuitState.OPEN:
            # An error, so that `run` (which shows errors only) says why its tasks stop:
            # an open circuit holds every message of the agent for the cooldown.
            _log.error(
                "circuit open: the agent's messages wait for the cooldown, then one probe at "
                "a time goes through (services.breaker sets the thresholds and cooldown; "
                "services.errors.classify can mark an error fatal so it does not count)",
                circuit=name,
                old=old.value,
                cooldown=self.breaker_config.cooldown,
            )
        else:
            _log.info("circuit state changed", circuit=name, old=old.value, new=new.value)
        if self._on_circuit_change is not None:
            try:
                self._on_circuit_change(name, old, new)
            except Exception as exc:  # a user's hook must not break message handling
                _log.error("circuit change callback failed", error=repr(exc))

    def state(self, agent: str, replica: int | None = None) -> CircuitState:
        found = self._breakers.get(self._key(agent, replica))
        return CircuitState.CLOSED if found is None else found.state

    def circuit_states(self) -> dict[str, CircuitState]:
        """The state of every breaker, keyed by agent (``agent#replica`` when per replica)."""
        return {name: b.state for name, b in self._breakers.items()}

    def allows(self, agent: str, replica: int | None = None) -> bool:
        """Whether traffic to the agent (replica) would be let through now."""
        found = self._breakers.get(self._key(agent, replica))
        return True if found is None else found.allow()

    def try_acquire(self, agent: str, replica: int | None = None) -> bool:
        """Admit one task (taking the half-open probe slot when probing); False if refused."""
        found = self._breakers.get(self._key(agent, replica))
        return True if found is None else found.try_acquire()

    def acquire(self, agent: str, replica: int | None = None) -> None:
        """Admit one task or raise :class:`~swarm_runtime.errors.CircuitOpenError`."""
        found = self._breakers.get(self._key(agent, replica))
        if found is not None:
            found.acquire()

    def retry_after(self, agent: str, replica: int | None = None) -> float:
        """Seconds until the agent's breaker lets a probe through."""
        found = self._breakers.get(self._key(agent, replica))
        return 0.0 if found is None else found.retry_after()

    @property
    def has_breakers(self) -> bool:
        """Whether any breaker exists yet (one is made at an agent's first failure)."""
        return bool(self._breakers)

    def record_success(self, agent: str, replica: int | None = None) -> None:
        """A task of the agent succeeded: its breaker (if any) resets or closes."""
        if self._breakers:
            found = self._breakers.get(self._key(agent, replica))
            if found is not None:
                found.record_success()

    def record_failure(
        self, agent: str, error: BaseException | str, replica: int | None = None
    ) -> str:
        """A task of the agent failed: count it against the breaker if its kind trips
        breakers (see ``trip_on``); returns the kind."""
        kind = self.classify(error)
        if self._trips(kind):
            self.breaker(agent, replica).record_failure()
        return kind

    def release_probe(self, agent: str, replica: int | None = None) -> None:
        """A task ended without a verdict (cancelled, refused): free its probe slot."""
        if self._breakers:
            found = self._breakers.get(self._key(agent, replica))
            if found is not None:
                found.release_probe()

    # -- runtime listener ----------------------------------------------------------------

    def on_task_started(self, event: TaskEvent) -> None:
        """Nothing to do when a task starts."""

    def on_task_finished(self, event: TaskEvent) -> None:
        """Feed the breaker (success / failure) and log failures, in O(1)."""
        outcome = event.outcome
        if outcome == "ok":
            self.record_success(event.agent, event.replica)
        elif outcome in ("error", "timeout"):
            error: BaseException | str = event.error if event.error is not None else outcome
            kind = ErrorKind.TIMEOUT if outcome == "timeout" else self.classify(error)
            action: Action = "dead_letter" if event.dead_lettered else "retry"
            self._record(
                event.agent,
                event.replica,
                kind,
                _describe(error),
                event.attempts,
                action,
                event.message_id,
            )
            self.record_failure(event.agent, kind, event.replica)
        else:  # cancelled / rejected: no verdict, free a probe slot
            self.release_probe(event.agent, event.replica)


def _describe(error: BaseException | str) -> str:
    if isinstance(error, str):
        return error
    text = str(error)
    return f"{type(error).__name__}: {text}" if text else type(error).__name__
