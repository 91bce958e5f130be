"""An in-process scripted :class:`~swarm_runtime.llm.ChatModel` for fast unit tests."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import anyio

from ..llm.model import ChatModel, Completion, status_error
from ._script import Reply, ReplySource, Script, ScriptedRequest

__all__ = ["ScriptedModel"]


class ScriptedModel(ChatModel):
    """Answers from a :class:`Script`, no HTTP: ``Swarm(client=ScriptedModel(reply("hi")))``."""

    endpoint = "scripted"

    def __init__(
        self, *replies: ReplySource, script: Script | None = None, default: Reply | None = None
    ) -> None:
        self.script = script if script is not None else Script(replies, default=default)

    @property
    def requests(self) -> list[ScriptedRequest]:
        return self.script.requests

    async def _answer(self, params: dict[str, Any]) -> Reply:
        answer = self.script.take(ScriptedRequest(body=params))
        if answer.delay:
            await anyio.sleep(answer.delay)
        if answer.hang:
            await anyio.sleep_forever()
        if answer.status != 200:
            raise status_error(answer.status, answer.message, answer.headers)
        return answer

    async def complete(self, params: dict[str, Any]) -> Completion:
        answer = await self._answer(params)
        body = self.script.completion(answer, params)
        self.script.mark_answered()
        return body["choices"][0]["message"], body["usage"]

    async def stream(self, params: dict[str, Any]) -> AsyncIterator[dict[str, Any]]:
        answer = await self._answer(params)
        for chunk in self.script.chunks(answer, params):
            yield chunk
        self.script.mark_answered()
