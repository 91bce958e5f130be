"""Fixtures for the scale-out tests: a private Redis key prefix, structlog left alone."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
import structlog

from ..conftest import require_redis
from ..queue.redis_helpers import delete_keys, new_prefix


@pytest.fixture(autouse=True)
def _structlog_left_alone() -> None:
    """Keep the runtimes these tests start from reconfiguring structlog for later tests."""
    if not structlog.is_configured():
        structlog.configure()


@pytest.fixture
async def prefix() -> AsyncIterator[str]:
    """A private key prefix on the test Redis server, deleted afterwards."""
    require_redis()
    value = new_prefix()
    yield value
    await delete_keys(value)
