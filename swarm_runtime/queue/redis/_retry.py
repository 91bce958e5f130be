"""How every Redis caller in swarm-runtime rides out a lost connection: exponential
backoff capped at 2 s, a warning per retry, and an error of the caller's own kind once
the retries are spent."""

from __future__ import annotations

import anyio
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from ..._logging import get_logger
from ...errors import SwarmError

__all__ = ["TRANSIENT", "backoff"]

log = get_logger("swarm_runtime.redis")

#: errors that mean "the connection is gone for now", worth retrying
TRANSIENT = (RedisConnectionError, RedisTimeoutError, ConnectionError, OSError)


async def backoff(
    failures: int,
    exc: BaseException,
    *,
    url: str,
    what: str,
    retries: int,
    base_delay: float,
    error: type[SwarmError],
) -> int:
    """Wait before retry number ``failures + 1``, or raise ``error`` (cause chained) when
    ``retries`` are spent; returns the new failure count."""
    if failures >= retries:
        raise error(
            f"lost the connection to Redis at {url} and could not get it back after "
            f"{failures + 1} attempts ({what}): {exc}"
        ) from exc
    delay = min(2.0, base_delay * 2**failures)
    log.warning(
        "redis connection lost; retrying",
        url=url,
        operation=what,
        attempt=failures + 1,
        retries=retries,
        retry_in=round(delay, 3),
        error=str(exc) or type(exc).__name__,
    )
    await anyio.sleep(delay)
    return failures + 1
