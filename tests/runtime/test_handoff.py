"""Handoffs: the protocol on its own, and ctx.handoff through a running runtime."""

from __future__ import annotations

import anyio
import pytest

import swarm_runtime as sr

FAST = sr.RetryPolicy(max_attempts=2, base_delay=0.0, max_delay=0.0)


async def test_seed_usage_initiate_then_complete_exactly_once() -> None:
    """initiate_handoff records a pending handoff; complete_handoff settles it exactly once."""
    protocol = sr.HandoffProtocol()
    task = {"type": "data_analysis", "priority": "high"}
    handoff_id = await protocol.initiate_handoff("agent_1", "agent_2", task)
    record = await protocol.get(handoff_id)
    assert record is not None
    assert (record.status, record.source, record.target, record.task_data) == (
        "pending",
        "agent_1",
        "agent_2",
        task,
    )
    assert await protocol.complete_handoff(handoff_id, True) is True
    assert await protocol.complete_handoff(handoff_id, False) is False
    assert await protocol.complete_handoff("nope", True) is False
    record = await protocol.get(handoff_id)
    assert record is not None
    assert record.status == "completed"
    assert record.completed_at is not None


async def test_records_are_copies_and_bounded() -> None:
    """get() returns copies; settled records beyond max_records are evicted oldest first."""
    protocol = sr.HandoffProtocol(max_records=3)
    ids = [await protocol.initiate_handoff("a", "b", {"i": i}) for i in range(3)]
    record = await protocol.get(ids[0])
    assert record is not None
    record.task_data["i"] = 99
    again = await protocol.get(ids[0])
    assert again is not None
    assert again.task_data == {"i": 0}
    for handoff_id in ids:
        await protocol.complete_handoff(handoff_id, True)
    newer = [await protocol.initiate_handoff("a", "b") for _ in range(2)]
    assert len(protocol) == 3
    assert await protocol.get(ids[0]) is None
    assert await protocol.get(newer[1]) is not None


async def test_verify_refuses_wrong_target_and_settled_handoffs() -> None:
    """The target verifies the handoff is addressed to it and still pending."""
    protocol = sr.HandoffProtocol()
    handoff_id = await protocol.initiate_handoff("a", "b")
    with pytest.raises(sr.HandoffError, match="addressed to 'b', not 'c'"):
        await protocol.verify(handoff_id, "c")
    record = await protocol.verify(handoff_id, "b")
    assert record.verified_by == "b"
    await protocol.complete_handoff(handoff_id, False, error="x")
    with pytest.raises(sr.HandoffError, match="already failed"):
        await protocol.verify(handoff_id, "b")
    with pytest.raises(sr.HandoffError, match="unknown"):
        await protocol.verify("missing", "b")


async def test_wait_times_out_with_a_clear_error() -> None:
    """wait() on a handoff that never settles raises RequestTimeoutError."""
    protocol = sr.HandoffProtocol()
    handoff_id = await protocol.initiate_handoff("a", "b")
    with pytest.raises(sr.RequestTimeoutError, match="did not settle"):
        await protocol.wait(handoff_id, timeout=0.02)


async def test_triage_hands_off_and_specialist_answers_the_requester() -> None:
    """Returning ctx.handoff(...) lets the specialist reply to the original requester."""
    async with sr.Runtime(queue="memory://") as rt:

        @rt.agent("triage")
        async def triage(msg: sr.Message, ctx: sr.Context) -> sr.Handoff:
            target = "billing" if "invoice" in msg.payload["text"] else "support"
            return await ctx.handoff(target, msg.payload, reason=f"routed to {target}")

        @rt.agent("billing")
        async def billing(msg: sr.Message, ctx: sr.Context) -> dict[str, str]:
            return {"answered_by": "billing", "text": msg.payload["text"]}

        @rt.agent("support")
        async def support(msg: sr.Message, ctx: sr.Context) -> dict[str, str]:
            return {"answered_by": "support"}

        reply = await rt.request("triage", {"text": "my invoice is wrong"}, timeout=5)
        assert reply == {"answered_by": "billing", "text": "my invoice is wrong"}
        [record] = await rt.handoffs.records()
        assert (record.source, record.target, record.status) == ("triage", "billing", "completed")
        assert record.verified_by == "billing"
        assert record.result == reply
        assert record.reason == "routed to billing"


