"""swarm-runtime: an asyncio-native orchestration runtime for multi-agent systems."""

from ._logging import configure_logging, merge_runtime_context
from .agents import Agent, DataProcessingAgent, FunctionAgent
from .clock import Clock, ManualClock, SystemClock
from .communication import CommunicationSystem
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
from .events import RuntimeListener, TaskEvent
from .handoff import Handoff, HandoffProtocol
from .message import Message
from .queue import MemoryQueue, MessageQueue, QueueStats
from .retry import RetryPolicy
from .runtime import Context, Runtime
from .state import StateManager

__version__ = "0.1.0"

__all__ = [
    "Agent",
    "AgentError",
    "BackendUnavailableError",
    "CircuitOpenError",
    "Clock",
    "CommunicationSystem",
    "ConfigError",
    "Context",
    "DataProcessingAgent",
    "FunctionAgent",
    "Handoff",
    "HandoffError",
    "HandoffProtocol",
    "InvalidTopicError",
    "ManualClock",
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
    "RetryPolicy",
    "Runtime",
    "RuntimeListener",
    "RuntimeStateError",
    "StateManager",
    "SwarmError",
    "SystemClock",
    "TaskEvent",
    "UnknownAgentError",
    "__version__",
    "configure_logging",
    "merge_runtime_context",
]
