"""TimeLimit: an attempt that runs past its agent's ``timeout`` fails with TaskTimeoutError."""

from __future__ import annotations

from collections.abc import Awaitable
from typing import TYPE_CHECKING, Any

import anyio

from ..errors import TaskTimeoutError
from .base import CallNext, Handler, Middleware

if TYPE_CHECKING:
    from ..agents.base import Agent
    from ..message import Message
    from ..runtime.context import Context

__all__ = ["TimeLimit", "within"]


async def within(seconds: float, call: CallNext, msg: Message, ctx: Context, error: str) -> Any:
    """``await call(msg, ctx)``, cancelled after ``seconds``: then
    :class:`~swarm_runtime.errors.TaskTimeoutError` with the message ``error``.

    The one place a handler runs under a deadline (agent timeouts here, workflow task
    timeouts in the orchestrator's guard). A ``TimeoutError`` the handler raises itself
    passes through as it is.
    """
    with anyio.CancelScope(deadline=anyio.current_time() + seconds):
        return await call(msg, ctx)
    # the block did not return: only the deadline's cancellation ends it so
    raise TaskTimeoutError(error)


class TimeLimit(Middleware):
    """Cancels a handler still running ``agent.timeout`` seconds after it started.

    The attempt then fails with :class:`~swarm_runtime.errors.TaskTimeoutError` (outcome
    ``timeout``; retried like any failure). A ``TimeoutError`` the handler raises itself is
    an ordinary error. The innermost built-in layer; agents without a timeout skip it.
    """

    def applies_to(self, agent: Agent) -> bool:
        return agent.timeout is not None

    def wrap(self, call_next: CallNext, agent: Agent) -> Handler:
        timeout = agent.timeout
        assert timeout is not None
        error = f"handler of agent {agent.name!r} took longer than {timeout:g}s"

        def layer(msg: Message, ctx: Context) -> Awaitable[Any]:
            return within(timeout, call_next, msg, ctx, error)

        return layer
