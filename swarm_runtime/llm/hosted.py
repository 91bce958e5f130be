"""An LLM agent hosted on the runtime: ``await rt.request("triage", {"messages": [...]})``.

:class:`LLMAgent` is a runtime agent (replicas, retries, dead-lettering, circuit breaker,
durable queue) whose handler runs a Swarm loop. Its run id is derived from the message id,
so when the queue delivers a message again (a retry, a crashed worker) the run replays its
journal (by default the runtime backend's ``step_journal()``) instead of paying for the
model calls again. A handoff to another *runtime* agent
named in ``handoffs`` ends the loop and becomes a :meth:`Context.handoff` (recorded by the
:class:`~swarm_runtime.HandoffProtocol`): the target continues the conversation and answers
the requester. Handoffs to plain :class:`Agent` objects stay inside the run, as in Swarm.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

from ..agents.base import Agent as RuntimeAgent
from ..errors import ArgumentTypeError, PayloadError
from ..message import Message
from ..retry import RetryPolicy
from ..runtime.context import Context
from ._swarm import Swarm
from .journal import StepJournal
from .metrics import LLMMetrics, metrics_for
from .types import Agent, AgentFunction, Response

if TYPE_CHECKING:
    from ..runtime.runtime import Runtime

__all__ = ["LLMAgent", "conversation", "handoff_function"]

_UNSAFE = re.compile(r"[^A-Za-z0-9_-]")


def handoff_function(target: str) -> AgentFunction:
    """A ``transfer_to_<target>`` tool handing the conversation to runtime agent ``target``."""
    stub = Agent(name=target)

    def transfer() -> Agent:
        return stub

    transfer.__name__ = f"transfer_to_{_UNSAFE.sub('_', target)}"
    transfer.__doc__ = f"Hand the conversation over to the {target!r} agent."
    return transfer


def conversation(payload: Any) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """The messages and context variables of a request or a pipeline task's payload.

    ``{"messages": [...], "context_variables": {...}}`` is taken as is; a task payload
    (``{"params": {...}, "inputs": {...}}``) becomes one user message: ``params.prompt``
    followed by each upstream task's result; a plain string is the user message.
    """
    if isinstance(payload, str):
        return [{"role": "user", "content": payload}], {}
    if not isinstance(payload, Mapping):
        raise PayloadError(
            "an LLM agent takes {'messages': [...], 'context_variables': {...}}, a pipeline "
            f"task or a string, got {type(payload).__name__}",
            path="payload",
            type_name=type(payload).__name__,
        )
    context_variables = dict(payload.get("context_variables") or {})
    if "messages" in payload:
        messages = payload["messages"]
        if not isinstance(messages, list) or not all(isinstance(m, dict) for m in messages):
            raise PayloadError(
                "payload.messages must be a list of message objects", path="payload.messages"
            )
        return list(messages), context_variables
    params = dict(payload.get("params") or {})
    context_variables.update(params.get("context_variables") or {})
    parts = [str(params["prompt"])] if params.get("prompt") else []
    for name, result in (payload.get("inputs") or {}).items():
        text = result if isinstance(result, str) else _json_text(result)
        parts.append(f"{name}:\n{text}" if len(payload["inputs"]) > 1 else text)
    if not parts:
        raise PayloadError("an LLM task needs params.prompt or upstream inputs", path="payload")
    return [{"role": "user", "content": "\n\n".join(parts)}], context_variables


def _json_text(value: Any) -> str:
    import orjson

    return orjson.dumps(value, option=orjson.OPT_INDENT_2).decode()


class LLMAgent(RuntimeAgent):
    """Runs ``agent`` (a Swarm :class:`Agent`) for each message; replies with the response.

    The reply is ``{"content": last assistant text, "messages": new messages, "agent": last
    active agent, "context_variables": ..., "run_id": ..., "usage": ...}``.
    """

    role = "llm"

    def __init__(
        self,
        name: str | None = None,
        agent: Agent | None = None,
        *,
        client: Any = None,
        swarm: Swarm | None = None,
        store: str | StepJournal | None = None,
        handoffs: Iterable[str] = (),
        agents: Iterable[Agent] = (),
        max_turns: float = math.inf,
        role: str | None = None,
        replicas: int | None = None,
        concurrency: int | None = None,
        timeout: float | None = None,
        lease: float | None = None,
        retry: RetryPolicy | None = None,
    ) -> None:
        if agent is None:
            raise ArgumentTypeError("LLMAgent needs agent=Agent(...) (a swarm_runtime.llm.Agent)")
        super().__init__(
            name or agent.name,
            role=role,
            replicas=replicas,
            concurrency=concurrency,
            timeout=timeout,
            lease=lease,
            retry=retry,
        )
        self.handoffs = tuple(handoffs)
        tools = [handoff_function(target) for target in self.handoffs]
        self.agent = agent.model_copy(update={"functions": [*agent.functions, *tools]})
        stubs = [Agent(name=target) for target in self.handoffs]
        self._client = client
        self._store = store
        self._known = [*agents, *stubs]
        self._swarm = swarm
        self._metrics: LLMMetrics | None = None
        self.max_turns = max_turns

    def swarm(self) -> Swarm:
        """The Swarm running this agent (made on first use, from ``client`` and ``store``)."""
        if self._swarm is None:
            self._swarm = Swarm(
                self._client, store=self._store, agents=self._known, metrics=self._metrics
            )
        return self._swarm

    async def on_start(self, runtime: Runtime) -> None:
        if self._store is None:  # journal on the runtime's backend: durable where it is
            self._store = runtime.backend.step_journal()
        exporter = runtime.services.exporter if runtime.services is not None else None
        if exporter is not None and self._metrics is None:  # scraped with the runtime's
            self._metrics = metrics_for(exporter.registry)

    async def on_stop(self) -> None:
        if self._swarm is not None:
            await self._swarm.aclose()
            self._swarm = None

    def _is_runtime_handoff(self, agent: Agent) -> bool:
        return agent.name in self.handoffs and agent.name != self.name

    async def handle(self, msg: Message, ctx: Context) -> Any:
        messages, context_variables = conversation(msg.payload)
        events = self.swarm()._events(
            self.agent,
            messages,
            context_variables,
            None,
            False,
            False,
            self.max_turns,
            True,
            f"{_UNSAFE.sub('_', self.name)}-{_UNSAFE.sub('_', msg.id)}",
            self._is_runtime_handoff,
        )
        response: Response | None = None
        async for event in events:
            response = event.get("response", response)
        assert response is not None
        target = response.agent
        if target is not None and self._is_runtime_handoff(target):
            ctx.log.info("llm handoff", target=target.name, run_id=response.run_id)
            return await ctx.handoff(
                target.name,
                {
                    "messages": [*messages, *response.messages],
                    "context_variables": response.context_variables,
                },
                reason=f"{self.agent.name} handed the conversation to {target.name}",
            )
        return reply_of(response)


def reply_of(response: Response) -> dict[str, Any]:
    """A hosted agent's JSON reply."""
    content = next(
        (
            m.get("content")
            for m in reversed(response.messages)
            if m.get("role") == "assistant" and m.get("content")
        ),
        None,
    )
    return {
        "content": content,
        "messages": response.messages,
        "agent": response.agent.name if response.agent is not None else None,
        "context_variables": response.context_variables,
        "run_id": response.run_id,
        "usage": response.usage.model_dump(),
    }
