"""Helpers for orchestrator tests: a memory runtime with instant retries, and recorders."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import swarm_runtime as sr
from swarm_runtime.orchestrator import WorkflowOrchestrator

FAST_RETRY = sr.RetryPolicy(max_attempts=3, base_delay=0.0, max_delay=0.0, jitter=False)


@asynccontextmanager
async def orchestrator(
    queue: str = "memory://", **options: Any
) -> AsyncIterator[WorkflowOrchestrator]:
    """A running runtime (instant retries, no shutdown grace) and an orchestrator on it.

    Runtimes own a task group, so tests open them in their own body (not in fixtures).
    """
    async with sr.Runtime(queue=queue, retry=FAST_RETRY, grace_period=0.0) as runtime:
        yield WorkflowOrchestrator(runtime, **options)


async def echo(msg: sr.Message, ctx: sr.Context) -> Any:
    """An agent handler returning its task's params and inputs."""
    return msg.payload
