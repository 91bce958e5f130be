"""Scripted model answers, shared by the in-process model and the HTTP server.

A :class:`Script` hands out its replies in order, one per request, and records every request.
A reply is a :class:`Reply` (built with :func:`reply`, :func:`tool_call`, :func:`tool_calls`,
:func:`error`, :func:`hang`) or a function of the request body returning one.
"""

from __future__ import annotations

import itertools
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

import orjson

__all__ = [
    "Reply",
    "ReplySource",
    "Script",
    "ScriptedRequest",
    "error",
    "hang",
    "reply",
    "tool_call",
    "tool_calls",
]


@dataclass(frozen=True, slots=True)
class Reply:
    """One scripted answer: content and/or tool calls, or an error status, after ``delay``."""

    content: str | None = None
    tool_calls: tuple[tuple[str, dict[str, Any]], ...] = ()
    status: int = 200
    headers: Mapping[str, str] = field(default_factory=dict)
    message: str = ""
    delay: float = 0.0
    hang: bool = False
    usage: tuple[int, int] | None = None  # (prompt, completion) tokens; None: estimated

    def after(self, delay: float) -> Reply:
        """The same reply, given ``delay`` seconds later."""
        return replace(self, delay=delay)


ReplySource = Reply | Callable[[dict[str, Any]], Reply]


def reply(content: str, *, delay: float = 0.0, usage: tuple[int, int] | None = None) -> Reply:
    """An assistant message with ``content``."""
    return Reply(content=content, delay=delay, usage=usage)


def tool_call(name: str, arguments: dict[str, Any] | None = None, *, delay: float = 0.0) -> Reply:
    """An assistant turn calling one tool with ``arguments``."""
    return Reply(tool_calls=((name, dict(arguments or {})),), delay=delay)


def tool_calls(*calls: tuple[str, dict[str, Any]], content: str | None = None) -> Reply:
    """An assistant turn calling several tools at once (parallel tool calls)."""
    return Reply(content=content, tool_calls=tuple((name, dict(args)) for name, args in calls))


def error(
    status: int,
    message: str = "scripted error",
    *,
    headers: Mapping[str, str] | None = None,
    retry_after: float | None = None,
) -> Reply:
    """An HTTP error status (429 with ``retry_after`` sets the ``retry-after`` header)."""
    all_headers = dict(headers or {})
    if retry_after is not None:
        all_headers["retry-after"] = f"{retry_after:g}"
    return Reply(status=status, headers=all_headers, message=message)


def hang() -> Reply:
    """Never answer (until the server is stopped or :meth:`ScriptedServer.release` is called)."""
    return Reply(hang=True)


@dataclass(frozen=True, slots=True)
class ScriptedRequest:
    """One request the script received."""

    body: dict[str, Any]
    headers: Mapping[str, str] = field(default_factory=dict)
    path: str = "/v1/chat/completions"
    at: float = field(default_factory=time.time)  # when it arrived (seconds since the epoch)

    @property
    def messages(self) -> list[dict[str, Any]]:
        return list(self.body.get("messages", ()))


class Script:
    """Replies in order; every request recorded. Thread-safe (the server runs in threads)."""

    def __init__(self, replies: Iterable[ReplySource] = (), *, default: Reply | None = None):
        self._replies = list(replies)
        self._default = default
        self._lock = threading.Lock()
        self._ids = itertools.count(1)
        self.requests: list[ScriptedRequest] = []
        #: Requests answered with a completion (200): what a provider would bill.
        self.answered = 0

    def add(self, *replies: ReplySource) -> None:
        with self._lock:
            self._replies.extend(replies)

    @property
    def remaining(self) -> int:
        return len(self._replies)

    def take(self, request: ScriptedRequest) -> Reply:
        """Record ``request`` and give the reply for it."""
        with self._lock:
            self.requests.append(request)
            index = len(self.requests)
            source: ReplySource | None = self._replies.pop(0) if self._replies else self._default
        if source is None:
            return Reply(status=500, message=f"the script has no reply left for request {index}")
        return source(request.body) if callable(source) else source

    def mark_answered(self) -> None:
        with self._lock:
            self.answered += 1

    def next_call_id(self) -> str:
        with self._lock:
            return f"call_{next(self._ids)}"

    # ------------------------------------------------------------------ wire format

    def message(self, answer: Reply) -> dict[str, Any]:
        """The assistant message of a completion."""
        calls = [
            {
                "id": self.next_call_id(),
                "type": "function",
                "function": {"name": name, "arguments": orjson.dumps(args).decode()},
            }
            for name, args in answer.tool_calls
        ]
        return {"role": "assistant", "content": answer.content, "tool_calls": calls or None}

    @staticmethod
    def usage(answer: Reply, body: dict[str, Any], message: dict[str, Any]) -> dict[str, int]:
        """Token counts: scripted, or about one token per four bytes of JSON."""
        if answer.usage is not None:
            prompt, completion = answer.usage
        else:
            prompt = max(1, len(orjson.dumps(body.get("messages", []))) // 4)
            completion = max(1, len(orjson.dumps(message)) // 4)
        return {
            "prompt_tokens": prompt,
            "completion_tokens": completion,
            "total_tokens": prompt + completion,
        }

    def completion(self, answer: Reply, body: dict[str, Any]) -> dict[str, Any]:
        """A ``chat.completion`` object."""
        message = self.message(answer)
        return {
            "id": f"chatcmpl-{len(self.requests)}",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": str(body.get("model", "scripted")),
            "choices": [
                {
                    "index": 0,
                    "message": message,
                    "finish_reason": "tool_calls" if message["tool_calls"] else "stop",
                    "logprobs": None,
                }
            ],
            "usage": self.usage(answer, body, message),
        }

    def chunks(self, answer: Reply, body: dict[str, Any]) -> list[dict[str, Any]]:
        """The ``chat.completion.chunk`` objects of a streamed answer."""
        message = self.message(answer)
        base = {
            "id": f"chatcmpl-{len(self.requests)}",
            "object": "chat.completion.chunk",
            "created": int(time.time()),
            "model": str(body.get("model", "scripted")),
        }

        def chunk(delta: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
            return {**base, "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}

        out = [chunk({"role": "assistant", "content": ""})]
        words = (message["content"] or "").split(" ")
        out.extend(
            chunk({"content": word if i == 0 else " " + word})
            for i, word in enumerate(words)
            if message["content"]
        )
        for index, call in enumerate(message["tool_calls"] or ()):
            function = call["function"]
            out.append(
                chunk(
                    {
                        "tool_calls": [
                            {
                                "index": index,
                                "id": call["id"],
                                "type": "function",
                                "function": {"name": function["name"], "arguments": ""},
                            }
                        ]
                    }
                )
            )
            arguments = function["arguments"]
            half = len(arguments) // 2
            for part in (arguments[:half], arguments[half:]):
                out.append(
                    chunk({"tool_calls": [{"index": index, "function": {"arguments": part}}]})
                )
        out.append(chunk({}, "tool_calls" if message["tool_calls"] else "stop"))
        options = body.get("stream_options") or {}
        if options.get("include_usage"):
            out.append({**base, "choices": [], "usage": self.usage(answer, body, message)})
        return out
