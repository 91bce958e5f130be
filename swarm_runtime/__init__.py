"""swarm-runtime: an asyncio-native orchestration runtime for multi-agent systems.

``async with Runtime(queue=...) as rt`` hosts coroutine agents on a durable message queue;
:class:`WorkflowOrchestrator` runs DAGs of tasks on them and
:class:`DataPipelineOrchestrator` runs YAML pipelines; background services (metrics,
monitoring, error handling with circuit breakers, load balancing, self-optimisation) run
in the runtime's task group. Everything raised on purpose is a :class:`SwarmError`.
"""

from ._logging import configure_logging, merge_runtime_context
from ._version import __version__
from .agents import Agent, DataProcessingAgent, FunctionAgent
from .clock import Clock, ManualClock, SystemClock
from .communication import CommunicationSystem
from .errors import (
    AgentError,
    ArgumentTypeError,
    BackendUnavailableError,
    CircuitOpenError,
    ConfigError,
    DataError,
    Defer,
    HandoffError,
    InvalidArgumentError,
    InvalidTopicError,
    JournalMismatchError,
    LLMError,
    MissingExtraError,
    ModelCallError,
    NoCapacityError,
    NotSupportedError,
    PayloadError,
    PipelineConfigError,
    QueueClosedError,
    QueueCorruptError,
    QueueError,
    QueueFormatError,
    QueueFullError,
    QueueLockedError,
    RequestTimeoutError,
    Retry,
    RuntimeStateError,
    SwarmError,
    TaskTimeoutError,
    UnknownAgentError,
    UnknownAgentStateError,
    Veto,
    WorkflowError,
)
from .events import RuntimeListener, TaskEvent
from .handoff import Handoff, HandoffProtocol
from .message import Message
from .middleware import Middleware
from .orchestrator import (
    DataPipelineOrchestrator,
    PipelineResult,
    TaskState,
    TaskStatus,
    WorkflowOrchestrator,
    WorkflowResult,
    WorkflowState,
    WorkflowStatus,
)
from .queue import MemoryQueue, MessageQueue, Outgoing, QueueStats
from .retry import RetryPolicy
from .runtime import Context, Runtime
from .services import (
    CircuitBreaker,
    ErrorHandler,
    LoadBalancer,
    MetricsCollector,
    MonitoringSystem,
    SelfOptimizer,
    Services,
)
from .state import StateManager

__all__ = [
    "Agent",
    "AgentError",
    "ArgumentTypeError",
    "BackendUnavailableError",
    "CircuitBreaker",
    "CircuitOpenError",
    "Clock",
    "CommunicationSystem",
    "ConfigError",
    "Context",
    "DataError",
    "DataPipelineOrchestrator",
    "DataProcessingAgent",
    "Defer",
    "ErrorHandler",
    "FunctionAgent",
    "Handoff",
    "HandoffError",
    "HandoffProtocol",
    "InvalidArgumentError",
    "InvalidTopicError",
    "JournalMismatchError",
    "LLMError",
    "LoadBalancer",
    "ManualClock",
    "MemoryQueue",
    "Message",
    "MessageQueue",
    "MetricsCollector",
    "Middleware",
    "MissingExtraError",
    "ModelCallError",
    "MonitoringSystem",
    "NoCapacityError",
    "NotSupportedError",
    "Outgoing",
    "PayloadError",
    "PipelineConfigError",
    "PipelineResult",
    "QueueClosedError",
    "QueueCorruptError",
    "QueueError",
    "QueueFormatError",
    "QueueFullError",
    "QueueLockedError",
    "QueueStats",
    "RequestTimeoutError",
    "Retry",
    "RetryPolicy",
    "Runtime",
    "RuntimeListener",
    "RuntimeStateError",
    "SelfOptimizer",
    "Services",
    "StateManager",
    "SwarmError",
    "SystemClock",
    "TaskEvent",
    "TaskState",
    "TaskStatus",
    "TaskTimeoutError",
    "UnknownAgentError",
    "UnknownAgentStateError",
    "Veto",
    "WorkflowError",
    "WorkflowOrchestrator",
    "WorkflowResult",
    "WorkflowState",
    "WorkflowStatus",
    "__version__",
    "configure_logging",
    "merge_runtime_context",
]
