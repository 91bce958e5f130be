"""StateManager: atomic updates under concurrency, copies out, bounded history, snapshots."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import anyio
import anyio.lowlevel
import pytest

import swarm_runtime as sr


async def test_seed_usage() -> None:
    """register, update, get and history behave as slide 6 describes."""
    manager = sr.StateManager()
    await manager.register_agent_state("agent_1", {"status": "idle", "tasks_completed": 0})
    await manager.update_state("agent_1", {"status": "busy"})
    await manager.update_state("agent_1", {"status": "idle", "tasks_completed": 1})
    assert await manager.get_state("agent_1") == {"status": "idle", "tasks_completed": 1}
    history = await manager.get_state_history("agent_1")
    assert [h.state["status"] for h in history] == ["idle", "busy", "idle"]
    assert history[0].timestamp <= history[-1].timestamp


async def test_many_concurrent_updaters_lose_nothing() -> None:
    """200 tasks doing read-modify-write with awaits in between never lose an increment."""
    manager = sr.StateManager(history_size=10)
    await manager.register_agent_state("counter", {"n": 0})

    async def slow_increment(state: dict[str, Any]) -> dict[str, Any]:
        value = state["n"]
        await anyio.lowlevel.checkpoint()  # another updater would interleave here without the lock
        return {**state, "n": value + 1}

    async def worker() -> None:
        for _ in range(5):
            await manager.update_state("counter", slow_increment)

    async with anyio.create_task_group() as tg:
        for _ in range(200):
            tg.start_soon(worker)
    assert await manager.get_state("counter") == {"n": 1000}
    assert len(await manager.get_state_history("counter")) == 10


async def test_transaction_commits_on_success_only() -> None:
    """A transaction's changes are kept if the block succeeds and dropped if it raises."""
    manager = sr.StateManager()
    await manager.register_agent_state("a")
    async with manager.transaction("a") as state:
        state["x"] = 1
    with pytest.raises(RuntimeError):
        async with manager.transaction("a") as state:
            state["x"] = 2
            raise RuntimeError("abort")
    assert await manager.get_state("a") == {"x": 1}


async def test_reads_are_copies() -> None:
    """Mutating what get_state or the history returned does not change the stored state."""
    manager = sr.StateManager()
    await manager.register_agent_state("a", {"items": [1]})
    got = await manager.get_state("a")
    got["items"].append(2)
    (await manager.get_state_history("a"))[0].state["items"].append(3)
    assert await manager.get_state("a") == {"items": [1]}


async def test_register_keeps_existing_state() -> None:
    """Registering again only fills in missing keys."""
    manager = sr.StateManager()
    await manager.register_agent_state("a", {"x": 1})
    await manager.register_agent_state("a", {"x": 5, "y": 2})
    assert await manager.get_state("a") == {"x": 1, "y": 2}


async def test_non_json_state_and_bad_updaters_are_refused() -> None:
    """State must be JSON (it is snapshotted); updaters must return a mapping."""
    manager = sr.StateManager()
    await manager.register_agent_state("a")
    with pytest.raises(sr.PayloadError, match="set"):
        await manager.update_state("a", {"s": {1, 2}})
    with pytest.raises(TypeError, match="must return a mapping"):
        await manager.update_state("a", lambda s: [1])  # type: ignore[arg-type,return-value]
    with pytest.raises(TypeError, match="mapping or a function"):
        await manager.update_state("a", 42)  # type: ignore[arg-type]
    assert await manager.get_state("a") == {}


async def test_snapshot_and_restore_round_trip(tmp_path: Path) -> None:
    """A snapshot is written atomically and restores every agent's state."""
    manager = sr.StateManager()
    await manager.register_agent_state("a", {"n": 1})
    await manager.update_state("b", {"tags": ["x"]}, create=True)
    path = tmp_path / "state" / "snap.json"
    await manager.snapshot(path)
    assert json.loads(path.read_text())["agents"] == {"a": {"n": 1}, "b": {"tags": ["x"]}}
    assert [p.name for p in path.parent.iterdir()] == ["snap.json"]  # no temp file left
    other = sr.StateManager()
    assert await other.restore(path) == 2
    assert await other.get_state("b") == {"tags": ["x"]}


async def test_restore_refuses_bad_snapshots(tmp_path: Path) -> None:
    """Missing, non-JSON or wrong-version snapshots raise SwarmError naming the file."""
    manager = sr.StateManager()
    with pytest.raises(sr.SwarmError, match="does not exist"):
        await manager.restore(tmp_path / "missing.json")
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(sr.SwarmError, match="not valid JSON"):
        await manager.restore(bad)
    bad.write_text(json.dumps({"version": 99, "agents": {}}))
    with pytest.raises(sr.SwarmError, match="version 99"):
        await manager.restore(bad)


async def test_runtime_snapshots_state_on_exit_and_restores_on_start(tmp_path: Path) -> None:
    """With state_snapshot set, agent state survives a runtime restart."""
    path = tmp_path / "state.json"
    for expected in (1, 2):
        rt = sr.Runtime(queue="memory://", state_snapshot=path)

        @rt.agent("counter")
        async def counter(msg: sr.Message, ctx: sr.Context) -> int:
            state = await ctx.state.update(lambda s: {"runs": s.get("runs", 0) + 1})
            return int(state["runs"])

        async with rt:
            assert await rt.request("counter", None) == expected
    assert json.loads(path.read_text())["agents"]["counter"] == {"runs": 2}


async def test_updating_an_unregistered_agent_is_refused_naming_the_known_ones() -> None:
    """As in the seed, a typo in an agent id raises (a KeyError too) instead of silently
    starting a new state; ``create=True`` and an agent's own ``ctx.state`` may create it."""
    manager = sr.StateManager()
    await manager.register_agent_state("analyzer", {"n": 1})
    with pytest.raises(sr.UnknownAgentStateError, match=r"'analyser'.*Agents with state: analyzer"):
        await manager.update_state("analyser", {"n": 2})
    with pytest.raises(KeyError):
        async with manager.transaction("analyser"):
            pass
    assert manager.agents() == ["analyzer"]
    assert await manager.update_state("analyser", {"n": 2}, create=True) == {"n": 2}
    assert await manager.view("fresh").update({"k": 1}) == {"k": 1}
    assert manager.agents() == ["analyser", "analyzer", "fresh"]
