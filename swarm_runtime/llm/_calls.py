"""Model calls with the provider policy around them: rate limits, a circuit breaker per
endpoint, retries honouring ``retry-after``, and metrics.

One :class:`ModelCaller` per Swarm wraps its :class:`ChatModel`. Each attempt first waits
for the endpoint+model rate limit (if any), then passes the endpoint's circuit breaker (open:
:class:`~swarm_runtime.errors.CircuitOpenError`). A failed call that may succeed later (429,
408, 409, 5xx, connection errors) is tried again after the server's ``retry-after`` when it
sent one, else after the retry policy's backoff; a streamed call is retried only until its
first chunk arrives. 5xx answers and connection errors count as breaker failures; any
answer of the server (429 and other 4xx too) shows the endpoint is up.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import anyio

from .._logging import get_logger
from ..errors import ModelCallError
from ..retry import RetryPolicy
from ..services.circuit import BreakerConfig, CircuitBreaker
from .limits import RateLimiter, estimate_prompt_tokens
from .metrics import LLMMetrics
from .model import ChatModel, Completion

__all__ = ["DEFAULT_BREAKER", "DEFAULT_RETRY", "ModelCaller"]

log = get_logger("swarm_runtime.llm")

DEFAULT_RETRY = RetryPolicy(max_attempts=4, base_delay=0.5, max_delay=30.0)
"""Four attempts, backoff from 0.5 s to 30 s (a server's ``retry-after`` wins)."""

DEFAULT_BREAKER = BreakerConfig(failure_threshold=5, cooldown=30.0)
"""Open after five failures in a row; probe again after 30 s."""

Sleep = Callable[[float], Awaitable[Any]]


@dataclass(slots=True)
class _Attempt:
    usage: dict[str, Any] | None = None


class ModelCaller:
    """Calls one :class:`ChatModel` under the Swarm's provider policy."""

    def __init__(
        self,
        model: ChatModel,
        *,
        retry: RetryPolicy = DEFAULT_RETRY,
        breaker: CircuitBreaker | None = None,
        limiter: RateLimiter | None = None,
        metrics: LLMMetrics | None = None,
        max_retry_after: float = 300.0,
        sleep: Sleep = anyio.sleep,
    ) -> None:
        self.model = model
        self.retry = retry
        self.breaker = breaker
        self.limiter = limiter
        self.metrics = metrics
        self.max_retry_after = max_retry_after
        self._sleep = sleep

    @asynccontextmanager
    async def _attempt(self, params: dict[str, Any]) -> AsyncIterator[_Attempt]:
        """One attempt: rate limit, breaker, then the outcome counted."""
        endpoint, model = self.model.endpoint, str(params.get("model"))
        if self.limiter is not None:
            await self.limiter.acquire(endpoint, model, estimate_prompt_tokens(params))
        breaker = self.breaker
        if breaker is not None:
            breaker.acquire()
        attempt = _Attempt()
        started = time.perf_counter()
        try:
            yield attempt
        except ModelCallError as exc:
            if breaker is not None:
                if exc.status is None or exc.status >= 500:
                    breaker.record_failure()
                else:
                    breaker.record_success()  # the endpoint answered
            self._count(endpoint, model, str(exc.status or "error"), started, None)
            raise
        except BaseException:
            if breaker is not None:
                breaker.release_probe()
            raise
        if breaker is not None:
            breaker.record_success()
        self._count(endpoint, model, "200", started, attempt.usage)
        if self.limiter is not None and attempt.usage:
            completion = int(attempt.usage.get("completion_tokens") or 0)
            await self.limiter.used(endpoint, model, completion)

    def _count(
        self,
        endpoint: str,
        model: str,
        status: str,
        started: float,
        usage: dict[str, Any] | None,
    ) -> None:
        if self.metrics is not None:
            self.metrics.call(endpoint, model, status, time.perf_counter() - started, usage)

    async def _backoff(self, exc: ModelCallError, attempt: int, params: dict[str, Any]) -> None:
        """Wait before the next attempt, or re-raise ``exc`` if there is none."""
        if not exc.retryable or attempt >= self.retry.max_attempts:
            raise exc
        if exc.retry_after is not None:
            if exc.retry_after > self.max_retry_after:
                raise exc  # the server asks for longer than we are willing to wait
            delay = exc.retry_after
        else:
            delay = self.retry.delay(attempt)
        log.info(
            "model call failed; retrying",
            model=params.get("model"),
            status=exc.status,
            attempt=attempt,
            delay=round(delay, 3),
        )
        await self._sleep(delay)

    async def complete(self, params: dict[str, Any]) -> Completion:
        attempt = 0
        while True:
            attempt += 1
            try:
                async with self._attempt(params) as current:
                    message, usage = await self.model.complete(params)
                    current.usage = usage
                return message, usage
            except ModelCallError as exc:
                await self._backoff(exc, attempt, params)

    async def stream(self, params: dict[str, Any]) -> AsyncIterator[dict[str, Any]]:
        attempt = 0
        while True:
            attempt += 1
            started = False
            try:
                async with self._attempt(params) as current:
                    async for chunk in self.model.stream(params):
                        started = True
                        current.usage = chunk.get("usage") or current.usage
                        yield chunk
                return
            except ModelCallError as exc:
                if started:
                    raise
                await self._backoff(exc, attempt, params)
