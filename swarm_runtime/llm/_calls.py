"""Model calls with the provider policy around them: retries honouring ``retry-after``.

One :class:`ModelCaller` per Swarm wraps its :class:`ChatModel`. A failed call that may
succeed later (429, 408, 409, 5xx, connection errors) is tried again after the server's
``retry-after`` when it sent one, else after the retry policy's backoff; a streamed call is
retried only until its first chunk arrives.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import anyio
import structlog

from ..errors import ModelCallError
from ..retry import RetryPolicy
from .model import ChatModel, Completion

__all__ = ["DEFAULT_RETRY", "ModelCaller"]

log = structlog.get_logger("swarm_runtime.llm")

DEFAULT_RETRY = RetryPolicy(max_attempts=4, base_delay=0.5, max_delay=30.0)
"""Four attempts, backoff from 0.5 s to 30 s (a server's ``retry-after`` wins)."""

Sleep = Callable[[float], Awaitable[Any]]


class ModelCaller:
    """Calls one :class:`ChatModel` under the Swarm's retry policy."""

    def __init__(
        self,
        model: ChatModel,
        *,
        retry: RetryPolicy = DEFAULT_RETRY,
        max_retry_after: float = 300.0,
        sleep: Sleep = anyio.sleep,
    ) -> None:
        self.model = model
        self.retry = retry
        self.max_retry_after = max_retry_after
        self._sleep = sleep

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
                return await self.model.complete(params)
            except ModelCallError as exc:
                await self._backoff(exc, attempt, params)

    async def stream(self, params: dict[str, Any]) -> AsyncIterator[dict[str, Any]]:
        attempt = 0
        while True:
            attempt += 1
            started = False
            try:
                async for chunk in self.model.stream(params):
                    started = True
                    yield chunk
                return
            except ModelCallError as exc:
                if started:
                    raise
                await self._backoff(exc, attempt, params)
