"""The message envelope carried by every queue backend."""

from __future__ import annotations

import itertools
import os
import re
import time
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from . import _json
from .errors import InvalidTopicError

__all__ = ["Message", "build_message", "new_id", "validate_topic"]

MAX_TOPIC_LENGTH = 200
_TOPIC_RE = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.:@+=-]*")


_PROCESS = os.urandom(6).hex()
_COUNTER = itertools.count(int.from_bytes(os.urandom(3), "big"))


def _reseed() -> None:
    """A forked child gets its own process tag, or it would repeat its parent's ids."""
    global _PROCESS, _COUNTER
    _PROCESS = os.urandom(6).hex()
    _COUNTER = itertools.count(int.from_bytes(os.urandom(3), "big"))


os.register_at_fork(after_in_child=_reseed)


def new_id() -> str:
    """A new message id: 32 hex characters.

    Milliseconds since the epoch (12), a random per-process tag (12) and a counter (8):
    unique across processes and restarts, roughly time-ordered, and cheap to make.
    """
    return f"{time.time_ns() // 1_000_000:012x}{_PROCESS}{next(_COUNTER) & 0xFFFFFFFF:08x}"


def new_ids(count: int) -> list[str]:
    """``count`` new message ids at once (what ``new_id`` makes, for a batch)."""
    prefix = f"{time.time_ns() // 1_000_000:012x}{_PROCESS}"
    return [f"{prefix}{n & 0xFFFFFFFF:08x}" for n in itertools.islice(_COUNTER, count)]


_VALID_TOPICS: set[str] = set()


def validate_topic(topic: str) -> str:
    """Return ``topic`` if it is a valid name, else raise :class:`InvalidTopicError`.

    Topics become file names in the file backend and key parts in Redis, so they
    may hold letters, digits and ``_ . : @ + = -``, must not start with a dot or
    contain ``..``, and are at most 200 characters long.
    """
    try:
        if topic in _VALID_TOPICS:
            return topic
    except TypeError:  # unhashable: a list, a dict...
        pass
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
    if len(_VALID_TOPICS) < 100_000:
        _VALID_TOPICS.add(topic)
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
        return _build(data)

    @classmethod
    def from_json(cls, data: bytes) -> Message:
        return cls.from_dict(_json.loads(data))

    def copy_for_delivery(self, **changes: Any) -> Message:
        """A shallow copy with some envelope fields changed (headers copied)."""
        data = dict(self.__dict__)
        data["headers"] = dict(self.headers)
        data.update(changes)
        return _build(data)


_FIELDS = frozenset(Message.model_fields)
#: every built message's ``__pydantic_fields_set__``, shared: it holds every field, so the
#: only change pydantic makes to it in place (adding the name of a field assigned to) leaves
#: it as it is, and copies (``model_copy``) take their own. One set fewer to allocate and for
#: the garbage collector to track per message (~15% of the file queue's delivery cost).
_ALL_FIELDS: set[str] = set(_FIELDS)
_setattr = object.__setattr__


def _build(data: dict[str, Any]) -> Message:
    """Make a Message from a complete, trusted field dict without validation.

    What ``model_construct`` does, minus per-field defaults handling: the hot paths
    (publish, delivery) always pass every field, and this is several times faster.
    """
    message = Message.__new__(Message)
    _setattr(message, "__dict__", data)
    _setattr(message, "__pydantic_fields_set__", _ALL_FIELDS)
    _setattr(message, "__pydantic_extra__", None)
    _setattr(message, "__pydantic_private__", None)
    return message


def build_message(
    topic: str,
    payload: Any,
    *,
    sender: str | None = None,
    headers: dict[str, Any] | None = None,
    max_attempts: int | None = None,
    priority: int = 0,
    correlation_id: str | None = None,
    workflow_id: str | None = None,
    reply_to: str | None = None,
    message_id: str | None = None,
) -> Message:
    """A new message with every field set, built without pydantic validation (hot path)."""
    return _build(
        {
            "id": message_id or new_id(),
            "topic": topic,
            "payload": payload,
            "sender": sender,
            "headers": headers if headers is not None else {},
            "attempts": 0,
            "max_attempts": max_attempts,
            "priority": priority,
            "created_at": time.time(),
            "correlation_id": correlation_id,
            "workflow_id": workflow_id,
            "reply_to": reply_to,
            "last_error": None,
        }
    )
