"""The Swarm-compatible types: :class:`Agent`, :class:`Result`, :class:`Response`, :class:`Usage`.

Field for field the same as OpenAI Swarm's (``swarm.types``), plus ``Agent.tool_timeout``,
``Response.run_id`` and ``Response.usage``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

__all__ = ["Agent", "AgentFunction", "Response", "Result", "Usage"]

AgentFunction = Callable[..., Any]
"""A tool: a sync or async function returning a string, a :class:`Result` or an :class:`Agent`."""


class Agent(BaseModel):
    """An LLM agent: a model, its instructions (a string, or a function of the context
    variables returning one) and the functions it may call as tools."""

    model_config = ConfigDict(arbitrary_types_allowed=True)

    name: str = "Agent"
    model: str = "gpt-4o"
    instructions: str | Callable[..., str] = "You are a helpful agent."
    functions: list[AgentFunction] = Field(default_factory=list)
    tool_choice: str | dict[str, Any] | None = None
    parallel_tool_calls: bool = True
    #: Seconds one call of one of this agent's functions may take; past it the model is told
    #: the tool timed out (None: the Swarm's ``tool_timeout``).
    tool_timeout: float | None = None


class Result(BaseModel):
    """What a function may return: a value for the model, a handoff, context updates."""

    value: str = ""
    agent: Agent | None = None
    context_variables: dict[str, Any] = Field(default_factory=dict)


class Usage(BaseModel):
    """Tokens and model calls of a run (replayed steps count the tokens they once cost)."""

    prompt_tokens: int = 0
    completion_tokens: int = 0
    total_tokens: int = 0
    requests: int = 0  # model calls made by this call of run / arun
    replayed_steps: int = 0  # journaled steps (model answers and tool results) reused

    def add(self, usage: dict[str, Any] | None) -> None:
        if not usage:
            return
        prompt = int(usage.get("prompt_tokens") or 0)
        completion = int(usage.get("completion_tokens") or 0)
        self.prompt_tokens += prompt
        self.completion_tokens += completion
        self.total_tokens += int(usage.get("total_tokens") or prompt + completion)


class Response(BaseModel):
    """The outcome of a run: the new messages only (as Swarm), the last active agent, the
    context variables, the run's id (to resume it) and its token usage."""

    messages: list[dict[str, Any]] = Field(default_factory=list)
    agent: Agent | None = None
    context_variables: dict[str, Any] = Field(default_factory=dict)
    run_id: str | None = None
    usage: Usage = Field(default_factory=Usage)
