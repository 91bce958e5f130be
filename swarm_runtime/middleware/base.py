"""The middleware stack: layers around every message an agent handles, folded into one callable.

A layer sees the message and its :class:`~swarm_runtime.Context` on the way in and the
result (or the exception) on the way out. It can observe (metrics, tracing), refuse
(:class:`~swarm_runtime.errors.Veto`, :class:`~swarm_runtime.errors.Defer`), ask for a retry
(:class:`~swarm_runtime.errors.Retry`) or wrap the handler entirely (a time limit, a span).

Three ways to write one:

* subclass :class:`Middleware` and override any of ``before`` / ``after`` / ``on_error``
  (dramatiq's hooks); the stack calls only the hooks a class overrides;
* subclass :class:`Middleware` and override ``wrap(call_next, agent)`` (starlette's style);
* a plain ``async def layer(msg, ctx, call_next)`` function.

The stack of an agent is folded once, when the agent starts: a message goes through a
chain of closures, with no list walked per message, and a layer whose ``applies_to(agent)``
is False costs that agent nothing.
"""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable, Iterable
from typing import TYPE_CHECKING, Any, TypeAlias

from ..errors import ConfigError

if TYPE_CHECKING:
    from ..agents.base import Agent
    from ..message import Message
    from ..runtime.context import Context

__all__ = ["CallNext", "Handler", "LayerFunction", "Middleware", "as_middleware", "fold"]

Handler: TypeAlias = "Callable[[Message, Context], Awaitable[Any]]"
"""What a layer wraps and returns: ``await handler(msg, ctx)`` gives the result."""
CallNext: TypeAlias = Handler
"""The rest of the stack, down to the agent's handler."""
LayerFunction: TypeAlias = "Callable[[Message, Context, CallNext], Awaitable[Any]]"
"""A middleware written as a function: ``async def layer(msg, ctx, call_next)``."""


class Middleware:
    """One layer of the stack; override the hooks you need (see the module docstring).

    An exception raised by a hook is the message's failure, exactly like one raised by the
    handler: it is retried with backoff and dead-lettered after the last attempt.
    """

    def applies_to(self, agent: Agent) -> bool:
        """Whether this layer is in ``agent``'s stack (default: every agent)."""
        return True

    async def before(self, msg: Message, ctx: Context) -> None:
        """Runs before the rest of the stack; raise Veto / Defer / Retry to stop it."""

    async def after(self, msg: Message, ctx: Context, result: Any) -> None:
        """Runs after the rest of the stack returned ``result`` (not called on failure)."""

    async def on_error(self, msg: Message, ctx: Context, error: Exception) -> None:
        """Runs when the rest of the stack raised ``error``; it propagates afterwards
        (raise another exception, e.g. ``Retry(...) from error``, to replace it)."""

    def wrap(self, call_next: CallNext, agent: Agent) -> Handler:
        """The handler this layer makes of ``call_next`` for ``agent``.

        The default runs the overridden hooks around ``call_next``; a layer that
        overrides none of them adds nothing to the chain.
        """
        cls = type(self)
        before = self.before if cls.before is not Middleware.before else None
        after = self.after if cls.after is not Middleware.after else None
        on_error = self.on_error if cls.on_error is not Middleware.on_error else None
        if before is None and after is None and on_error is None:
            return call_next

        async def layer(msg: Message, ctx: Context) -> Any:
            if before is not None:
                await before(msg, ctx)
            if on_error is None:
                result = await call_next(msg, ctx)
            else:
                try:
                    result = await call_next(msg, ctx)
                except Exception as error:
                    await on_error(msg, ctx, error)
                    raise
            if after is not None:
                await after(msg, ctx, result)
            return result

        return layer

    def __repr__(self) -> str:
        return f"<{type(self).__name__} middleware>"


class _FunctionLayer(Middleware):
    """A middleware written as ``async def layer(msg, ctx, call_next)``."""

    def __init__(self, function: LayerFunction) -> None:
        self.function = function

    def wrap(self, call_next: CallNext, agent: Agent) -> Handler:
        function = self.function

        def layer(msg: Message, ctx: Context) -> Awaitable[Any]:
            return function(msg, ctx, call_next)  # no extra coroutine frame per message

        return layer

    def __repr__(self) -> str:
        return f"<middleware {getattr(self.function, '__qualname__', self.function)!r}>"


def as_middleware(layer: Middleware | LayerFunction) -> Middleware:
    """A :class:`Middleware` for ``layer`` (an instance, or an ``async def`` of three args)."""
    if isinstance(layer, Middleware):
        return layer
    if isinstance(layer, type):
        raise ConfigError(f"pass an instance of {layer.__name__}, e.g. {layer.__name__}()")
    if not callable(layer):
        raise ConfigError(
            f"middleware must be a Middleware or an 'async def layer(msg, ctx, call_next)', "
            f"got {type(layer).__name__}"
        )
    call = type(layer).__call__ if not inspect.isfunction(layer) else layer
    if not (inspect.iscoroutinefunction(layer) or inspect.iscoroutinefunction(call)):
        raise ConfigError(
            f"middleware function {getattr(layer, '__qualname__', layer)!r} must be an "
            f"'async def layer(msg, ctx, call_next)'"
        )
    try:
        inspect.signature(layer).bind(None, None, None)
    except TypeError as exc:
        raise ConfigError(
            f"middleware function {getattr(layer, '__qualname__', layer)!r} must take "
            f"(msg, ctx, call_next): {exc}"
        ) from exc
    except ValueError:  # no signature to inspect (a builtin): trust it
        pass
    return _FunctionLayer(layer)


def fold(layers: Iterable[Middleware], agent: Agent, handler: Handler) -> Handler:
    """Fold ``layers`` (outermost first) around ``handler`` into one callable for ``agent``."""
    call = handler
    for layer in reversed(list(layers)):
        if layer.applies_to(agent):
            call = layer.wrap(call, agent)
    return call
