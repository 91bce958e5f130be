"""Context: what an agent can do while it handles a message."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ..handoff import Handoff
from ..message import Message
from ..state import AgentStateView

if TYPE_CHECKING:
    from ..services.load_balancer import Assignment
    from .runtime import Runtime

__all__ = ["Context"]


class Context:
    """Passed to every handler with the message: send, publish, request, handoff, state, log.

    Messages sent through the context inherit the current message's workflow id.
    Handoffs are transactional: they are recorded at once but delivered only if the
    handler returns successfully (a handler that fails hands off nothing).
    """

    __slots__ = (
        "_log",
        "_pending_handoffs",
        "agent",
        "assignment",
        "message",
        "replica",
        "runtime",
    )

    def __init__(self, runtime: Runtime, agent: str, replica: int, message: Message) -> None:
        self.runtime = runtime
        self.agent = agent
        self.replica = replica
        self.message = message
        self._log: Any = None
        self._pending_handoffs: list[Handoff] = []
        #: the load balancer's placement of this message, when the balancer placed it
        #: (the circuit was checked then: middleware need not check it again)
        self.assignment: Assignment | None = None

    @property
    def workflow_id(self) -> str | None:
        return self.message.workflow_id

    @property
    def log(self) -> Any:
        """A structlog logger bound to this agent, message and workflow."""
        if self._log is None:
            from .._logging import get_logger

            self._log = get_logger(
                "swarm_runtime.agent",
                agent=self.agent,
                replica=self.replica,
                message_id=self.message.id,
                workflow_id=self.message.workflow_id,
            )
        return self._log

    @property
    def state(self) -> AgentStateView:
        """This agent's state (shared by its replicas)."""
        return self.runtime.state.view(self.agent)

    async def send(
        self,
        agent: str,
        payload: Any = None,
        *,
        delay: float = 0.0,
        priority: int = 0,
        dedup_key: str | None = None,
        headers: dict[str, Any] | None = None,
        workflow_id: str | None = None,
        reply_to: str | None = None,
        correlation_id: str | None = None,
        max_attempts: int | None = None,
    ) -> str:
        """Durably send ``payload`` to ``agent`` (fire-and-forget); returns the message id.

        The options are those of :meth:`Runtime.send`; the sender is this agent and
        ``workflow_id`` defaults to the handled message's.
        """
        return await self.runtime.send(
            agent,
            payload,
            delay=delay,
            priority=priority,
            dedup_key=dedup_key,
            headers=headers,
            sender=self.agent,
            workflow_id=workflow_id or self.message.workflow_id,
            reply_to=reply_to,
            correlation_id=correlation_id,
            max_attempts=max_attempts,
        )

    async def publish(
        self,
        topic: str,
        payload: Any = None,
        *,
        delay: float = 0.0,
        priority: int = 0,
        dedup_key: str | None = None,
        headers: dict[str, Any] | None = None,
        workflow_id: str | None = None,
        max_attempts: int | None = None,
    ) -> list[str]:
        """Publish on a topic: every subscribed agent gets its own copy (see
        :meth:`Runtime.publish`); ``workflow_id`` defaults to the handled message's."""
        return await self.runtime.publish(
            topic,
            payload,
            delay=delay,
            priority=priority,
            dedup_key=dedup_key,
            headers=headers,
            sender=self.agent,
            workflow_id=workflow_id or self.message.workflow_id,
            max_attempts=max_attempts,
        )

    async def request(
        self,
        agent: str,
        payload: Any = None,
        *,
        timeout: float | None = None,
        delay: float = 0.0,
        priority: int = 0,
        dedup_key: str | None = None,
        headers: dict[str, Any] | None = None,
        workflow_id: str | None = None,
        max_attempts: int | None = None,
    ) -> Any:
        """Send to ``agent`` and wait for its reply (raises ``AgentError`` if it failed);
        the options are those of :meth:`Runtime.request`."""
        return await self.runtime.request(
            agent,
            payload,
            timeout=timeout,
            delay=delay,
            priority=priority,
            dedup_key=dedup_key,
            headers=headers,
            sender=self.agent,
            workflow_id=workflow_id or self.message.workflow_id,
            max_attempts=max_attempts,
        )

    async def handoff(
        self, target: str, payload: Any = None, *, reason: str | None = None
    ) -> Handoff:
        """Hand a task to ``target``: returns the pending handoff record.

        Delivered when this handler returns successfully. Return the handoff from the
        handler (``return await ctx.handoff(...)``) to let the target answer this
        message's requester in your place (Swarm-style triage).
        """
        self.runtime.comm.require(target)
        handoffs = self.runtime.handoffs
        handoff_id = await handoffs.initiate_handoff(
            self.agent,
            target,
            payload,
            reason=reason,
            parent_id=self.message.headers.get("handoff_id"),
            workflow_id=self.message.workflow_id,
        )
        record = await handoffs.get(handoff_id)
        assert record is not None
        self._pending_handoffs.append(record)
        return record

    def __repr__(self) -> str:
        return f"<Context agent={self.agent!r} replica={self.replica} message={self.message.id}>"
