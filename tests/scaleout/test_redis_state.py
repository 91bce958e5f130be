"""RedisStateManager: agent state shared by every runtime on the same Redis prefix."""

from __future__ import annotations

from pathlib import Path

import anyio
import pytest

import swarm_runtime as sr
from swarm_runtime.backends.redis import RedisStateManager

from ..conftest import REDIS_URL

pytestmark = pytest.mark.redis


def _runtime(prefix: str) -> tuple[sr.Runtime, RedisStateManager]:
    runtime = sr.Runtime(queue=f"{REDIS_URL}?prefix={prefix}", grace_period=0.0, services=False)
    state = runtime.state = runtime.backend.state_manager(clock=runtime.clock, history_size=5)
    assert isinstance(state, RedisStateManager)
    return runtime, state


async def test_concurrent_updates_from_two_runtimes_are_never_lost(prefix: str) -> None:
    """Read-modify-write updates racing from two runtimes (two processes' worth) all count."""
    first, one = _runtime(prefix)
    second, two = _runtime(prefix)

    async def bump(state: dict[str, int]) -> dict[str, int]:
        value = state.get("n", 0)
        await anyio.sleep(0.001)  # let the other side run mid-update
        return {"n": value + 1}

    async with first, second, anyio.create_task_group() as tg:
        await one.register_agent_state("counter")
        for manager in (one, two) * 10:
            tg.start_soon(manager.update_state, "counter", bump)
    third, three = _runtime(prefix)
    async with third:
        assert await three.get_state("counter") == {"n": 20}
        history = await three.get_state_history("counter")
        assert [change.state["n"] for change in history] == [16, 17, 18, 19, 20]
        with pytest.raises(sr.UnknownAgentStateError, match=r"'countr'.*counter"):
            await three.update_state("countr", bump)
        with pytest.raises(KeyError):
            async with three.transaction("countr"):
                pass
        assert await three.get_state("countr") == {}
        assert [c.state for c in await three.get_state_history("counter", 2)] == [
            {"n": 19},
            {"n": 20},
        ]


async def test_transaction_register_and_snapshot_round_trip(prefix: str, tmp_path: Path) -> None:
    """A transaction commits on success only; registration fills missing keys; a snapshot
    written from Redis restores into Redis."""
    runtime, state = _runtime(prefix)
    async with runtime:
        await state.register_agent_state("a", {"x": 1, "y": 2})
        await state.register_agent_state("a", {"y": 9, "z": 3})
        assert await state.get_state("a") == {"x": 1, "y": 2, "z": 3}
        async with state.transaction("a") as working:
            working["x"] = 10
        with pytest.raises(RuntimeError, match="boom"):
            async with state.transaction("a") as working:
                working["x"] = 99
                raise RuntimeError("boom")
        view = state.view("a")
        assert await view.get("x") == 10
        path = await state.snapshot(tmp_path / "state.json")
        await state.update_state("a", {"x": 0})
        assert await state.restore(path) == 1
        assert await state.get_state("a") == {"x": 10, "y": 2, "z": 3}
        assert state.agents() == ["a"]


async def test_a_redis_runtime_shares_state_with_no_extra_step(prefix: str) -> None:
    """A plain Runtime on redis:// gets the shared state from its backend: what one runtime's
    agent writes, another runtime on the same prefix reads."""
    url = f"{REDIS_URL}?prefix={prefix}"
    first = sr.Runtime(queue=url, grace_period=0.0, services=False)
    second = sr.Runtime(queue=url, grace_period=0.0, services=False)
    assert isinstance(first.state, RedisStateManager)
    async with first, second:
        await first.state.update_state("a", {"x": 1}, create=True)
        assert await second.state.get_state("a") == {"x": 1}
