"""The model seam: :class:`ChatModel` (one chat-completions call, whole or streamed).

:class:`OpenAIChatModel` wraps an ``openai`` client and translates its errors into
:class:`~swarm_runtime.errors.ModelCallError` at the boundary; the in-process
``swarm_runtime.testing.ScriptedModel`` implements the same interface for fast tests.
Results are plain dicts in the chat-completions wire format.
"""

from __future__ import annotations

import abc
import email.utils
import time
from collections.abc import AsyncIterator, Mapping
from typing import Any

from ..errors import MissingExtraError, ModelCallError

__all__ = ["ChatModel", "Completion", "OpenAIChatModel", "parse_retry_after", "require_openai"]

Completion = tuple[dict[str, Any], dict[str, Any] | None]
"""The assistant message and the usage (``prompt_tokens``, ``completion_tokens``...)."""

RETRYABLE_STATUSES = frozenset({408, 409, 429})


class ChatModel(abc.ABC):
    """One OpenAI-compatible chat-completions endpoint."""

    #: Names the endpoint in rate limits, circuit breakers and metrics.
    endpoint: str = "local"

    @abc.abstractmethod
    async def complete(self, params: dict[str, Any]) -> Completion:
        """One call; raises :class:`ModelCallError` on failure."""

    @abc.abstractmethod
    def stream(self, params: dict[str, Any]) -> AsyncIterator[dict[str, Any]]:
        """One streamed call: chunk dicts (``choices[0].delta``, a last one with ``usage``)."""

    async def aclose(self) -> None:  # noqa: B027 - optional hook
        """Release connections."""


def require_openai() -> Any:
    """The ``openai`` module, or :class:`MissingExtraError` naming the ``llm`` extra."""
    try:
        import openai
    except ImportError as exc:
        raise MissingExtraError("openai", "llm", "swarm_runtime.llm") from exc
    return openai


def parse_retry_after(headers: Mapping[str, str] | None) -> float | None:
    """Seconds a server asked to wait: ``retry-after-ms``, ``retry-after`` (seconds or date)."""
    if not headers:
        return None
    lowered = {key.lower(): value for key, value in headers.items()}
    millis = lowered.get("retry-after-ms")
    if millis is not None:
        try:
            return max(0.0, float(millis) / 1000.0)
        except ValueError:
            pass
    value = lowered.get("retry-after")
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


def status_error(status: int, message: str, headers: Mapping[str, str] | None) -> ModelCallError:
    """The :class:`ModelCallError` for an HTTP error status."""
    return ModelCallError(
        f"model call failed with HTTP {status}: {message}",
        status=status,
        retry_after=parse_retry_after(headers),
        retryable=status in RETRYABLE_STATUSES or status >= 500,
    )


class OpenAIChatModel(ChatModel):
    """A :class:`ChatModel` on an ``openai.AsyncOpenAI`` (or ``openai.OpenAI``) client.

    The client's own retries are turned off (``max_retries=0``): the Swarm's retry policy,
    which honours ``retry-after``, rate limits and the circuit breaker decide instead.
    """

    def __init__(self, client: Any = None, *, client_retries: int = 0) -> None:
        openai = require_openai()
        self._openai = openai
        self._owned = client is None or isinstance(client, openai.OpenAI)
        if client is None:
            client = openai.AsyncOpenAI(max_retries=client_retries)
        elif isinstance(client, openai.OpenAI):  # a sync client: the same settings, async
            client = openai.AsyncOpenAI(
                api_key=client.api_key,
                organization=client.organization,
                project=client.project,
                base_url=client.base_url,
                timeout=client.timeout,
                default_headers=dict(client._custom_headers),
                max_retries=client_retries,
            )
        else:
            client = client.with_options(max_retries=client_retries)
        self.client = client
        self.endpoint = str(client.base_url).rstrip("/")

    def _translate(self, exc: Exception) -> ModelCallError:
        openai = self._openai
        if isinstance(exc, openai.APIStatusError):
            error = status_error(exc.status_code, str(exc.message), exc.response.headers)
        elif isinstance(exc, openai.APIConnectionError):  # includes timeouts
            error = ModelCallError(
                f"model endpoint {self.endpoint} unreachable: {exc}", retryable=True
            )
        else:
            error = ModelCallError(f"model call failed: {type(exc).__name__}: {exc}")
        error.__cause__ = exc
        return error

    async def complete(self, params: dict[str, Any]) -> Completion:
        try:
            completion = await self.client.chat.completions.create(**params)
        except self._openai.OpenAIError as exc:
            raise self._translate(exc) from exc
        if not completion.choices:
            raise ModelCallError("the model answered with no choices", retryable=True)
        message = completion.choices[0].message.model_dump(mode="json")
        usage = completion.usage.model_dump(mode="json") if completion.usage else None
        return message, usage

    async def stream(self, params: dict[str, Any]) -> AsyncIterator[dict[str, Any]]:
        try:
            stream = await self.client.chat.completions.create(**params, stream=True)
            async with stream:
                async for chunk in stream:
                    yield chunk.model_dump(mode="json")
        except self._openai.OpenAIError as exc:
            raise self._translate(exc) from exc

    async def aclose(self) -> None:
        if self._owned:  # a client the caller gave stays theirs to close
            await self.client.close()
