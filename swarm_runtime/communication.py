"""CommunicationSystem: direct messages and fan-out topics between agents, over the queue."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from ._args import bad_argument, check_count
from .errors import UnknownAgentError
from .message import Message, validate_topic
from .queue.base import MessageQueue

__all__ = ["INBOX_PREFIX", "CommunicationSystem"]

INBOX_PREFIX = "agent."


class CommunicationSystem:
    """Routes messages to agents' inboxes on a :class:`MessageQueue`.

    Every agent has an inbox topic (``agent.<name>``). A direct message goes to one
    inbox; a message published on a topic is copied into the inbox of every agent
    subscribed to it (fan-out), so each subscriber gets, acks and retries its own copy.
    """

    def __init__(self, queue: MessageQueue) -> None:
        self.queue = queue
        self._agents: set[str] = set()
        self._subscribers: dict[str, list[str]] = {}

    # ------------------------------------------------------------------ registry

    def register_agent(self, agent_id: str) -> None:
        """Make ``agent_id`` a known recipient (idempotent)."""
        validate_topic(self.inbox(agent_id))
        self._agents.add(agent_id)

    def unregister_agent(self, agent_id: str) -> None:
        self._agents.discard(agent_id)
        for subscribers in self._subscribers.values():
            if agent_id in subscribers:
                subscribers.remove(agent_id)

    @property
    def registered_agents(self) -> frozenset[str]:
        return frozenset(self._agents)

    def is_registered(self, agent_id: str) -> bool:
        return agent_id in self._agents

    def require(self, agent_id: str) -> None:
        """Raise :class:`UnknownAgentError` (naming the known agents) unless registered."""
        if agent_id not in self._agents:
            raise UnknownAgentError(agent_id, self._agents)

    @staticmethod
    def inbox(agent_id: str) -> str:
        """The queue topic holding ``agent_id``'s messages."""
        return f"{INBOX_PREFIX}{agent_id}"

    def subscribe(self, topic: str, agent_id: str) -> None:
        """Deliver a copy of every message published on ``topic`` to ``agent_id``."""
        validate_topic(topic)
        self.require(agent_id)
        subscribers = self._subscribers.setdefault(topic, [])
        if agent_id not in subscribers:
            subscribers.append(agent_id)

    def unsubscribe(self, topic: str, agent_id: str) -> None:
        subscribers = self._subscribers.get(topic, [])
        if agent_id in subscribers:
            subscribers.remove(agent_id)

    def subscribers(self, topic: str) -> list[str]:
        return list(self._subscribers.get(topic, ()))

    def topics(self) -> dict[str, list[str]]:
        return {t: list(s) for t, s in self._subscribers.items() if s}

    # ------------------------------------------------------------------ sending

    async def send_message(
        self,
        sender: str | None,
        recipient: str,
        content: Any,
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
        """Durably queue ``content`` for ``recipient``; returns the message id.

        The options are those of :meth:`MessageQueue.publish`.
        """
        self.require(recipient)
        return await self.queue.publish(
            self.inbox(recipient),
            content,
            delay=delay,
            priority=priority,
            dedup_key=dedup_key,
            headers=headers,
            sender=sender,
            correlation_id=correlation_id,
            workflow_id=workflow_id,
            reply_to=reply_to,
            max_attempts=max_attempts,
        )

    async def publish(
        self,
        sender: str | None,
        topic: str,
        content: Any,
        *,
        delay: float = 0.0,
        priority: int = 0,
        dedup_key: str | None = None,
        headers: dict[str, Any] | None = None,
        workflow_id: str | None = None,
        max_attempts: int | None = None,
    ) -> list[str]:
        """Queue a copy of ``content`` for every subscriber of ``topic``; returns their ids.

        Each copy carries ``headers["topic"]``; a ``dedup_key`` is made per subscriber
        (``KEY:AGENT``), so a repeated publish stores nothing twice and every subscriber
        still gets its copy.
        """
        validate_topic(topic)
        if headers is not None and type(headers) is not dict:
            raise bad_argument("headers", headers, "a dict or None", kind=False)
        copy_headers = dict(headers or {})
        copy_headers["topic"] = topic
        ids = []
        for agent_id in self.subscribers(topic):
            ids.append(
                await self.queue.publish(
                    self.inbox(agent_id),
                    content,
                    delay=delay,
                    priority=priority,
                    dedup_key=None if dedup_key is None else f"{dedup_key}:{agent_id}",
                    headers=copy_headers,
                    sender=sender,
                    workflow_id=workflow_id,
                    max_attempts=max_attempts,
                )
            )
        return ids

    async def fetch_messages(self, agent_id: str, max_messages: int = 100) -> list[Message]:
        """Take (lease and acknowledge) up to ``max_messages`` waiting for ``agent_id``.

        For polling use outside the runtime; agents hosted by a Runtime receive their
        messages through their replicas instead. Unknown agents have no messages.
        """
        check_count("max_messages", max_messages)
        if agent_id not in self._agents:
            return []
        batch = await self.queue.subscribe(self.inbox(agent_id), batch_size=max_messages)
        if batch:
            await self.queue.acknowledge_many([message.id for message in batch])
        return batch

    def register_many(self, agent_ids: Iterable[str]) -> None:
        for agent_id in agent_ids:
            self.register_agent(agent_id)
