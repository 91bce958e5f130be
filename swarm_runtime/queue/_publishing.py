"""What a publish hands to a backend: validated messages of one topic sharing one envelope.

``publish`` is a batch of one, ``publish_many`` a batch of many, ``publish_message`` a batch
of one carrying its own id and last error, ``publish_all`` a list of batches of one (each
:class:`Outgoing` message has its own topic and envelope). Backends store a batch together
(or none of it) and build per-message objects only if they need them.
"""

from __future__ import annotations

from dataclasses import KW_ONLY, dataclass
from typing import Any

from ..errors import PayloadError
from ..message import Message, _build

__all__ = ["MAX_MESSAGE_BYTES", "Outgoing", "PublishBatch"]

#: the largest payload (as JSON) any backend accepts: 64 MiB. Every backend refuses a bigger
#: one alike, with a PayloadError, before anything is stored: large data belongs in an
#: artifact passed by reference.
MAX_MESSAGE_BYTES = 64 * 1024 * 1024


@dataclass(frozen=True, slots=True)
class Outgoing:
    """One message of a :meth:`MessageQueue.publish_all` (``to`` is a topic) or
    :meth:`Runtime.send_all` (``to`` is an agent name) batch; the options are those of
    :meth:`MessageQueue.publish`, per message."""

    to: str
    payload: Any = None
    _: KW_ONLY
    delay: float = 0.0
    priority: int = 0
    dedup_key: str | None = None
    headers: dict[str, Any] | None = None
    sender: str | None = None
    correlation_id: str | None = None
    workflow_id: str | None = None
    reply_to: str | None = None
    max_attempts: int | None = None


@dataclass(slots=True)
class PublishBatch:
    """Validated messages to store together: one topic and envelope, one payload each.

    ``bodies`` are the payloads' JSON. ``fresh``: the ids were just made by
    :func:`~swarm_runtime.message.new_id` (32 lowercase hex digits, unique), so backends
    need not look for them among stored messages. ``at``: the batch's position in a
    ``publish_all`` (-1 otherwise), named in errors about it (see :attr:`where`).
    """

    topic: str
    ids: list[str]
    payloads: list[Any]
    bodies: list[bytes]
    priority: int
    delay: float
    dedup_keys: list[str | None] | None
    fresh: bool
    created_at: float
    sender: str | None = None
    headers: dict[str, Any] | None = None
    correlation_id: str | None = None
    workflow_id: str | None = None
    reply_to: str | None = None
    max_attempts: int | None = None
    last_error: str | None = None
    at: int = -1

    def __post_init__(self) -> None:
        bodies = self.bodies
        if bodies and max(map(len, bodies)) > MAX_MESSAGE_BYTES:
            at = next(i for i, body in enumerate(bodies) if len(body) > MAX_MESSAGE_BYTES)
            path = self.payload_path(at)
            raise PayloadError(
                f"{path} of {len(bodies[at])} bytes as JSON is larger than the queue's limit "
                f"of {MAX_MESSAGE_BYTES} bytes (64 MiB); store large data elsewhere (tables "
                "travel as artifacts) and send a reference",
                path=path,
                type_name=type(self.payloads[at]).__name__,
            )

    @property
    def where(self) -> str:
        """The prefix of the names in errors about this batch: ``messages[3].`` for the
        fourth message of a ``publish_all``, else empty."""
        return "" if self.at < 0 else f"messages[{self.at}]."

    def payload_path(self, i: int) -> str:
        """How errors name payload ``i``: ``payload``, ``payloads[i]``, ``messages[k].payload``."""
        if len(self.bodies) == 1:
            return f"{self.where}payload"
        return f"{self.where}payloads[{i}]"

    def __len__(self) -> int:
        return len(self.ids)

    def envelope(self) -> tuple[Any, ...]:
        """``(sender, headers, created_at, correlation_id, workflow_id, reply_to)``."""
        return (
            self.sender,
            self.headers if self.headers is not None else {},
            self.created_at,
            self.correlation_id,
            self.workflow_id,
            self.reply_to,
        )

    def fields(self, i: int) -> dict[str, Any]:
        """Message ``i``'s fields, as :meth:`Message.to_dict` has them (attempts 0)."""
        return {
            "id": self.ids[i],
            "topic": self.topic,
            "payload": self.payloads[i],
            "sender": self.sender,
            "headers": dict(self.headers) if self.headers else {},
            "attempts": 0,
            "max_attempts": self.max_attempts,
            "priority": self.priority,
            "created_at": self.created_at,
            "correlation_id": self.correlation_id,
            "workflow_id": self.workflow_id,
            "reply_to": self.reply_to,
            "last_error": self.last_error,
        }

    def message(self, i: int) -> Message:
        """Message ``i`` (attempts 0)."""
        return _build(self.fields(i))
