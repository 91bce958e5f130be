"""The message envelope carried by every queue backend."""

from __future__ import annotations

import re
import time
import uuid
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from . import _json
from .errors import InvalidTopicError

__all__ = ["Message", "new_id", "validate_topic"]

MAX_TOPIC_LENGTH = 200
_TOPIC_RE = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.:@+=-]*")


def new_id() -> str:
    """A new message id: 32 hex characters, time-ordered in its first 12."""
    return f"{time.time_ns() // 1_000_000:012x}{uuid.uuid4().hex[:20]}"


def validate_topic(topic: str) -> str:
    """Return ``topic`` if it is a valid name, else raise :class:`InvalidTopicError`.

    Topics become file names in the file backend and key parts in Redis, so they
    may hold letters, digits and ``_ . : @ + = -``, must not start with a dot or
    contain ``..``, and are at most 200 characters long.
    """
    if not isinstance(topic, str):
        raise InvalidTopicError(f"topic must be a str, got {type(topic).__name__}")
    if not topic:
        raise InvalidTopicError("topic must not be empty")
    if len(topic) > MAX_TOPIC_LENGTH:
        raise InvalidTopicError(
            f"topic {topic[:40]!r}... is {len(topic)} characters long; the limit is "
            f"{MAX_TOPIC_LENGTH}"
        )
    if ".." in topic or not _TOPIC_RE.fullmatch(topic):
        raise InvalidTopicError(
            f"invalid topic {topic!r}: use letters, digits and _ . : @ + = - "
            "(no path separators, no '..', not starting with '.' or '-')"
        )
    return topic


class Message(BaseModel):
    """One message: a JSON payload plus the envelope the runtime and queue need.

    ``attempts`` counts deliveries and is kept by the queue, never by the app.
    """

    model_config = ConfigDict(extra="forbid", validate_assignment=False)

    id: str = Field(default_factory=new_id)
    topic: str
    payload: Any = None
    sender: str | None = None
    headers: dict[str, Any] = Field(default_factory=dict)
    attempts: int = 0
    max_attempts: int | None = None
    priority: int = 0
    created_at: float = Field(default_factory=time.time)
    correlation_id: str | None = None
    workflow_id: str | None = None
    reply_to: str | None = None
    last_error: str | None = None

    def to_json(self) -> bytes:
        """Serialise the whole envelope as JSON bytes."""
        return _json.dumps(self.to_dict(), what="message")

    def to_dict(self) -> dict[str, Any]:
        """A plain dict of the envelope (cheaper than ``model_dump``)."""
        return {
            "id": self.id,
            "topic": self.topic,
            "payload": self.payload,
            "sender": self.sender,
            "headers": self.headers,
            "attempts": self.attempts,
            "max_attempts": self.max_attempts,
            "priority": self.priority,
            "created_at": self.created_at,
            "correlation_id": self.correlation_id,
            "workflow_id": self.workflow_id,
            "reply_to": self.reply_to,
            "last_error": self.last_error,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Message:
        """Rebuild a message from :meth:`to_dict` output without re-validating it."""
        return cls.model_construct(**data)

    @classmethod
    def from_json(cls, data: bytes) -> Message:
        return cls.from_dict(_json.loads(data))

    def copy_for_delivery(self, **changes: Any) -> Message:
        """A shallow copy with some envelope fields changed (headers copied)."""
        data = self.to_dict()
        data["headers"] = dict(self.headers)
        data.update(changes)
        return Message.model_construct(**data)
