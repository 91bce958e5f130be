"""Fixtures for the LLM tests: a scripted server over HTTP, Swarms on it, user messages."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest

from swarm_runtime.llm import Swarm
from swarm_runtime.retry import RetryPolicy
from swarm_runtime.testing import ScriptedModel, ScriptedServer

NO_WAIT = RetryPolicy(max_attempts=4, base_delay=0.0, max_delay=0.0)


def user(text: str) -> list[dict[str, Any]]:
    return [{"role": "user", "content": text}]


@pytest.fixture
def server() -> Iterator[ScriptedServer]:
    """A scripted OpenAI-compatible server on 127.0.0.1 (script with ``server.script.add``)."""
    with ScriptedServer() as running:
        yield running


@pytest.fixture
async def aclient(server: ScriptedServer) -> AsyncIterator[Any]:
    """An openai.AsyncOpenAI on the scripted server, closed after the test."""
    async with server.client() as client:
        yield client


def scripted(*replies: Any, **options: Any) -> tuple[Swarm, ScriptedModel]:
    """A Swarm on an in-process scripted model (no HTTP)."""
    model = ScriptedModel(*replies)
    options.setdefault("retry", NO_WAIT)
    return Swarm(model, **options), model
