"""Retries and the circuit breaker: the ErrorHandler's policy as two layers of the stack."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ..errors import ConfigError, Defer, Retry, Veto
from ..retry import RetryPolicy
from .base import CallNext, Handler, Middleware

if TYPE_CHECKING:
    from ..agents.base import Agent
    from ..message import Message
    from ..runtime.context import Context
    from ..services.error_handler import ErrorHandler

__all__ = ["Breaker", "Retries", "message_delay"]

_MIN_WAIT = 0.01


def message_delay(msg: Message, fallback: float) -> float:
    """The backoff a message asks for itself (``headers["retry"]``: a workflow task's own
    ``base_delay`` / ``max_delay`` / ``jitter``), else ``fallback``."""
    spec = msg.headers.get("retry") if msg.headers else None
    if not isinstance(spec, dict):
        return fallback
    try:
        policy = RetryPolicy(
            max_attempts=max(1, msg.attempts),
            base_delay=float(spec.get("base_delay", 0.5)),
            max_delay=float(spec.get("max_delay", 30.0)),
            jitter=bool(spec.get("jitter", True)),
        )
    except (TypeError, ValueError, ConfigError):
        return fallback
    return policy.delay(msg.attempts)


class Retries(Middleware):
    """Turns a failure into a :class:`~swarm_runtime.errors.Retry` decided by the ErrorHandler.

    The error is classified (the handler's ``classify`` mapping first, then the built-in
    kinds); a retryable kind is retried after the kind's backoff (exponential with jitter:
    the kind's policy, else the agent's ``retry``, else the handler's default; or the
    workflow task's own ``retry`` settings), a non-retryable one (``fatal`` by
    default) or the last attempt is dead-lettered. Every failure lands in the error log.
    ``Retry``, ``Veto`` and ``Defer`` raised further in pass through untouched.
    """

    def __init__(self, errors: ErrorHandler) -> None:
        self.errors = errors

    def wrap(self, call_next: CallNext, agent: Agent) -> Handler:
        errors = self.errors
        name = agent.name
        own = agent.retry  # the agent's own policy wins over the handler's default one

        async def layer(msg: Message, ctx: Context) -> Any:
            try:
                return await call_next(msg, ctx)
            except (Retry, Veto, Defer):
                raise
            except Exception as exc:
                limit = msg.max_attempts or ctx.runtime.queue.options.max_attempts
                decision = errors.decide(
                    name,
                    exc,
                    attempt=msg.attempts,
                    max_attempts=limit,
                    replica=ctx.replica,
                    policy=own,
                )
                errors.log_failure(decision, replica=ctx.replica, message_id=msg.id)
                if decision.action == "dead_letter":
                    raise Retry(dead_letter=True, reason=decision.error) from exc
                raise Retry(message_delay(msg, decision.delay), reason=decision.error) from exc

        return layer


class Breaker(Middleware):
    """The agent's circuit breaker as a layer: an open circuit defers its messages.

    Refused while open, a message goes back to the queue untouched and the replica waits
    until the cooldown ends (:class:`~swarm_runtime.errors.Defer`); then one probe goes
    through and its verdict closes or reopens the circuit. Failures of a kind that trips
    breakers count against it, successes reset it; refusals and cancellations are no
    verdict and give the probe slot back. A message the load balancer placed was admitted
    by the balancer already (``ctx.assignment``).
    """

    def __init__(self, errors: ErrorHandler) -> None:
        self.errors = errors

    def wrap(self, call_next: CallNext, agent: Agent) -> Handler:
        errors = self.errors
        breakers = errors.breakers  # live view: empty until some agent first fails
        name = agent.name

        async def layer(msg: Message, ctx: Context) -> Any:
            replica = ctx.replica
            if breakers and ctx.assignment is None and not errors.try_acquire(name, replica):
                wait = max(_MIN_WAIT, errors.retry_after(name, replica))
                raise Defer(wait, f"circuit of agent {name!r} is open")
            try:
                result = await call_next(msg, ctx)
            except (Veto, Defer):
                errors.release_probe(name, replica)
                raise
            except Retry as exc:
                cause = exc.__cause__
                errors.record_failure(name, cause if isinstance(cause, Exception) else exc, replica)
                raise
            except Exception as exc:
                errors.record_failure(name, exc, replica)
                raise
            except BaseException:
                errors.release_probe(name, replica)
                raise
            if breakers:
                errors.record_success(name, replica)
            return result

        return layer
