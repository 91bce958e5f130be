"""Functions as tools: their JSON schema from type hints, and running the model's calls.

Fixes to Swarm's ``function_to_json`` / ``handle_tool_calls``: the schema comes from the type
hints through pydantic (``list[str]``, ``Literal``, enums, ``Optional``, pydantic models;
parameters with defaults are not required; the docstring is the description), and the
arguments are validated into those types before the call. ``context_variables`` (and
``idempotency_key``) are found in the signature, not in ``co_varnames``, and left out of the
schema. Malformed arguments, an unknown tool, a function that raises or runs past its timeout
all go back to the model as the tool's answer, and the run continues.
"""

from __future__ import annotations

import functools
import inspect
import json
import typing
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import anyio
import pydantic

from .._logging import get_logger
from ..errors import LLMError
from .types import Agent, AgentFunction, Result

__all__ = ["CONTEXT_VARIABLES", "IDEMPOTENCY_KEY", "Tool", "ToolOutcome", "compile_tool"]

log = get_logger("swarm_runtime.llm")

CONTEXT_VARIABLES = "context_variables"
IDEMPOTENCY_KEY = "idempotency_key"
_HIDDEN = frozenset({CONTEXT_VARIABLES, IDEMPOTENCY_KEY})


@dataclass(frozen=True, slots=True)
class Tool:
    """One function made a tool: its schema, its argument model and how to call it."""

    name: str
    func: AgentFunction
    schema: dict[str, Any]
    arguments: type[pydantic.BaseModel]
    wants_context: bool
    wants_key: bool
    is_async: bool

    def parse(self, raw: str | None) -> dict[str, Any]:
        """The call's arguments, validated into the function's types (ValueError if bad)."""
        data = json.loads(raw or "{}")
        if not isinstance(data, dict):
            raise ValueError(f"arguments must be a JSON object, got {type(data).__name__}")
        validated = self.arguments.model_validate(data)
        return {name: getattr(validated, name) for name in type(validated).model_fields}


def compile_tool(func: AgentFunction) -> Tool:
    """Describe ``func`` as a tool (cached per function when it is hashable)."""
    try:
        hash(func)
    except TypeError:
        return _compile(func)
    return _compile_cached(func)


def _compile(func: AgentFunction) -> Tool:
    name = getattr(func, "__name__", None) or type(func).__name__
    try:
        signature = inspect.signature(func)
    except (TypeError, ValueError) as exc:
        raise LLMError(f"function {name!r} cannot be a tool: no signature ({exc})") from exc
    try:
        hints = typing.get_type_hints(func, include_extras=True)
    except Exception:  # unresolvable forward references: fall back to the raw annotations
        hints = {}
    fields: dict[str, Any] = {}
    for param in signature.parameters.values():
        if param.name in _HIDDEN or param.kind in (param.VAR_POSITIONAL, param.VAR_KEYWORD):
            continue
        if param.kind is param.POSITIONAL_ONLY:
            raise LLMError(f"function {name!r} cannot be a tool: {param.name!r} is positional-only")
        annotation = hints.get(param.name, param.annotation)
        if annotation is inspect.Parameter.empty:
            annotation = str  # as Swarm: an unannotated parameter is a string
        default = ... if param.default is inspect.Parameter.empty else param.default
        fields[param.name] = (annotation, default)
    try:
        model = pydantic.create_model(f"{name}_arguments", **fields)
        parameters = model.model_json_schema()
    except (pydantic.PydanticSchemaGenerationError, pydantic.PydanticUserError, TypeError) as exc:
        raise LLMError(f"function {name!r} cannot be a tool: {exc}") from exc
    parameters.pop("title", None)
    for prop in parameters.get("properties", {}).values():
        if isinstance(prop, dict):
            prop.pop("title", None)
    parameters.setdefault("properties", {})
    parameters.setdefault("required", [])
    schema = {
        "type": "function",
        "function": {
            "name": name,
            "description": inspect.getdoc(func) or "",
            "parameters": parameters,
        },
    }
    call = getattr(func, "__call__", None)  # noqa: B004 - async callable objects count too
    return Tool(
        name=name,
        func=func,
        schema=schema,
        arguments=model,
        wants_context=CONTEXT_VARIABLES in signature.parameters,
        wants_key=IDEMPOTENCY_KEY in signature.parameters,
        is_async=inspect.iscoroutinefunction(func) or inspect.iscoroutinefunction(call),
    )


