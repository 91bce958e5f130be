"""Shared fixtures: queues of every backend, a manual clock, Redis availability."""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import structlog

import swarm_runtime as sr
from swarm_runtime.clock import ManualClock

IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")
REDIS_URL = os.environ.get("SWARM_TEST_REDIS", "redis://127.0.0.1:6379/0")
PACKAGE = Path(sr.__file__).parent


def redis_available() -> str | None:
    """None if a Redis server answers at REDIS_URL, else the reason it cannot be used."""
    try:
        import redis
    except ImportError:
        return "the redis package is not installed (pip install 'swarm-runtime[redis]')"
    try:
        client = redis.Redis.from_url(REDIS_URL, socket_connect_timeout=0.5)
        client.ping()
        client.close()
    except Exception as exc:  # any connection problem means "no server"
        return f"no Redis server answers at {REDIS_URL}: {exc}"
    return None


def require_redis() -> None:
    """Skip (locally) or fail (in CI) when Redis is unavailable."""
    reason = redis_available()
    if reason is None:
        return
    if IN_CI:
        pytest.fail(f"CI=true but Redis is unavailable: {reason}")
    pytest.skip(reason)


def _backends() -> list[str]:
    names = ["memory"]
    if (PACKAGE / "queue" / "file").exists() or (PACKAGE / "queue" / "file.py").exists():
        names.append("file")
    if (PACKAGE / "queue" / "redis").exists() or (PACKAGE / "queue" / "redis.py").exists():
        names.append("redis")
    return names


QueueFactory = Callable[..., Awaitable[sr.MessageQueue]]


@pytest.fixture(autouse=True)
def _structlog_restored() -> Iterator[None]:
    """Put back the structlog configuration a test found: a CLI command run in-process (or
    ``sr.configure_logging``) configures it, and later tests must see the package's
    default, stdlib logging."""
    configured = structlog.is_configured()
    config = structlog.get_config()
    yield
    if configured:
        structlog.configure(**config)
    else:
        structlog.reset_defaults()


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture(params=_backends())
async def make_queue(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[QueueFactory]:
    """Open queues of one backend (the test runs once per backend); closed afterwards."""
    backend: str = request.param
    opened: list[sr.MessageQueue] = []
    prefix = f"swarmtest:{uuid.uuid4().hex[:12]}"
    if backend == "redis":
        require_redis()

    async def factory(**options: Any) -> sr.MessageQueue:
        if backend == "memory":
            url = "memory://"
        elif backend == "file":
            url = f"file://{tmp_path / f'q{len(opened)}'}"
        else:
            url = REDIS_URL
            options.setdefault("prefix", f"{prefix}:{len(opened)}")
        queue = await sr.MessageQueue.open(url, **options)
        opened.append(queue)
        return queue

    factory.backend = backend  # type: ignore[attr-defined]
    yield factory
    for queue in opened:
        await queue.close()
    if backend == "redis":
        await delete_redis_prefix(prefix)


async def delete_redis_prefix(prefix: str) -> None:
    """Remove every key a test made under ``prefix`` (never anything else)."""
    import redis.asyncio as aioredis

    client = aioredis.Redis.from_url(REDIS_URL)
    keys = [key async for key in client.scan_iter(match=f"{prefix}:*")]
    if keys:
        await client.delete(*keys)
    await client.aclose()
