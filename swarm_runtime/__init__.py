"""swarm-runtime: an asyncio-native orchestration runtime for multi-agent systems."""

from .errors import (
    AgentError,
    BackendUnavailableError,
    CircuitOpenError,
    ConfigError,
    HandoffError,
    InvalidTopicError,
    NoCapacityError,
    PayloadError,
    QueueClosedError,
    QueueCorruptError,
    QueueError,
    QueueFormatError,
    QueueFullError,
    QueueLockedError,
    RequestTimeoutError,
    RuntimeStateError,
    SwarmError,
    UnknownAgentError,
)
from .message import Message
from .queue import MemoryQueue, MessageQueue, QueueStats

__version__ = "0.1.0"

__all__ = [
    "AgentError",
    "BackendUnavailableError",
    "CircuitOpenError",
    "ConfigError",
    "HandoffError",
    "InvalidTopicError",
    "MemoryQueue",
    "Message",
    "MessageQueue",
    "NoCapacityError",
    "PayloadError",
    "QueueClosedError",
    "QueueCorruptError",
    "QueueError",
    "QueueFormatError",
    "QueueFullError",
    "QueueLockedError",
    "QueueStats",
    "RequestTimeoutError",
    "RuntimeStateError",
    "SwarmError",
    "UnknownAgentError",
    "__version__",
]