async def test_chain_is_traced_and_completes_only_when_the_last_agent_finishes() -> None:
    """A -> B -> C: every hop is recorded, and the whole chain settles with C's result."""
    gate = anyio.Event()
    async with sr.Runtime(queue="memory://") as rt:

        @rt.agent("a")
        async def a(msg: sr.Message, ctx: sr.Context) -> sr.Handoff:
            return await ctx.handoff("b", {"step": 1})

        @rt.agent("b")
        async def b(msg: sr.Message, ctx: sr.Context) -> sr.Handoff:
            return await ctx.handoff("c", {"step": msg.payload["step"] + 1})

        @rt.agent("c")
        async def c(msg: sr.Message, ctx: sr.Context) -> dict[str, int]:
            await gate.wait()
            return {"final": msg.payload["step"] + 1}

        async with anyio.create_task_group() as tg:

            async def ask() -> None:
                assert await rt.request("a", None, timeout=5) == {"final": 3}

            tg.start_soon(ask)
            with anyio.fail_after(5):
                while len(await rt.handoffs.records()) < 2:
                    await anyio.sleep(0.01)
            first, second = await rt.handoffs.records()
            assert (first.source, first.target) == ("a", "b")
            assert (second.source, second.target, second.parent_id) == ("b", "c", first.id)
            # b has finished its part, but the handoff to b is pending until c is done
            assert first.status == "pending"
            assert first.forwarded_to == second.id
            gate.set()
        trace = await rt.handoffs.trace(second.id)
        assert [(h.source, h.target, h.status) for h in trace] == [
            ("a", "b", "completed"),
            ("b", "c", "completed"),
        ]
        assert [h.id for h in await rt.handoffs.descendants(first.id)] == [second.id]
        assert trace[0].result == {"final": 3}


async def test_handoff_to_unknown_agent_fails_cleanly() -> None:
    """ctx.handoff to an unknown agent raises UnknownAgentError inside the handler."""
    async with sr.Runtime(queue="memory://", retry=FAST) as rt:

        @rt.agent("a")
        async def a(msg: sr.Message, ctx: sr.Context) -> str:
            try:
                await ctx.handoff("ghost", {})
            except sr.UnknownAgentError as exc:
                return str(exc)
            return "no error"

        text = await rt.request("a", None, timeout=5)
        assert "unknown agent 'ghost'" in text
        assert "known agents: a" in text
        assert await rt.handoffs.records() == []


async def test_failing_target_marks_the_handoff_failed_and_tells_the_requester() -> None:
    """When the target dead-letters the work, the handoff fails with its error."""
    async with sr.Runtime(queue="memory://", retry=FAST) as rt:

        @rt.agent("a")
        async def a(msg: sr.Message, ctx: sr.Context) -> sr.Handoff:
            return await ctx.handoff("b", {"x": 1})

        @rt.agent("b")
        async def b(msg: sr.Message, ctx: sr.Context) -> None:
            raise RuntimeError("specialist down")

        with pytest.raises(sr.AgentError, match="specialist down"):
            await rt.request("a", None, timeout=5)
        [record] = await rt.handoffs.records()
        assert record.status == "failed"
        assert record.error == "RuntimeError: specialist down"


async def test_handoff_of_a_failing_source_is_never_delivered() -> None:
    """Handoffs are transactional: a handler that raises hands off nothing."""
    delivered: list[object] = []
    retry = sr.RetryPolicy(max_attempts=1, base_delay=0, max_delay=0)
    async with sr.Runtime(queue="memory://", retry=retry) as rt:

        @rt.agent("a")
        async def a(msg: sr.Message, ctx: sr.Context) -> None:
            await ctx.handoff("b", {"x": 1})
            raise RuntimeError("changed my mind")

        @rt.agent("b")
        async def b(msg: sr.Message, ctx: sr.Context) -> None:
            delivered.append(msg.payload)

        with pytest.raises(sr.AgentError):
            await rt.request("a", None, timeout=5)
        await rt.join(timeout=5)
        [record] = await rt.handoffs.records()
        assert record.status == "failed"
        assert "source failed" in (record.error or "")
    assert delivered == []


async def test_fire_and_forget_handoff_completes_when_target_finishes() -> None:
    """A handoff that is not returned is still tracked to completion."""
    async with sr.Runtime(queue="memory://") as rt:

        @rt.agent("a")
        async def a(msg: sr.Message, ctx: sr.Context) -> str:
            handoff = await ctx.handoff("b", {"n": 2})
            return handoff.id

        @rt.agent("b")
        async def b(msg: sr.Message, ctx: sr.Context) -> int:
            return int(msg.payload["n"]) ** 2

        handoff_id = await rt.request("a", None, timeout=5)
        record = await rt.handoffs.wait(handoff_id, timeout=5)
        assert (record.status, record.result) == ("completed", 4)


async def test_forged_handoff_message_is_rejected() -> None:
    """A message claiming a handoff id that is not addressed to the agent is not run."""
    ran: list[object] = []
    async with sr.Runtime(queue="memory://") as rt:

        @rt.agent("b")
        async def b(msg: sr.Message, ctx: sr.Context) -> None:
            ran.append(msg.payload)

        handoff_id = await rt.handoffs.initiate_handoff("a", "c")
        await rt.queue.publish("agent.b", "x", headers={"handoff_id": handoff_id})
        await rt.queue.publish("agent.b", "y", headers={"handoff_id": "forged"})
        await rt.join(timeout=5)
    assert ran == []
