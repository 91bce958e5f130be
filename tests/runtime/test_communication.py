"""CommunicationSystem: direct messages, fan-out topics, and polling."""

from __future__ import annotations

import pytest

import swarm_runtime as sr


async def test_seed_usage_send_then_fetch() -> None:
    """register_agent, send_message and fetch_messages behave as slide 4 describes."""
    async with sr.MessageQueue.open("memory://") as queue:
        comm = sr.CommunicationSystem(queue)
        comm.register_agent("agent_1")
        comm.register_agent("agent_2")
        msg_id = await comm.send_message("agent_1", "agent_2", {"action": "process_data"})
        [message] = await comm.fetch_messages("agent_2")
        assert message.id == msg_id
        assert message.sender == "agent_1"
        assert message.payload == {"action": "process_data"}
        assert await comm.fetch_messages("agent_2") == []
        assert await comm.fetch_messages("stranger") == []


async def test_unknown_recipient_names_known_agents() -> None:
    """Sending to an unregistered agent raises UnknownAgentError listing the known ones."""
    async with sr.MessageQueue.open("memory://") as queue:
        comm = sr.CommunicationSystem(queue)
        comm.register_many(["b", "a"])
        with pytest.raises(sr.UnknownAgentError, match=r"'zed'; known agents: a, b") as info:
            await comm.send_message("a", "zed", {})
        assert info.value.known == ["a", "b"]


async def test_topic_fan_out_gives_each_subscriber_its_own_copy() -> None:
    """A message published on a topic reaches every subscriber once."""
    async with sr.MessageQueue.open("memory://") as queue:
        comm = sr.CommunicationSystem(queue)
        comm.register_many(["x", "y", "z"])
        comm.subscribe("news", "x")
        comm.subscribe("news", "y")
        comm.subscribe("news", "y")  # idempotent
        ids = await comm.publish("src", "news", {"headline": "hi"})
        assert len(ids) == 2
        for agent in ("x", "y"):
            [message] = await comm.fetch_messages(agent)
            assert message.headers["topic"] == "news"
        assert await comm.fetch_messages("z") == []
        assert await comm.publish("src", "nobody-listens", 1) == []
        with pytest.raises(sr.UnknownAgentError):
            comm.subscribe("news", "ghost")


async def test_runtime_topics_reach_all_subscribed_agents() -> None:
    """rt.publish fans out to agents declared with topics= and rt.subscribe."""
    got: dict[str, list[object]] = {"a": [], "b": []}
    async with sr.Runtime(queue="memory://") as rt:

        @rt.agent("a", topics=["events"])
        async def a(msg: sr.Message, ctx: sr.Context) -> None:
            got["a"].append(msg.payload)

        @rt.agent("b")
        async def b(msg: sr.Message, ctx: sr.Context) -> None:
            got["b"].append(msg.payload)

        rt.subscribe("events", "b")
        assert len(await rt.publish("events", {"n": 1})) == 2
        await rt.join(timeout=5)
    assert got == {"a": [{"n": 1}], "b": [{"n": 1}]}
