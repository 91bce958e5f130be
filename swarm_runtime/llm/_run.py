"""One run of the agent loop: model turns, tool calls, handoffs, and the journal.

With a journal, each model answer and each tool result is written under (run_id, step)
before the run moves on: step 0 is the run's start (its input), then a model turn takes one
step and each of its tool calls the next ones, in the model's order. A step already in the
journal is replayed (no model call, no tool run) after checking the request it answers is
the one being made now.
"""

from __future__ import annotations

import copy
from collections.abc import AsyncIterator, Callable
from typing import Any, Literal

import anyio

from .. import _json
from .._logging import get_logger
from ..errors import JournalMismatchError, LLMError
from ._calls import ModelCaller
from ._request import _digest, fingerprint, request_params
from ._tools import ToolOutcome, call_tool, compile_tool, run_tool_calls
from .journal import Record, RunJournal
from .types import Agent, Response, Usage

__all__ = ["MismatchPolicy", "Run"]

log = get_logger("swarm_runtime.llm")

MismatchPolicy = Literal["error", "journal"]
"""On a replayed step whose request changed: raise, or trust what the journal holds."""


class Run:
    """The state of one run while the loop executes it."""

    def __init__(
        self,
        *,
        run_id: str,
        caller: ModelCaller,
        journal: RunJournal | None,
        agent: Agent,
        messages: list[dict[str, Any]],
        context_variables: dict[str, Any],
        model_override: str | None,
        debug: bool,
        find_agent: Callable[[str], Agent],
        remember_agent: Callable[[Agent], None],
        tool_limiter: anyio.CapacityLimiter,
        tool_timeout: float | None,
        on_mismatch: MismatchPolicy,
    ) -> None:
        self.run_id = run_id
        self.caller = caller
        self.journal = journal
        self.active: Agent = agent
        self.history = copy.deepcopy(messages)
        self.init_len = len(self.history)
        self.context_variables = copy.deepcopy(context_variables)
        self.model_override = model_override
        self.debug = debug
        self.find_agent = find_agent
        self.remember_agent = remember_agent
        self.tool_limiter = tool_limiter
        self.tool_timeout = tool_timeout
        self.on_mismatch = on_mismatch
        self.usage = Usage()
        self.step = 0
        self.turns = 0
        self.last: dict[str, Any] = {}
        self._start: Record | None = None  # written with the first step's record

    # ------------------------------------------------------------------ journal

    def _replayed(self, kind: str) -> Record | None:
        if self.journal is None:
            return None
        record = self.journal.records.get(self.step)
        if record is not None and record.get("k") != kind:
            raise LLMError(
                f"run {self.run_id!r}: step {self.step} of the journal is a {record.get('k')!r} "
                f"record where a {kind!r} one was expected; the journal does not belong to "
                "this run's code"
            )
        return record

    def _mismatch(self, step: int, differences: list[str], what: str) -> None:
        message = (
            f"run {self.run_id!r} cannot be resumed: at step {step} ({what}) the "
            f"{', '.join(differences)} changed since the journal was written; start a new "
            "run, or pass on_mismatch='journal' to replay what the journal holds"
        )
        if self.on_mismatch == "error":
            raise JournalMismatchError(
                message, run_id=self.run_id, step=step, differences=differences
            )
        log.warning("replayed step differs from the journal", run_id=self.run_id, step=step)

    def _count_replayed(self, kind: str) -> None:
        self.usage.replayed_steps += 1
        if self.caller.metrics is not None:
            self.caller.metrics.replayed.labels(kind).inc()

    async def _write(self, record: Record) -> None:
        if self.journal is not None:
            _json.check_json(record, what=f"journal record of run {self.run_id} step")
            if self._start is not None:  # the start goes with the first step: one fsync
                start, self._start = self._start, None
                await self.journal.write(start, record)
            else:
                await self.journal.write(record)

    async def begin(self) -> None:
        """Journal the run's input (step 0), or check it against the journal on a resume."""
        record = self._replayed("start")
        digest = _digest([self.history, self.context_variables]) if self.journal is not None else ""
        if record is not None:
            differences = [name for name in ("agent",) if record.get(name) != self.active.name]
            if record.get("input") != digest:
                differences.append("input messages or context variables")
            if differences:
                self._mismatch(0, differences, "the run's input")
        elif self.journal is not None:
            self._start = {"step": 0, "k": "start", "agent": self.active.name, "input": digest}
        self.step = 1

    # ------------------------------------------------------------------ model turns

    async def model_turn(self, stream: bool) -> AsyncIterator[dict[str, Any]]:
        """Ask the active agent's model (or replay its answer); stream events if asked."""
        agent = self.active
        tools = [compile_tool(func).schema for func in agent.functions]
        params = request_params(
            agent, self.history, self.context_variables, tools, self.model_override
        )
        asked = fingerprint(params) if self.journal is not None else {}
        if self.debug:
            log.info("getting chat completion", agent=agent.name, messages=params["messages"])
        record = self._replayed("model")
        if record is not None:
            stored = record.get("request") or {}
            differences = [part for part, value in asked.items() if stored.get(part) != value]
            if differences:
                self._mismatch(self.step, differences, f"a turn of agent {agent.name!r}")
            message = dict(record["message"])
            self.usage.add(record.get("usage"))
            self._count_replayed("model")
            if stream:
                yield {"delim": "start"}
                yield {**message, "sender": agent.name}
                yield {"delim": "end"}
        else:
            if stream:
                message = {"content": "", "role": "assistant", "function_call": None}
                usage: dict[str, Any] | None = None
                calls: dict[int, dict[str, Any]] = {}
                yield {"delim": "start"}
                async for chunk in self.caller.stream(
                    {**params, "stream_options": {"include_usage": True}}
                ):
                    usage = chunk.get("usage") or usage
                    for choice in (chunk.get("choices") or ())[:1]:
                        delta = dict(choice.get("delta") or {})
                        if delta.get("role") == "assistant":
                            delta["sender"] = agent.name  # the active agent, not the first one
                        yield delta
                        _merge_delta(message, calls, delta)
                yield {"delim": "end"}
                message["tool_calls"] = [calls[i] for i in sorted(calls)] or None
            else:
                message, usage = await self.caller.complete(params)
            self.usage.add(usage)
            self.usage.requests += 1
            await self._write(
                {
                    "step": self.step,
                    "k": "model",
                    "agent": agent.name,
                    "request": asked,
                    "message": message,
                    "usage": usage,
                }
            )
        if self.debug:
            log.info("received completion", agent=agent.name, message=message)
        message["sender"] = agent.name
        self.history.append(message)
        self.last = message
        self.step += 1
        self.turns += 1

    # ------------------------------------------------------------------ tools

    async def tool_calls(self, tool_calls: list[dict[str, Any]]) -> None:
        """Run (or replay) the calls of the last turn; the last handoff wins, as in Swarm."""
        agent = self.active
        tools = {tool.name: tool for tool in map(compile_tool, agent.functions)}
        base = self.step
        timeout = agent.tool_timeout if agent.tool_timeout is not None else self.tool_timeout

        async def run_one(index: int, tool_call: dict[str, Any]) -> ToolOutcome:
            step = base + index
            call_id = str(tool_call.get("id", ""))
            record = self.journal.records.get(step) if self.journal is not None else None
            if record is not None:
                if record.get("k") != "tool" or record.get("call_id") != call_id:
                    self._mismatch(step, ["tool call"], f"tool call {call_id!r}")
                self._count_replayed("tool")
                handoff = record.get("handoff")
                return ToolOutcome(
                    call_id,
                    str(record.get("name", "")),
                    str(record.get("content", "")),
                    dict(record.get("context_variables") or {}),
                    self.find_agent(handoff) if handoff else None,
                    bool(record.get("error")),
                )
            outcome = await call_tool(
                tool_call,
                tools,
                self.context_variables,
                key=f"{self.run_id}-{step}",
                timeout=timeout,
                limiter=self.tool_limiter,
            )
            if outcome.agent is not None:
                self.remember_agent(outcome.agent)
            await self._write(
                {
                    "step": step,
                    "k": "tool",
                    "call_id": call_id,
                    "name": outcome.name,
                    "content": outcome.content,
                    "context_variables": outcome.context_variables,
                    "handoff": outcome.agent.name if outcome.agent is not None else None,
                    "error": outcome.error,
                }
            )
            return outcome

        outcomes = await run_tool_calls(tool_calls, run_one, parallel=agent.parallel_tool_calls)
        self.step = base + len(tool_calls)
        for outcome in outcomes:
            if self.debug:
                log.info("tool result", tool=outcome.name, content=outcome.content)
            self.history.append(outcome.message())
            self.context_variables.update(outcome.context_variables)
            if outcome.agent is not None:
                self.active = outcome.agent

    def response(self) -> Response:
        return Response(
            messages=self.history[self.init_len :],
            agent=self.active,
            context_variables=self.context_variables,
            run_id=self.run_id,
            usage=self.usage,
        )


def _merge_delta(
    message: dict[str, Any], calls: dict[int, dict[str, Any]], delta: dict[str, Any]
) -> None:
    """Fold one streamed delta into the message (every tool-call delta, not only the first)."""
    content = delta.get("content")
    if content:
        message["content"] += content
    for part in delta.get("tool_calls") or ():
        index = int(part.get("index") or 0)
        call = calls.setdefault(
            index, {"id": "", "type": "function", "function": {"name": "", "arguments": ""}}
        )
        if part.get("id"):
            call["id"] += part["id"]
        if part.get("type"):
            call["type"] = part["type"]
        function = part.get("function") or {}
        if function.get("name"):
            call["function"]["name"] += function["name"]
        if function.get("arguments"):
            call["function"]["arguments"] += function["arguments"]
