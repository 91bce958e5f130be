"""``make_backend``: open backends of every kind (memory, file, redis) for the store
contract tests. A test asking for it runs once per backend kind.

Every backend a test makes shares one storage location (one file directory, one Redis
prefix), so a test can close a backend and make another to see what survived
(``backend.durable``), or hold two at once on a shared backend (``backend.shared``).
Stores added to :class:`~swarm_runtime.backends.Backend` (table artifacts, the LLM step
journal) add their contract tests here, on the same fixture.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

from swarm_runtime.backends import Backend

from ..conftest import REDIS_URL, delete_redis_prefix, require_redis

BackendFactory = Callable[..., Awaitable[Backend]]
KINDS = ("memory", "file", "redis")


@pytest.fixture(params=KINDS)
async def make_backend(
    request: pytest.FixtureRequest, tmp_path: Path
) -> AsyncIterator[BackendFactory]:
    """``await make_backend(**queue_options)``: an open backend of this test's kind."""
    kind: str = request.param
    prefix = f"swarmtest:{uuid.uuid4().hex[:12]}"
    if kind == "redis":
        require_redis()
    opened: list[Backend] = []

    async def factory(**options: Any) -> Backend:
        if kind == "memory":
            url = "memory://"
        elif kind == "file":
            url = f"file://{tmp_path / 'queue'}"
        else:
            url = REDIS_URL
            options.setdefault("prefix", prefix)
        backend = Backend.open(url, **options)
        await backend.start()
        opened.append(backend)
        return backend

    factory.kind = kind  # type: ignore[attr-defined]
    yield factory
    for backend in reversed(opened):
        await backend.aclose()
    if kind == "redis":
        await delete_redis_prefix(prefix)
