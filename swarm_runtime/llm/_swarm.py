"""The :class:`Swarm` client: OpenAI Swarm's ``run`` (sync) plus ``arun`` (async, resumable)."""

from __future__ import annotations

import asyncio
import math
import uuid
from collections.abc import AsyncIterator, Callable, Generator, Iterable
from types import TracebackType
from typing import Any, Literal, Self, overload

import anyio

from ..errors import InvalidArgumentError, LLMError
from ..retry import RetryPolicy
from ..services.circuit import BreakerConfig, CircuitBreaker
from ._calls import DEFAULT_BREAKER, DEFAULT_RETRY, ModelCaller
from ._run import MismatchPolicy, Run
from .journal import StepJournal, open_step_journal
from .limits import RateLimit, RateLimiter
from .metrics import LLMMetrics, default_metrics
from .model import ChatModel, OpenAIChatModel
from .types import Agent, Response

__all__ = ["Swarm"]

Events = AsyncIterator[dict[str, Any]]


class Swarm:
    """Runs agents: a model turn, its tool calls, handoffs, until a turn calls no tool.

    ``client`` is an ``openai.AsyncOpenAI`` or ``openai.OpenAI`` (default: ``AsyncOpenAI()``
    from ``OPENAI_API_KEY`` / ``OPENAI_BASE_URL``) or any :class:`ChatModel`. ``store``
    (``memory://``, ``file://DIR``, ``redis://HOST:PORT/DB`` or a :class:`StepJournal`) makes
    runs durable and resumable by ``run_id``; ``agents`` are the agents a resumed run may
    have been handed off to, found by name.

    Provider policy: ``retry`` (the openai client's own retries are off; a 429's
    ``retry-after`` is honoured), ``rate_limit`` (requests and tokens per window for each
    endpoint and model; shared by every process with a ``redis://`` storage), ``breaker``
    (the endpoint's circuit breaker: a config, a :class:`CircuitBreaker` shared with other
    Swarms on the same endpoint, or None), ``metrics`` (Prometheus; default: the global
    registry). Tools: at most ``tool_concurrency`` run at once, each for at most
    ``tool_timeout`` seconds (an agent's own ``tool_timeout`` wins).
    """

    def __init__(
        self,
        client: Any = None,
        *,
        store: str | StepJournal | None = None,
        agents: Iterable[Agent] = (),
        retry: RetryPolicy = DEFAULT_RETRY,
        rate_limit: RateLimit | None = None,
        breaker: CircuitBreaker | BreakerConfig | None = DEFAULT_BREAKER,
        metrics: LLMMetrics | None = None,
        tool_concurrency: int = 8,
        tool_timeout: float | None = None,
        on_mismatch: MismatchPolicy = "error",
    ) -> None:
        if tool_concurrency < 1:
            raise InvalidArgumentError(f"tool_concurrency must be >= 1, got {tool_concurrency}")
        if on_mismatch not in ("error", "journal"):
            raise InvalidArgumentError(
                f"on_mismatch must be 'error' or 'journal', got {on_mismatch!r}"
            )
        model = client if isinstance(client, ChatModel) else OpenAIChatModel(client)
        self.model: ChatModel = model
        if isinstance(breaker, BreakerConfig):
            breaker = CircuitBreaker(f"llm:{model.endpoint}", breaker)
        self.caller = ModelCaller(
            model,
            retry=retry,
            breaker=breaker,
            limiter=RateLimiter(rate_limit) if rate_limit is not None else None,
            metrics=metrics if metrics is not None else default_metrics(),
        )
        self.journal: StepJournal | None = (
            open_step_journal(store) if isinstance(store, str) else store
        )
        self._agents: dict[str, Agent] = {agent.name: agent for agent in agents}
        self.tool_concurrency = tool_concurrency
        self.tool_timeout = tool_timeout
        self.on_mismatch: MismatchPolicy = on_mismatch
        self._loop: asyncio.AbstractEventLoop | None = None

    # ------------------------------------------------------------------ agents

    def _find_agent(self, name: str) -> Agent:
        agent = self._agents.get(name)
        if agent is None:
            known = ", ".join(sorted(self._agents)) or "none"
            raise LLMError(
                f"the journal hands the run off to agent {name!r}, which this Swarm does not "
                f"know; pass it in Swarm(agents=[...]) (known: {known})"
            )
        return agent

    def _remember_agent(self, agent: Agent) -> None:
        self._agents.setdefault(agent.name, agent)

    # ------------------------------------------------------------------ async API

    @overload
    async def arun(
        self,
        agent: Agent,
        messages: list[dict[str, Any]],
        context_variables: dict[str, Any] | None = ...,
        model_override: str | None = ...,
        stream: Literal[False] = ...,
        debug: bool = ...,
        max_turns: float = ...,
        execute_tools: bool = ...,
        *,
        run_id: str | None = ...,
    ) -> Response: ...

    @overload
    async def arun(
        self,
        agent: Agent,
        messages: list[dict[str, Any]],
        context_variables: dict[str, Any] | None = ...,
        model_override: str | None = ...,
        stream: Literal[True] = ...,
        debug: bool = ...,
        max_turns: float = ...,
        execute_tools: bool = ...,
        *,
        run_id: str | None = ...,
    ) -> Events: ...

    async def arun(
        self,
        agent: Agent,
        messages: list[dict[str, Any]],
        context_variables: dict[str, Any] | None = None,
        model_override: str | None = None,
        stream: bool = False,
        debug: bool = False,
        max_turns: float = math.inf,
        execute_tools: bool = True,
        *,
        run_id: str | None = None,
    ) -> Response | Events:
        """Run ``agent`` on ``messages``; with a store and the ``run_id`` of an earlier run,
        replay its journal (no model call, no tool run) and go on where it stopped.

        ``stream=True`` gives an async iterator of Swarm's events instead, the last one
        ``{"response": Response}``.
        """
        events = self._events(
            agent,
            messages,
            context_variables or {},
            model_override,
            stream,
            debug,
            max_turns,
            execute_tools,
            run_id,
        )
        if stream:
            return events
        response: Response | None = None
        async for event in events:
            response = event.get("response", response)
        assert response is not None
        return response

    async def _events(
        self,
        agent: Agent,
        messages: list[dict[str, Any]],
        context_variables: dict[str, Any],
        model_override: str | None,
        stream: bool,
        debug: bool,
        max_turns: float,
        execute_tools: bool,
        run_id: str | None,
        stop_at: Callable[[Agent], bool] | None = None,
    ) -> Events:
        """The loop every public method shares; ``stop_at(agent)`` ends the run at a handoff
        to ``agent`` (a hosted agent hands such a run to another runtime agent)."""
        run_id = run_id or uuid.uuid4().hex
        self._remember_agent(agent)
        journal = await self.journal.open(run_id) if self.journal is not None else None
        try:
            run = Run(
                run_id=run_id,
                caller=self.caller,
                journal=journal,
                agent=agent,
                messages=messages,
                context_variables=context_variables,
                model_override=model_override,
                debug=debug,
                find_agent=self._find_agent,
                remember_agent=self._remember_agent,
                tool_limiter=anyio.CapacityLimiter(self.tool_concurrency),
                tool_timeout=self.tool_timeout,
                on_mismatch=self.on_mismatch,
            )
            await run.begin()
            while run.turns < max_turns:
                async for event in run.model_turn(stream):
                    yield event
                tool_calls = run.last.get("tool_calls")
                if not tool_calls or not execute_tools:
                    break
                before = run.active
                await run.tool_calls(tool_calls)
                if stop_at is not None and run.active is not before and stop_at(run.active):
                    break
            yield {"response": run.response()}
        finally:
            if journal is not None:
                with anyio.CancelScope(shield=True):
                    await journal.aclose()

    async def aclose(self) -> None:
        """Close the model client (if the Swarm made it) and the store."""
        await self.model.aclose()
        if self.journal is not None:
            await self.journal.aclose()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    # ------------------------------------------------------------------ sync API (Swarm's)

    def run(
        self,
        agent: Agent,
        messages: list[dict[str, Any]],
        context_variables: dict[str, Any] | None = None,
        model_override: str | None = None,
        stream: bool = False,
        debug: bool = False,
        max_turns: float = math.inf,
        execute_tools: bool = True,
    ) -> Any:
        """OpenAI Swarm's ``run``: a :class:`Response`, or with ``stream=True`` a generator of
        its events. Blocks; inside a running event loop use ``await arun(...)`` instead."""
        loop = self._sync_loop()
        events = self._events(
            agent,
            messages,
            context_variables or {},
            model_override,
            stream,
            debug,
            max_turns,
            execute_tools,
            None,
        )
        if stream:
            return _sync_events(loop, events)
        response: Response | None = None
        for event in _sync_events(loop, events):
            response = event.get("response", response)
        return response

    def _sync_loop(self) -> asyncio.AbstractEventLoop:
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            pass
        else:
            raise LLMError(
                "Swarm.run() blocks, so it cannot be called inside a running event loop; "
                "use `await client.arun(...)` there"
            )
        if self._loop is None or self._loop.is_closed():
            # One loop for every sync call: the HTTP client's connections belong to it.
            self._loop = asyncio.new_event_loop()
        return self._loop

    def close(self) -> None:
        """Release the client and store (for sync use; async code uses :meth:`aclose`)."""
        loop = self._sync_loop()
        try:
            loop.run_until_complete(self.aclose())
            loop.run_until_complete(loop.shutdown_asyncgens())
        finally:
            loop.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def __del__(self) -> None:
        loop = getattr(self, "_loop", None)
        if loop is not None and not loop.is_closed() and not loop.is_running():
            loop.close()


def _sync_events(
    loop: asyncio.AbstractEventLoop, events: Events
) -> Generator[dict[str, Any], None, None]:
    """Drive an async event stream from sync code on ``loop``."""
    try:
        while True:
            try:
                event = loop.run_until_complete(anext(events))
            except StopAsyncIteration:
                return
            yield event
    finally:
        loop.run_until_complete(events.aclose())  # type: ignore[attr-defined]
