"""The guard in front of agents registered through a :class:`WorkflowOrchestrator`.

For a workflow task message it checks, before any user code runs, that the message is
the task's *current* dispatch in a run this orchestrator is executing. Anything else -
a duplicate delivery of a task that already finished, a message left in the queue by a
crashed or cancelled run (every resumed session dispatches afresh) - is settled without
running the handler and without a reply. It also records each attempt (replica, start,
end, outcome) and enforces the task's ``timeout``. Other messages pass straight through.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from ..agents.base import Agent, AgentHandler, FunctionAgent
from ..message import Message
from ..middleware.time_limit import within
from ._run import CORRELATION_PREFIX

if TYPE_CHECKING:
    from ..runtime.context import Context
    from ..runtime.runtime import Runtime
    from ._run import Run

__all__ = ["WorkflowAgent", "guard"]


def guard(name: str, call: AgentHandler, live: Mapping[str, Run]) -> AgentHandler:
    """Wrap ``call`` (an agent's handler) with the workflow checks described above."""

    async def guarded(msg: Message, ctx: Context) -> Any:
        corr = msg.correlation_id
        if corr is None or not corr.startswith(CORRELATION_PREFIX):
            return await call(msg, ctx)
        run = live.get(msg.workflow_id or "")
        task = run.current.get(corr) if run is not None else None
        if task is None:
            if run is None and ctx.runtime.backend.shared:
                # On a shared queue, a run no process of ours executes may be executing
                # elsewhere: run the task like a worker would (at-least-once).
                return await call(msg, ctx)
            # Stale: settle it quietly (no reply: nobody waits for this dispatch any more).
            msg.reply_to = None
            return None
        wall = ctx.runtime.clock.time  # attempt times on the runtime's (injectable) clock
        task.attempt_started(name, ctx.replica, msg.attempts, wall())
        timeout = task.timeout
        try:
            if timeout is None:
                result = await call(msg, ctx)
            else:
                error = f"task {task.name!r} took longer than its timeout of {timeout:g}s"
                result = await within(timeout, call, msg, ctx, error)
        except Exception as exc:
            outcome = "timeout" if isinstance(exc, TimeoutError) else "error"
            task.attempt_finished(outcome, f"{type(exc).__name__}: {exc}", wall())
            raise
        except BaseException:
            task.attempt_finished("cancelled", None, wall())
            raise
        task.attempt_finished("ok", None, wall())
        return result

    guarded.__name__ = getattr(call, "__name__", "guarded")
    guarded.__doc__ = getattr(call, "__doc__", None)
    return guarded


class WorkflowAgent(FunctionAgent):
    """An agent whose handler runs behind the workflow guard; wraps any :class:`Agent`.

    Its options (role, replicas, concurrency, timeout, lease, retry, topics) and message
    history are the wrapped agent's; ``on_start`` / ``on_stop`` are forwarded to it.
    """

    def __init__(self, inner: Agent, live: Mapping[str, Run]) -> None:
        call = inner._handler if isinstance(inner, FunctionAgent) else inner.handle
        super().__init__(
            inner.name,
            guard(inner.name, call, live),
            role=inner.role,
            replicas=inner.replicas,
            concurrency=inner.concurrency,
            timeout=inner.timeout,
            history_size=inner.history_size,
            lease=inner.lease,
            retry=inner.retry,
            topics=inner.topics,
        )
        self.inner = inner
        self.history = inner.history
        self.__doc__ = inner.__doc__

    async def on_start(self, runtime: Runtime) -> None:
        await self.inner.on_start(runtime)

    async def on_stop(self) -> None:
        await self.inner.on_stop()

    def __repr__(self) -> str:
        return f"<WorkflowAgent wrapping {self.inner!r}>"
