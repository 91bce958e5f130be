"""Exceptions raised by swarm-runtime.

Every error the runtime raises on purpose derives from :class:`SwarmError`, so
``except sr.SwarmError`` catches them all. Errors of dependencies (the OS,
redis, pydantic) are translated at the boundary, with the original chained as
``__cause__``. The tree::

    SwarmError
    ├── ConfigError                  a runtime / pipeline option is invalid
    │   ├── PipelineConfigError      a pipeline or workflow is invalid; lists every problem
    │   └── NotSupportedError        the backend does not offer the store or feature asked for
    ├── InvalidArgumentError (ValueError)  a public call got a bad argument (names it)
    │   └── ArgumentTypeError (TypeError)  ... of the wrong type (also a ValueError)
    ├── PayloadError (ValueError)    a payload is not JSON-serialisable
    ├── UnknownAgentError (LookupError)
    │   └── UnknownAgentStateError (KeyError)  no state was registered for that agent id
    ├── RuntimeStateError            the runtime is not running (not started / closed)
    ├── RequestTimeoutError (TimeoutError)
    ├── AgentError                   the remote agent failed while handling a request
    ├── HandoffError                 a handoff could not be started or was rejected
    ├── NoCapacityError              every replica is busy and the wait bound was hit
    ├── CircuitOpenError             the agent's circuit breaker refuses traffic
    ├── DataError                    a built-in data agent cannot read, process or write its data
    │   └── ArtifactError            a table artifact is missing, unreadable or fails its checksum
    ├── WorkflowError                a workflow cannot run as asked (unknown, running, changed)
    ├── LLMError                     an LLM agent run cannot go on (misuse, bad tool, journal)
    │   ├── ModelCallError           the model endpoint failed (status, retry_after) or is down
    │   └── JournalMismatchError     a resumed run asks the model something its journal did not
    ├── MissingExtraError (ImportError)  an optional dependency is missing; names the pip extra
    ├── TaskTimeoutError (TimeoutError)  a handler attempt ran past its agent's or task's timeout
    ├── Retry                        raised to retry a message after ``delay`` seconds
    ├── Veto                         raised to refuse a message: dead-lettered at once
    ├── Defer                        raised to hand a message back and pause the replica
    └── QueueError
        ├── QueueClosedError         the queue was closed (or never opened)
        ├── QueueLockedError         another process owns the queue directory
        ├── InvalidTopicError (InvalidArgumentError)
        ├── QueueFormatError         on-disk data written by an unknown format version
        ├── QueueCorruptError        on-disk data failed its checksum beyond repair
        ├── QueueFullError           the disk is full; nothing was written
        └── BackendUnavailableError  the backend's driver or server cannot be reached
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

__all__ = [
    "AgentError",
    "ArgumentTypeError",
    "ArtifactError",
    "BackendUnavailableError",
    "CircuitOpenError",
    "ConfigError",
    "ConfigProblem",
    "DataError",
    "Defer",
    "HandoffError",
    "InvalidArgumentError",
    "InvalidTopicError",
    "JournalMismatchError",
    "LLMError",
    "MissingExtraError",
    "ModelCallError",
    "NoCapacityError",
    "NotSupportedError",
    "PayloadError",
    "PipelineConfigError",
    "QueueClosedError",
    "QueueCorruptError",
    "QueueError",
    "QueueFormatError",
    "QueueFullError",
    "QueueLockedError",
    "RequestTimeoutError",
    "Retry",
    "RuntimeStateError",
    "SwarmError",
    "TaskTimeoutError",
    "UnknownAgentError",
    "UnknownAgentStateError",
    "Veto",
    "WorkflowError",
]


class SwarmError(Exception):
    """Base class of every error raised by swarm-runtime."""


class ConfigError(SwarmError):
    """An option, a pipeline file or an agent definition is invalid."""


@dataclass(frozen=True, slots=True)
class ConfigProblem:
    """One problem in a pipeline: where (``tasks[2].depends_on[0]``, line, column) and what.

    ``kind`` names the check that failed (``syntax``, ``invalid``, ``duplicate``,
    ``unknown_dependency``, ``unknown_agent``, ``self_dependency``, ``cycle``).
    """

    path: str
    message: str
    kind: str = "invalid"
    line: int | None = None
    column: int | None = None

    def format(self, source: str) -> str:
        """One line: ``SOURCE[:LINE:COL]: PATH: MESSAGE``."""
        where = source if self.line is None else f"{source}:{self.line}:{self.column or 1}"
        return f"{where}: {self.path}: {self.message}" if self.path else f"{where}: {self.message}"


class PipelineConfigError(ConfigError):
    """A pipeline file or workflow definition is invalid.

    The message has one line per problem, each naming the file, the field path and
    what was expected; ``problems`` holds them as :class:`ConfigProblem` objects.
    """

    def __init__(self, source: str, problems: Sequence[ConfigProblem]) -> None:
        self.source = source
        self.problems = tuple(problems)
        super().__init__("\n".join(problem.format(source) for problem in self.problems))


class NotSupportedError(ConfigError):
    """The backend (chosen by the queue URL) does not offer the store or feature asked for."""


class DataError(SwarmError):
    """A built-in data agent cannot read, process or write its data (bad file, bad table)."""


class ArtifactError(DataError):
    """A table artifact is missing, unreadable or fails its checksum (``uri`` names it)."""

    def __init__(self, message: str, *, uri: str | None = None) -> None:
        super().__init__(message)
        self.uri = uri


class WorkflowError(SwarmError):
    """A workflow (run) cannot be executed, resumed or queried as asked."""


class LLMError(SwarmError):
    """An LLM agent run cannot go on: misuse, a function unfit as a tool, a damaged journal."""


class ModelCallError(LLMError):
    """The model endpoint answered with an error status, or could not be reached.

    ``status`` is the HTTP status (None when no answer came), ``retry_after`` the seconds the
    server asked to wait (``retry-after`` / ``retry-after-ms``), ``retryable`` whether another
    attempt may succeed (429, 408, 409, 5xx, connection errors and timeouts).
    """

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        retry_after: float | None = None,
        retryable: bool = False,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.retry_after = retry_after
        self.retryable = retryable


class JournalMismatchError(LLMError):
    """A resumed run's request differs from the one its journal recorded at that step
    (the instructions, tools, model or messages changed); ``differences`` names what."""

    def __init__(self, message: str, *, run_id: str, step: int, differences: Sequence[str]) -> None:
        super().__init__(message)
        self.run_id = run_id
        self.step = step
        self.differences = tuple(differences)


class MissingExtraError(SwarmError, ImportError):
    """An optional dependency is not installed; the message names the pip extra to install."""

    def __init__(self, package: str, extra: str, feature: str) -> None:
        super().__init__(
            f"{feature} needs the {package!r} package: pip install 'swarm-runtime[{extra}]'"
        )
        self.package = package
        self.extra = extra


class TaskTimeoutError(SwarmError, TimeoutError):
    """One attempt of a handler took longer than its agent's or its workflow task's ``timeout``."""


class Retry(SwarmError):
    """Raise from a handler or a middleware to retry the message after ``delay`` seconds.

    The attempt counts: past the message's ``max_attempts`` (or with ``dead_letter=True``)
    it goes to the dead-letter queue instead. Raise it ``from`` the real error so the
    dead letter, the requester and the metrics see that error.
    """

    def __init__(self, delay: float = 0.0, *, dead_letter: bool = False, reason: str = "") -> None:
        if not (delay >= 0 and delay != float("inf")):
            raise ConfigError(f"Retry delay must be a finite number of seconds >= 0, got {delay!r}")
        self.delay = float(delay)
        self.dead_letter = dead_letter
        super().__init__(reason or f"retry in {delay:g}s")


class Veto(SwarmError):
    """Raise from a middleware (or a handler) to refuse a message for good.

    The message is not retried: it goes to the dead-letter queue at once with
    ``Veto: <reason>`` as its error, a waiting requester gets :class:`AgentError`
    (``error_type == "Veto"``) and a handoff it carries fails.
    """


class Defer(SwarmError):
    """Raise from a middleware to hand a message back untouched and pause the replica.

    The message returns to the queue without counting an attempt (as at shutdown) and
    the replica takes nothing for ``delay`` seconds (on the runtime's clock): what the
    circuit breaker does while an agent's circuit is open, and what a rate limit wants.
    """

    def __init__(self, delay: float, reason: str = "") -> None:
        if not (delay >= 0 and delay != float("inf")):
            raise ConfigError(f"Defer delay must be a finite number of seconds >= 0, got {delay!r}")
        self.delay = float(delay)
        super().__init__(reason or f"deferred for {delay:g}s")


class InvalidArgumentError(SwarmError, ValueError):
    """An argument of a public call is out of range or malformed (``delay=-1``,
    ``batch_size=0``, ...); the message names the argument, what was expected and what
    was given. Also a :class:`ValueError`, for callers that catch that."""


class ArgumentTypeError(InvalidArgumentError, TypeError):
    """An argument of a public call has the wrong type (``delay="5"``); also a
    :class:`TypeError` (and, as an :class:`InvalidArgumentError`, a ValueError)."""


class PayloadError(SwarmError, ValueError):
    """A payload (or result) cannot be serialised as JSON.

    ``path`` locates the offending value (``payload.items[2].when``) and
    ``type_name`` names its Python type.
    """

    def __init__(self, message: str, *, path: str = "", type_name: str = "") -> None:
        super().__init__(message)
        self.path = path
        self.type_name = type_name


class UnknownAgentError(SwarmError, LookupError):
    """A message was addressed to an agent that is not registered."""

    def __init__(self, name: str, known: Iterable[str]) -> None:
        self.name = name
        self.known = sorted(known)
        known_text = ", ".join(self.known) if self.known else "none registered yet"
        super().__init__(f"unknown agent {name!r}; known agents: {known_text}")


class UnknownAgentStateError(UnknownAgentError, KeyError):
    """``StateManager.update_state`` for an agent whose state was never registered
    (a typo in an agent id would otherwise start a new, empty state)."""

    def __init__(self, name: str, known: Iterable[str]) -> None:
        super().__init__(name, known)
        known_text = ", ".join(self.known) if self.known else "none yet"
        self.args = (
            f"no state registered for agent {name!r}; register it with "
            f"register_agent_state() first. Agents with state: {known_text}",
        )

    def __str__(self) -> str:  # KeyError would print the repr of the message
        return str(self.args[0])


class RuntimeStateError(SwarmError):
    """The runtime was used outside ``async with Runtime(...)``."""


class RequestTimeoutError(SwarmError, TimeoutError):
    """No reply arrived within the request's timeout."""


class AgentError(SwarmError):
    """The agent that handled a request failed; carries the remote error."""

    def __init__(self, agent: str, error_type: str, error: str, *, attempts: int = 0) -> None:
        self.agent = agent
        self.error_type = error_type
        self.error = error
        self.attempts = attempts
        suffix = f" after {attempts} attempt(s)" if attempts else ""
        super().__init__(f"agent {agent!r} failed{suffix}: {error_type}: {error}")


class HandoffError(SwarmError):
    """A handoff could not be started, or its target rejected it."""


class NoCapacityError(SwarmError):
    """Every replica of an agent is at capacity and the caller's wait bound ran out."""


class CircuitOpenError(SwarmError):
    """The agent's circuit breaker is open: it is not taking traffic until the cooldown ends."""


class QueueError(SwarmError):
    """Base class of message-queue errors."""


class QueueClosedError(QueueError):
    """The queue is closed (or was never opened); open a new one."""


class QueueLockedError(QueueError):
    """Another process holds the queue directory's lock."""

    def __init__(self, directory: str, pid: int | None) -> None:
        self.directory = directory
        self.pid = pid
        holder = f"process {pid}" if pid else "another process"
        super().__init__(
            f"queue directory {directory!r} is locked by {holder}; stop it, or open the queue "
            "read-only for inspection"
        )


class InvalidTopicError(QueueError, InvalidArgumentError):
    """A topic name is empty, too long, or contains characters that are not allowed."""


class QueueFormatError(QueueError):
    """The queue's on-disk data was written by a format version this code does not know."""


class QueueCorruptError(QueueError):
    """The queue's on-disk data is damaged in a way recovery cannot repair."""


class QueueFullError(QueueError):
    """The disk is full: the message was not stored; free space and publish again."""


class BackendUnavailableError(QueueError):
    """The queue backend's driver is not installed or its server does not answer."""
