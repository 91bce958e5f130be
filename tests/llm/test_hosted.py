"""LLM agents hosted on the runtime: requests through the durable queue, retries that
replay the journal, and handoffs between hosted agents recorded by the HandoffProtocol."""

from __future__ import annotations

from typing import Any

import swarm_runtime as sr
from swarm_runtime.llm import Agent, LLMAgent
from swarm_runtime.testing import ScriptedModel, error, reply, tool_call

FAST = sr.RetryPolicy(max_attempts=3, base_delay=0.0, max_delay=0.0)


async def test_request_to_a_hosted_llm_agent() -> None:
    """rt.request('triage', {'messages', 'context_variables'}) runs the Swarm loop."""
    model = ScriptedModel(reply("hello Ann"))
    agent = Agent(name="Triage", instructions=lambda cv: f"Greet {cv['user']}.")
    async with sr.Runtime("memory://", services=False) as rt:
        rt.add_agent(LLMAgent("triage", agent, client=model))
        answer = await rt.request(
            "triage",
            {"messages": [{"role": "user", "content": "hi"}], "context_variables": {"user": "Ann"}},
        )
    assert answer["content"] == "hello Ann"
    assert answer["agent"] == "Triage"
    assert answer["context_variables"] == {"user": "Ann"}
    assert model.requests[0].messages[0]["content"] == "Greet Ann."


async def test_a_retried_message_replays_the_journal() -> None:
    """A handler failing after a tool ran is retried by the queue; the retry replays the
    journal: the tool is not run again and the answered model call is not paid again."""
    charges: list[str] = []

    def charge(idempotency_key: str) -> str:
        charges.append(idempotency_key)
        return "charged"

    model = ScriptedModel(tool_call("charge"), error(400, "flaky"), reply("paid"))
    agent = Agent(name="Billing", functions=[charge])
    async with sr.Runtime("memory://", retry=FAST, services=False) as rt:
        rt.add_agent(LLMAgent("billing", agent, client=model, store="memory://"))
        answer = await rt.request("billing", "charge me")
    assert answer["content"] == "paid"
    assert len(charges) == 1
    assert len(model.requests) == 3  # turn 1, the failed turn 2, turn 2 again
    assert answer["usage"]["replayed_steps"] == 2


async def test_handoff_between_hosted_agents_is_recorded() -> None:
    """A handoff to a hosted agent named in handoffs goes through ctx.handoff: the target
    continues the conversation and answers; the HandoffProtocol holds the record."""
    triage_model = ScriptedModel(tool_call("transfer_to_refunds"))
    refunds_model = ScriptedModel(reply("refund issued"))
    triage = Agent(name="Triage", instructions="route")
    refunds = Agent(name="Refunds", instructions="refund")
    async with sr.Runtime("memory://", services=False) as rt:
        rt.add_agent(LLMAgent("triage", triage, client=triage_model, handoffs=["refunds"]))
        rt.add_agent(LLMAgent("refunds", refunds, client=refunds_model))
        answer = await rt.request("triage", "my order broke, money back please")
        records = await rt.handoffs.records()
    assert answer["content"] == "refund issued"
    assert answer["agent"] == "Refunds"
    tools = triage_model.requests[0].body["tools"]
    assert tools[0]["function"]["name"] == "transfer_to_refunds"
    sent: list[dict[str, Any]] = refunds_model.requests[0].messages
    assert sent[0] == {"role": "system", "content": "refund"}
    assert sent[1]["content"] == "my order broke, money back please"
    assert sent[-1]["role"] == "tool"
    assert [(r.source, r.target, r.status) for r in records] == [("triage", "refunds", "completed")]


async def test_hosted_llm_metrics_are_scraped_with_the_runtime() -> None:
    """With metrics_port, a hosted agent's model-call metrics are in the runtime's exporter."""
    model = ScriptedModel(reply("hi"))
    async with sr.Runtime("memory://", metrics_port=0) as rt:
        rt.add_agent(LLMAgent("greeter", Agent(model="m-scrape"), client=model))
        await rt.request("greeter", "hello")
        assert rt.services is not None
        assert rt.services.exporter is not None
        text, _ = rt.services.exporter.render()
    assert (
        b'swarm_llm_requests_total{endpoint="scripted",model="m-scrape",status="200"} 1.0' in text
    )
