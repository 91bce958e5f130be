"""TimeLimit: an attempt that runs past its agent's ``timeout`` fails with TaskTimeoutError."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import anyio

from ..errors import TaskTimeoutError
from .base import CallNext, Handler, Middleware

if TYPE_CHECKING:
    from ..agents.base import Agent
    from ..message import Message
    from ..runtime.context import Context

__all__ = ["TimeLimit"]


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
        name = agent.name

        async def layer(msg: Message, ctx: Context) -> Any:
            with anyio.CancelScope(deadline=anyio.current_time() + timeout):
                return await call_next(msg, ctx)
            # the block did not return: only the deadline's cancellation ends it so
            raise TaskTimeoutError(f"handler of agent {name!r} took longer than {timeout:g}s")

        return layer