@dataclass(slots=True)
class ToolOutcome:
    """What one tool call gave: the tool message, context updates, a handoff."""

    call_id: str
    name: str
    content: str
    context_variables: dict[str, Any] = field(default_factory=dict)
    agent: Agent | None = None
    error: bool = False

    def message(self) -> dict[str, Any]:
        """The tool message (``tool_name`` is Swarm's private key; it never goes on the wire)."""
        return {
            "role": "tool",
            "tool_call_id": self.call_id,
            "tool_name": self.name,
            "content": self.content,
        }


def to_result(value: Any) -> Result:
    """A function's return value as a :class:`Result` (Swarm's ``handle_function_result``)."""
    if isinstance(value, Result):
        return value
    if isinstance(value, Agent):
        return Result(value=json.dumps({"assistant": value.name}), agent=value)
    return Result(value=value if isinstance(value, str) else str(value))


async def call_tool(
    tool_call: dict[str, Any],
    tools: dict[str, Tool],
    context_variables: dict[str, Any],
    *,
    key: str,
    timeout: float | None,
    limiter: anyio.CapacityLimiter,
) -> ToolOutcome:
    """Run one tool call; every failure becomes an ``Error: ...`` answer for the model."""
    call_id = str(tool_call.get("id", ""))
    function = tool_call.get("function") or {}
    name = str(function.get("name", ""))
    tool = tools.get(name)
    if tool is None:
        return _failed(call_id, name, f"Error: Tool {name} not found.")
    try:
        kwargs = tool.parse(function.get("arguments"))
    except (ValueError, pydantic.ValidationError) as exc:
        return _failed(call_id, name, f"Error: invalid arguments for tool {name}: {_brief(exc)}")
    if tool.wants_context:
        kwargs[CONTEXT_VARIABLES] = context_variables
    if tool.wants_key:
        kwargs[IDEMPOTENCY_KEY] = key
    try:
        with anyio.fail_after(timeout):
            async with limiter:
                if tool.is_async:
                    value = await tool.func(**kwargs)
                else:
                    value = await anyio.to_thread.run_sync(
                        functools.partial(tool.func, **kwargs), abandon_on_cancel=True
                    )
                if inspect.isawaitable(value):
                    value = await value
        result = to_result(value)
    except TimeoutError:
        return _failed(call_id, name, f"Error: tool {name} timed out after {timeout:g} s.")
    except Exception as exc:
        log.warning("tool failed", tool=name, error=repr(exc))
        return _failed(call_id, name, f"Error: tool {name} raised {type(exc).__name__}: {exc}")
    return ToolOutcome(call_id, name, result.value, dict(result.context_variables), result.agent)


_compile_cached = functools.lru_cache(maxsize=4096)(_compile)


def _failed(call_id: str, name: str, content: str) -> ToolOutcome:
    return ToolOutcome(call_id, name, content, error=True)


def _brief(exc: Exception) -> str:
    if isinstance(exc, pydantic.ValidationError):
        return "; ".join(
            f"{'.'.join(str(p) for p in error['loc']) or 'arguments'}: {error['msg']}"
            for error in exc.errors()
        )
    return str(exc)


async def run_tool_calls(
    tool_calls: Sequence[dict[str, Any]],
    run_one: Callable[[int, dict[str, Any]], Awaitable[ToolOutcome]],
    *,
    parallel: bool,
) -> list[ToolOutcome]:
    """Run every call (concurrently when ``parallel``); outcomes in the model's order."""
    outcomes: list[ToolOutcome | None] = [None] * len(tool_calls)
    if not parallel or len(tool_calls) == 1:
        for index, tool_call in enumerate(tool_calls):
            outcomes[index] = await run_one(index, tool_call)
    else:

        async def one(index: int, tool_call: dict[str, Any]) -> None:
            outcomes[index] = await run_one(index, tool_call)

        async with anyio.create_task_group() as tg:
            for index, tool_call in enumerate(tool_calls):
                tg.start_soon(one, index, tool_call)
    return [outcome for outcome in outcomes if outcome is not None]
