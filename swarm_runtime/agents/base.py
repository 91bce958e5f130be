"""The Agent base class: a named coroutine worker with a role, history and limits."""

from __future__ import annotations

import abc
import math
from collections import deque
from collections.abc import Awaitable, Callable, Iterable
from typing import TYPE_CHECKING, Any

from ..errors import ConfigError
from ..message import Message, validate_topic
from ..retry import RetryPolicy

if TYPE_CHECKING:
    from ..runtime.context import Context
    from ..runtime.runtime import Runtime

__all__ = ["Agent", "AgentHandler", "FunctionAgent"]

AgentHandler = Callable[[Message, "Context"], Awaitable[Any]]


class Agent(abc.ABC):
    """Subclass and implement ``async def handle(self, msg, ctx)``; its return value is the reply.

    ``replicas`` coroutine workers compete for the agent's inbox, each handling up to
    ``concurrency`` messages at once (with ``max_concurrency`` set, the runtime's
    self-optimizer tunes it between 1 and that bound); ``timeout`` bounds one message's handling;
    ``history`` keeps the last ``history_size`` messages received.
    """

    #: class-level defaults, overridable per instance through ``__init__``
    role: str = "agent"
    replicas: int = 1
    concurrency: int = 1
    max_concurrency: int | None = None
    timeout: float | None = None
    history_size: int = 100
    lease: float | None = None
    retry: RetryPolicy | None = None
    topics: tuple[str, ...] = ()

    def __init__(
        self,
        name: str | None = None,
        *,
        role: str | None = None,
        replicas: int | None = None,
        concurrency: int | None = None,
        max_concurrency: int | None = None,
        timeout: float | None = None,
        history_size: int | None = None,
        lease: float | None = None,
        retry: RetryPolicy | None = None,
        topics: Iterable[str] = (),
    ) -> None:
        self.name = name or getattr(type(self), "name", None) or type(self).__name__
        if role is not None:
            self.role = role
        if replicas is not None:
            self.replicas = replicas
        if concurrency is not None:
            self.concurrency = concurrency
        if max_concurrency is not None:
            self.max_concurrency = max_concurrency
        if timeout is not None:
            self.timeout = timeout
        if history_size is not None:
            self.history_size = history_size
        if lease is not None:
            self.lease = lease
        if retry is not None:
            self.retry = retry
        self.topics = tuple(topics) or tuple(self.topics)
        self._validate()
        self.history: deque[Message] = deque(maxlen=self.history_size)

    def _validate(self) -> None:
        where = f"agent {self.name!r}"
        if not isinstance(self.name, str) or not self.name:
            raise ConfigError("an agent needs a non-empty name")
        try:
            validate_topic(f"agent.{self.name}")
        except ValueError as exc:
            raise ConfigError(f"{where}: invalid name: {exc}") from exc
        for field in ("replicas", "concurrency"):
            value = getattr(self, field)
            if not isinstance(value, int) or value < 1:
                raise ConfigError(f"{where}: {field} must be an int >= 1, got {value!r}")
        if self.max_concurrency is not None and (
            not isinstance(self.max_concurrency, int) or self.max_concurrency < self.concurrency
        ):
            raise ConfigError(
                f"{where}: max_concurrency must be an int >= concurrency ({self.concurrency}), "
                f"got {self.max_concurrency!r}"
            )
        if self.history_size < 0:
            raise ConfigError(f"{where}: history_size must be >= 0, got {self.history_size}")
        for field in ("timeout", "lease"):
            value = getattr(self, field)
            if value is not None and not (value > 0 and math.isfinite(value)):
                raise ConfigError(f"{where}: {field} must be a positive number, got {value!r}")
        for topic in self.topics:
            validate_topic(topic)

    @abc.abstractmethod
    async def handle(self, msg: Message, ctx: Context) -> Any:
        """Handle one message; the return value (JSON) is the reply to a request."""

    async def on_start(self, runtime: Runtime) -> None:  # noqa: B027 - optional hook
        """Called once when the runtime starts the agent, before its replicas."""

    async def on_stop(self) -> None:  # noqa: B027 - optional hook
        """Called once when the runtime stops."""

    def __repr__(self) -> str:
        return (
            f"<{type(self).__name__} {self.name!r} role={self.role!r} "
            f"replicas={self.replicas} concurrency={self.concurrency}>"
        )


class FunctionAgent(Agent):
    """An agent whose handler is a plain ``async def fn(msg, ctx)``."""

    def __init__(self, name: str, handler: AgentHandler, **options: Any) -> None:
        import inspect

        if not inspect.iscoroutinefunction(handler) and not inspect.iscoroutinefunction(
            getattr(handler, "__call__", None)  # noqa: B004 - async callable objects
        ):
            raise ConfigError(
                f"agent {name!r}: the handler must be an 'async def' function taking (msg, ctx)"
            )
        self._handler = handler
        super().__init__(name, **options)
        self.__doc__ = getattr(handler, "__doc__", None)

    async def handle(self, msg: Message, ctx: Context) -> Any:
        return await self._handler(msg, ctx)
