"""Tables between pipeline tasks: results stored as artifacts, inputs handed over as tables.

A pipeline agent's table result (a Polars, Arrow or pandas table; a built-in's frame) is
written to the run's artifact store (see :mod:`swarm_runtime.artifacts`) in a worker
thread, complete and checksummed before the handler returns; the reply carries only its
:class:`~swarm_runtime.artifacts.ArtifactRef`. So the task's result is recorded only
once its artifact is whole, and a resumed run reads finished artifacts, verified.

Built-in agents read upstream artifacts as lazy Polars frames; a user agent finds each
upstream table in ``msg.payload["inputs"]`` as a :class:`TableInput`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import anyio

from ..agents.base import Agent, AgentHandler
from ..agents.builtin import Builtin, is_frame
from ..artifacts import (
    ArtifactLocation,
    ArtifactRef,
    TableInput,
    is_artifact_ref,
    is_table_value,
    to_lazy,
)
from ..message import Message
from ..runtime.context import Context
from ._run import task_of

__all__ = ["builtin_handler", "table_handler", "wrap_agent"]


def _where(msg: Message) -> tuple[str, str]:
    """(run id, task name) of a task message, for naming its artifact."""
    found = task_of(msg.correlation_id)
    if found is not None:
        return found
    return msg.workflow_id or "adhoc", msg.id


def _store_result(
    result: Any, location: ArtifactLocation, ctx: Context, msg: Message
) -> dict[str, Any]:
    """Write a table result as an artifact of the run (blocking: in a worker thread)."""
    run, task = _where(msg)
    store = location.store_for(ctx.runtime.backend)
    return store.write_table(
        to_lazy(result, what=f"the result of {task!r}"), run=run, name=task
    ).to_json()


def builtin_handler(builtin: Builtin[Any], location: ArtifactLocation) -> AgentHandler:
    """A coroutine agent running a built-in in a worker thread; a table result is stored."""

    def work(
        params: Mapping[str, Any], inputs: Mapping[str, Any], ctx: Context, msg: Message
    ) -> Any:
        result = builtin.compute(params, inputs)
        if is_frame(result):
            return _store_result(result, location, ctx, msg)
        return result

    async def handle(msg: Message, ctx: Context) -> Any:
        payload = msg.payload if isinstance(msg.payload, dict) else {}
        params = payload.get("params") or {}
        inputs = payload.get("inputs") or {}
        return await anyio.to_thread.run_sync(work, params, inputs, ctx, msg)

    handle.__name__ = builtin.name.replace(".", "_")
    handle.__doc__ = builtin.description
    return handle


def _with_tables(msg: Message) -> Message:
    """The message with each upstream artifact reference in ``inputs`` as a TableInput."""
    payload = msg.payload
    if not isinstance(payload, dict):
        return msg
    inputs = payload.get("inputs")
    if not isinstance(inputs, dict) or not any(is_artifact_ref(v) for v in inputs.values()):
        return msg
    tables = {
        name: TableInput(ArtifactRef.from_json(value)) if is_artifact_ref(value) else value
        for name, value in inputs.items()
    }
    return msg.model_copy(update={"payload": {**payload, "inputs": tables}})


def table_handler(
    handler: Callable[[Message, Context], Any], location: ArtifactLocation
) -> AgentHandler:
    """``handler`` with tables in and out: upstream tables arrive as TableInput, and a
    Polars / Arrow / pandas table it returns is stored as an artifact."""

    async def handle(msg: Message, ctx: Context) -> Any:
        result = await handler(_with_tables(msg), ctx)
        if is_table_value(result):
            return await anyio.to_thread.run_sync(_store_result, result, location, ctx, msg)
        return result

    handle.__name__ = getattr(handler, "__name__", "handle")
    handle.__doc__ = getattr(handler, "__doc__", None)
    return handle


def wrap_agent(agent: Agent, location: ArtifactLocation) -> Agent:
    """Give a user's Agent subclass instance the same table handling (in place)."""
    agent.handle = table_handler(agent.handle, location)  # type: ignore[method-assign,assignment]
    return agent
