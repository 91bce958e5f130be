"""Local topics: replies to a topic consumed in this process skip the queue."""

from __future__ import annotations

from typing import Any

import anyio
import pytest

import swarm_runtime as sr

FAST = sr.RetryPolicy(max_attempts=2, base_delay=0.0, max_delay=0.0, jitter=False)
GUARD = 10


async def test_replies_to_a_local_topic_reach_the_callback_once_each() -> None:
    """Each reply, success or final failure, is handed to the callback exactly once; none
    is published on the topic, and every task message is acknowledged."""
    got: list[tuple[str, dict[str, Any]]] = []
    async with sr.Runtime(queue="memory://", retry=FAST) as rt:

        @rt.agent("double")
        async def double(msg: sr.Message, ctx: sr.Context) -> int:
            if msg.payload < 0:
                raise ValueError("negative")
            return int(msg.payload) * 2

        rt.register_local_topic("results", lambda corr, body: got.append((corr, body)))
        with anyio.fail_after(GUARD):
            for i in (1, 2, -1):
                await rt.send("double", i, reply_to="results", correlation_id=f"c{i}")
            await rt.join()
        assert await rt.queue.depth("results") == 0
        assert await rt.queue.depth("agent.double") == 0
    by_corr = {corr: body for corr, body in got}
    assert len(got) == len(by_corr) == 3
    assert by_corr["c1"]["result"] == 2
    assert by_corr["c2"]["result"] == 4
    assert by_corr["c-1"]["ok"] is False
    assert by_corr["c-1"]["error_type"] == "ValueError"
    assert by_corr["c-1"]["attempts"] == 2


async def test_unregistered_topic_gets_its_replies_through_the_queue() -> None:
    """After unregister_local_topic replies are published on the topic again."""
    got: list[str] = []
    async with sr.Runtime(queue="memory://") as rt:

        @rt.agent("echo")
        async def echo(msg: sr.Message, ctx: sr.Context) -> Any:
            return msg.payload

        rt.register_local_topic("results", lambda corr, body: got.append(corr))
        rt.unregister_local_topic("results")
        rt.unregister_local_topic("results")  # idempotent
        with anyio.fail_after(GUARD):
            await rt.send("echo", "x", reply_to="results", correlation_id="c1")
            await rt.join()
            [reply] = await rt.queue.subscribe("results", 10, timeout=None)
        assert got == []
        assert reply.correlation_id == "c1"
        assert reply.payload["result"] == "x"


async def test_a_failing_local_consumer_falls_back_to_the_queue() -> None:
    """A callback that raises does not lose the reply: it is published on the topic."""

    def broken(corr: str, body: dict[str, Any]) -> None:
        raise RuntimeError("boom")

    async with sr.Runtime(queue="memory://") as rt:

        @rt.agent("echo")
        async def echo(msg: sr.Message, ctx: sr.Context) -> Any:
            return msg.payload

        rt.register_local_topic("results", broken)
        with anyio.fail_after(GUARD):
            await rt.send("echo", "x", reply_to="results", correlation_id="c1")
            await rt.join()
            [reply] = await rt.queue.subscribe("results", 10, timeout=None)
        assert reply.payload["result"] == "x"


async def test_local_topic_registration_is_checked() -> None:
    """A topic has at most one local consumer, and its name must be a valid topic; the
    runtime's own reply topic cannot be unregistered."""
    async with sr.Runtime(queue="memory://") as rt:

        @rt.agent("echo")
        async def echo(msg: sr.Message, ctx: sr.Context) -> Any:
            return msg.payload

        rt.register_local_topic("results", lambda corr, body: None)
        with pytest.raises(sr.ConfigError, match="already has a local consumer"):
            rt.register_local_topic("results", lambda corr, body: None)
        with pytest.raises(sr.InvalidTopicError):
            rt.register_local_topic("bad topic!", lambda corr, body: None)
        rt.unregister_local_topic(rt._reply_topic)
        with anyio.fail_after(GUARD):
            assert await rt.request("echo", "still answered") == "still answered"
