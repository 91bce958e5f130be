"""Swarm's core scenarios over HTTP, with the real openai client and the scripted server."""

from __future__ import annotations

import json
from typing import Any

import anyio
import openai
import pytest

from swarm_runtime.errors import ModelCallError
from swarm_runtime.llm import Agent, Result, Swarm
from swarm_runtime.retry import RetryPolicy
from swarm_runtime.testing import ScriptedServer, error, reply, tool_call

from .conftest import NO_WAIT, user


def test_sync_run_with_a_sync_client_tool_call(server: ScriptedServer) -> None:
    """Swarm's own usage: Swarm(OpenAI(...)).run(...) with a tool call, over HTTP."""

    def get_weather(location: str) -> str:
        """Get the weather."""
        return json.dumps({"location": location, "temp": 67})

    server.script.add(tool_call("get_weather", {"location": "NYC"}), reply("67 degrees"))
    agent = Agent(name="Weather", functions=[get_weather])
    with Swarm(server.sync_client()) as client:
        response = client.run(agent, user("weather in NYC?"))
    assert response.messages[-1]["content"] == "67 degrees"
    assert json.loads(response.messages[1]["content"])["location"] == "NYC"
    body = server.requests[0].body
    assert body["tools"][0]["function"]["parameters"]["properties"] == {
        "location": {"type": "string"}
    }
    assert body["parallel_tool_calls"] is True
    assert "tool_choice" not in body


async def test_handoff_context_variables_and_callable_instructions(
    server: ScriptedServer, aclient: Any
) -> None:
    """A handoff, context variables and callable instructions, with the async client."""
    refunds = Agent(name="Refunds", instructions=lambda cv: f"Refund for {cv['user']}.")

    def transfer_to_refunds(context_variables: dict[str, Any]) -> Result:
        return Result(agent=refunds, context_variables={"reason": "broken"}, value="ok")

    triage = Agent(name="Triage", functions=[transfer_to_refunds])
    server.script.add(tool_call("transfer_to_refunds"), reply("refund issued"))
    async with Swarm(aclient) as client:
        response = await client.arun(triage, user("refund!"), context_variables={"user": "Ann"})
    assert response.agent is refunds
    assert response.context_variables == {"user": "Ann", "reason": "broken"}
    assert server.requests[1].messages[0] == {"role": "system", "content": "Refund for Ann."}
    assert "tools" not in server.requests[1].body  # Refunds has no functions


async def test_private_keys_stay_off_the_wire(server: ScriptedServer, aclient: Any) -> None:
    """Messages sent back to the server carry no sender / tool_name and no null fields."""

    def act() -> str:
        return "done"

    server.script.add(tool_call("act"), reply("fin"))
    async with Swarm(aclient) as client:
        await client.arun(Agent(functions=[act]), user("x"))
    for message in server.requests[1].messages:
        assert not {"sender", "tool_name"} & set(message)
        assert all(v is not None for k, v in message.items() if k != "content")


async def test_streaming_events_as_swarm(server: ScriptedServer, aclient: Any) -> None:
    """stream=True over SSE: start, deltas with the sender, end, then the response."""
    sales = Agent(name="Sales")

    def to_sales() -> Agent:
        return sales

    server.script.add(tool_call("to_sales"), reply("great deal"))
    async with Swarm(aclient) as client:
        events = [
            event
            async for event in await client.arun(
                Agent(name="Triage", functions=[to_sales]), user("x"), stream=True
            )
        ]
    delims = [e["delim"] for e in events if "delim" in e]
    assert delims == ["start", "end", "start", "end"]
    assert [e["sender"] for e in events if "sender" in e] == ["Triage", "Sales"]
    text = "".join(e.get("content") or "" for e in events[events.index({"delim": "start"}, 1) :])
    assert text == "great deal"
    response = events[-1]["response"]
    assert response.agent is sales
    assert response.usage.total_tokens > 0
    assert server.requests[0].body["stream"] is True


def test_sync_stream(server: ScriptedServer) -> None:
    """The sync run(stream=True) is a generator of the same events."""
    server.script.add(reply("a b c"))
    with Swarm(server.sync_client()) as client:
        events = list(client.run(Agent(), user("x"), stream=True))
    assert "".join(e.get("content") or "" for e in events if "content" in e) == "a b c"
    assert events[-1]["response"].messages[0]["content"] == "a b c"


async def test_429_with_retry_after_is_waited_then_retried(
    server: ScriptedServer, aclient: Any
) -> None:
    """A 429 with retry-after is retried after that many seconds, by us, not the client."""
    server.script.add(error(429, "slow down", retry_after=0.3), reply("ok"))
    async with Swarm(aclient, retry=NO_WAIT) as client:
        started = anyio.current_time()
        response = await client.arun(Agent(), user("x"))
        waited = anyio.current_time() - started
    assert response.messages[0]["content"] == "ok"
    assert len(server.requests) == 2
    assert waited >= 0.3  # the server's retry-after, though the policy's backoff is 0


async def test_client_retries_are_off_by_default(server: ScriptedServer) -> None:
    """The openai client's own retries (2 by default) are off: a 503 is retried by our policy
    alone, so max_attempts=1 means one request."""
    server.script.add(error(503, "down"), reply("never"))
    once = RetryPolicy(max_attempts=1, base_delay=0.0, max_delay=0.0)
    user_client = openai.AsyncOpenAI(base_url=server.base_url, api_key="k")
    async with user_client, Swarm(user_client, retry=once) as client:
        with pytest.raises(ModelCallError) as caught:
            await client.arun(Agent(), user("x"))
    assert caught.value.status == 503
    assert caught.value.retryable
    assert len(server.requests) == 1


async def test_a_400_is_not_retried(server: ScriptedServer, aclient: Any) -> None:
    """A client error (400) is raised at once, with its status."""
    server.script.add(error(400, "bad request"), reply("never"))
    async with Swarm(aclient, retry=NO_WAIT) as client:
        with pytest.raises(ModelCallError, match="bad request") as caught:
            await client.arun(Agent(), user("x"))
    assert caught.value.status == 400
    assert not caught.value.retryable
    assert len(server.requests) == 1


async def test_server_errors_retried_until_the_policy_gives_up(
    server: ScriptedServer, aclient: Any
) -> None:
    """5xx answers are retried max_attempts times, then the last error is raised."""
    server.script.add(*[error(503, "down", headers={"x-request-id": "r"})] * 4)
    async with Swarm(aclient, retry=NO_WAIT) as client:
        with pytest.raises(ModelCallError, match="HTTP 503") as caught:
            await client.arun(Agent(), user("x"))
    assert caught.value.retryable
    assert len(server.requests) == 4
    assert server.requests[0].headers["authorization"] == "Bearer scripted"


async def test_delayed_reply_and_client_timeout(server: ScriptedServer) -> None:
    """A reply slower than the client's timeout is a retryable connection error."""
    server.script.add(reply("late", delay=2.0))
    once = RetryPolicy(max_attempts=1, base_delay=0.0, max_delay=0.0)
    async with server.client(timeout=0.2) as slow, Swarm(slow, retry=once) as client:
        with pytest.raises(ModelCallError, match="unreachable") as caught:
            await client.arun(Agent(), user("x"))
    assert caught.value.retryable
    assert caught.value.status is None
