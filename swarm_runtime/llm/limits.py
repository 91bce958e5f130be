"""Rate limits per endpoint and model, requests and tokens per window, on ``limits``.

``RateLimit(requests=500, tokens=200_000)`` allows that many per ``per`` seconds (60: per
minute) for each (endpoint, model). ``storage="memory://"`` counts in this process;
``storage="redis://HOST:PORT/DB"`` counts in Redis, shared by every process and machine.
The counting is the ``limits`` library's (async Redis storage): a moving window for
requests (exact: never more than ``requests`` in any ``per`` seconds) and a sliding-window
counter for tokens (O(1) per hit however many tokens it weighs; approximate at window
edges). A call first takes one request and its estimated
prompt tokens, waiting until the window has room; the completion tokens are counted once
the answer is in (a call is never refused for them, the next one waits).
"""

from __future__ import annotations

import math
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import anyio
import orjson

from ..errors import ConfigError, MissingExtraError

__all__ = ["RateLimit", "RateLimiter", "estimate_prompt_tokens"]

Sleep = Callable[[float], Awaitable[Any]]


@dataclass(frozen=True, slots=True)
class RateLimit:
    """Requests and tokens allowed per ``per`` seconds, for each endpoint and model."""

    requests: int | None = None
    tokens: int | None = None
    per: float = 60.0
    storage: str = "memory://"
    key_prefix: str = "swarm:llm:limits"

    def __post_init__(self) -> None:
        for name in ("requests", "tokens"):
            value = getattr(self, name)
            if value is not None and value < 1:
                raise ConfigError(f"RateLimit.{name} must be >= 1 (or None), got {value}")
        if not (math.isfinite(self.per) and self.per >= 1):
            raise ConfigError(f"RateLimit.per must be >= 1 second, got {self.per}")


def estimate_prompt_tokens(params: dict[str, Any]) -> int:
    """About one token per four bytes of the messages and tools (no tokenizer needed)."""
    size = len(orjson.dumps(params.get("messages", []))) + len(
        orjson.dumps(params.get("tools", []))
    )
    return max(1, size // 4)


class RateLimiter:
    """Waits until a call fits its (endpoint, model) limits; counts what it used."""

    def __init__(self, limit: RateLimit, *, sleep: Sleep = anyio.sleep) -> None:
        try:
            from limits import RateLimitItemPerSecond
            from limits.aio.strategies import (
                MovingWindowRateLimiter,
                SlidingWindowCounterRateLimiter,
            )
            from limits.storage import storage_from_string
        except ImportError as exc:  # pragma: no cover - a declared dependency
            raise MissingExtraError("limits", "llm", "LLM rate limits") from exc
        self.limit = limit
        self._sleep = sleep
        seconds = max(1, round(limit.per))
        try:
            storage = storage_from_string(
                f"async+{limit.storage}", implementation="redispy", key_prefix=limit.key_prefix
            )
        except Exception as exc:
            raise ConfigError(
                f"rate-limit storage {limit.storage!r} is not supported; use 'memory://' or "
                f"'redis://HOST:PORT/DB' ({exc})"
            ) from exc
        self._exact = MovingWindowRateLimiter(storage)
        self._weighted = SlidingWindowCounterRateLimiter(storage)
        self._requests = RateLimitItemPerSecond(limit.requests, seconds) if limit.requests else None
        self._tokens = RateLimitItemPerSecond(limit.tokens, seconds) if limit.tokens else None

    async def _take(self, strategy: Any, item: Any, cost: int, keys: tuple[str, str]) -> None:
        cost = min(cost, item.amount)  # a call larger than the window waits for a whole one
        while not await strategy.hit(item, *keys, cost=cost):
            stats = await strategy.get_window_stats(item, *keys)
            await self._sleep(max(0.01, min(stats.reset_time - time.time(), self.limit.per)))

    async def acquire(self, endpoint: str, model: str, tokens: int) -> None:
        """Take one request and ``tokens`` prompt tokens, waiting while over the limit."""
        keys = (endpoint, model)
        if self._requests is not None:
            await self._take(self._exact, self._requests, 1, keys)
        if self._tokens is not None:
            await self._take(self._weighted, self._tokens, tokens, keys)

    async def used(self, endpoint: str, model: str, tokens: int) -> None:
        """Count ``tokens`` more (the completion) without waiting (at most what the window
        has left: a full window makes the next call wait)."""
        if self._tokens is None or tokens <= 0:
            return
        stats = await self._weighted.get_window_stats(self._tokens, endpoint, model)
        cost = min(tokens, int(stats.remaining))
        if cost > 0:
            await self._weighted.hit(self._tokens, endpoint, model, cost=cost)
