"""Fixtures for the scale-out tests: a private Redis key prefix."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from ..conftest import require_redis
from ..queue.redis_helpers import delete_keys, new_prefix


@pytest.fixture
async def prefix() -> AsyncIterator[str]:
    """A private key prefix on the test Redis server, deleted afterwards."""
    require_redis()
    value = new_prefix()
    yield value
    await delete_keys(value)
