"""Building a chat-completions request from an agent and the history, and its fingerprint.

Swarm's private message keys (``sender``, ``tool_name``) stay in ``Response.messages`` but
never go on the wire (strict OpenAI-compatible servers reject unknown keys).
"""

from __future__ import annotations

import hashlib
from collections import defaultdict
from collections.abc import Sequence
from typing import Any

import orjson

from .types import Agent

__all__ = ["PRIVATE_KEYS", "fingerprint", "request_params", "wire_message"]

PRIVATE_KEYS = frozenset({"sender", "tool_name"})


def wire_message(message: dict[str, Any]) -> dict[str, Any]:
    """``message`` as sent: no private keys, no empty optional fields."""
    return {
        key: value
        for key, value in message.items()
        if key not in PRIVATE_KEYS and (value is not None or key == "content")
    }


def instructions_for(agent: Agent, context_variables: dict[str, Any]) -> str:
    """The system prompt (a callable gets the context variables, missing keys read as '')."""
    if callable(agent.instructions):
        return str(agent.instructions(defaultdict(str, context_variables)))
    return agent.instructions


def request_params(
    agent: Agent,
    history: Sequence[dict[str, Any]],
    context_variables: dict[str, Any],
    tools: list[dict[str, Any]],
    model_override: str | None,
) -> dict[str, Any]:
    """The ``chat.completions.create`` arguments for the agent's next turn."""
    messages = [{"role": "system", "content": instructions_for(agent, context_variables)}]
    messages.extend(wire_message(message) for message in history)
    params: dict[str, Any] = {"model": model_override or agent.model, "messages": messages}
    if tools:
        params["tools"] = tools
        params["parallel_tool_calls"] = agent.parallel_tool_calls
    if agent.tool_choice is not None:
        params["tool_choice"] = agent.tool_choice
    return params


def _digest(value: Any) -> str:
    return hashlib.sha256(orjson.dumps(value, option=orjson.OPT_SORT_KEYS)).hexdigest()[:16]


def fingerprint(params: dict[str, Any]) -> dict[str, str]:
    """Digests of what a request asks, part by part (to name what changed on a replay)."""
    messages = params["messages"]
    return {
        "model": str(params["model"]),
        "instructions": _digest(messages[0]["content"] if messages else ""),
        "tools": _digest(
            [params.get("tools"), params.get("tool_choice"), params.get("parallel_tool_calls")]
        ),
        "messages": _digest(messages[1:]),
    }
