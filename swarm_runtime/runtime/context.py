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

    async def send(self, agent: str, payload: Any = None, **options: Any) -> str:
        """Durably send ``payload`` to ``agent`` (fire-and-forget); returns the message id."""
        options.setdefault("workflow_id", self.message.workflow_id)
        return await self.runtime.send(agent, payload, sender=self.agent, **options)

    async def publish(self, topic: str, payload: Any = None, **options: Any) -> list[str]:
        """Publish on a topic: every subscribed agent gets its own copy."""
        options.setdefault("workflow_id", self.message.workflow_id)
        return await self.runtime.publish(topic, payload, sender=self.agent, **options)

    async def request(
        self, agent: str, payload: Any = None, *, timeout: float | None = None, **options: Any
    ) -> Any:
        """Send to ``agent`` and wait for its reply (raises ``AgentError`` if it failed)."""
        options.setdefault("workflow_id", self.message.workflow_id)
        return await self.runtime.request(
            agent, payload, timeout=timeout, sender=self.agent, **options
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
