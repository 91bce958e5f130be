"""RedisHandoffProtocol: a handoff made in one runtime is verified and settled in another."""

from __future__ import annotations

from typing import Any

import pytest

import swarm_runtime as sr
from swarm_runtime.agents.base import FunctionAgent
from swarm_runtime.backends.redis import RedisHandoffProtocol
from swarm_runtime.orchestrator._scaleout import DispatchRuntime

from ..conftest import REDIS_URL

pytestmark = pytest.mark.redis


async def _unused(msg: sr.Message, ctx: sr.Context) -> None:
    raise AssertionError("never runs here")


def _runtime(prefix: str) -> tuple[sr.Runtime, RedisHandoffProtocol]:
    runtime = sr.Runtime(queue=f"{REDIS_URL}?prefix={prefix}", grace_period=0.0, services=False)
    assert isinstance(runtime.handoffs, RedisHandoffProtocol)  # handed out by the backend
    return runtime, runtime.handoffs


async def test_handoff_across_runtimes_is_tracked_once(prefix: str) -> None:
    """An agent in one runtime hands off to an agent that only another runtime hosts; the
    requester gets the target's answer and the shared record is completed and verified."""
    back_agent = FunctionAgent("back", _unused)
    front_rt = DispatchRuntime(
        f"{REDIS_URL}?prefix={prefix}",
        remote=[back_agent],  # "back" runs only in the other runtime
        grace_period=0.0,
        services=False,
    )
    front_handoffs = front_rt.handoffs
    back_rt, back_handoffs = _runtime(prefix)

    @front_rt.agent("front")
    async def front(msg: sr.Message, ctx: sr.Context) -> Any:
        return await ctx.handoff("back", {"x": msg.payload["x"]}, reason="billing")

    @back_rt.agent("back")
    async def back(msg: sr.Message, ctx: sr.Context) -> Any:
        return {"doubled": msg.payload["x"] * 2}

    async with front_rt, back_rt:
        front_rt.comm.register_agent("back")  # an address here, hosted elsewhere
        reply = await front_rt.request("front", {"x": 21}, timeout=20)
        assert reply == {"doubled": 42}
        [record] = await back_handoffs.records()
        assert (record.source, record.target, record.status) == ("front", "back", "completed")
        assert record.verified_by == "back"
        assert record.result == {"doubled": 42}
        assert [r.id for r in await front_handoffs.trace(record.id)] == [record.id]
        settled = await front_handoffs.wait(record.id, timeout=5)
        assert settled.status == "completed"
        assert await back_handoffs.complete_handoff(record.id, False) is False  # exactly once


async def test_unknown_and_misaddressed_handoffs_are_refused(prefix: str) -> None:
    """Verifying an unknown handoff, or one addressed to another agent, is a HandoffError."""
    runtime, handoffs = _runtime(prefix)
    async with runtime:
        handoff_id = await handoffs.initiate_handoff("a", "b", {"k": 1})
        child = await handoffs.initiate_handoff("b", "c", parent_id=handoff_id)
        with pytest.raises(sr.HandoffError, match="unknown"):
            await handoffs.verify("nope", "b")
        with pytest.raises(sr.HandoffError, match="addressed to 'b'"):
            await handoffs.verify(handoff_id, "c")
        await handoffs.forward(handoff_id, child)
        assert await handoffs.complete_handoff(child, True, result=5)
        parent = await handoffs.get(handoff_id)
        assert parent is not None
        assert (parent.status, parent.result, parent.children) == ("completed", 5, [child])
        assert [d.id for d in await handoffs.descendants(handoff_id)] == [child]
        assert len(await handoffs.records(status="completed")) == 2
