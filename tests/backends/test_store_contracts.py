"""The store contracts every backend keeps: run store, agent state, handoff records,
table artifacts.

Each test runs on memory://, file:// and redis:// (see ``make_backend``). Sharing and
durability are checked where the backend says it has them (its capability attributes).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import anyio
import anyio.lowlevel
import polars as pl
import pytest

import swarm_runtime as sr
from swarm_runtime.artifacts import open_table
from swarm_runtime.backends import Backend

from .conftest import BackendFactory

HEADER = {"k": "run", "run_id": "r1", "name": "wf", "fingerprint": "f1", "created_at": 1.0}


def _task(name: str, at: float) -> dict[str, Any]:
    return {"k": "task", "name": name, "state": "completed", "result": {"n": name}, "at": at}


# ---------------------------------------------------------------------- capabilities


async def test_capabilities_are_attributes_of_the_backend(make_backend: BackendFactory) -> None:
    """Each backend says what it offers; the layers above read only these."""
    backend = await make_backend()
    kind = make_backend.kind  # type: ignore[attr-defined]
    assert (backend.shared, backend.durable) == {
        "memory": (False, False),
        "file": (False, True),
        "redis": (True, True),
    }[kind]
    assert backend.queue.is_open
    if kind == "file":
        assert backend.artifact_location is not None
        assert backend.artifact_location.startswith(str(backend.queue.directory))  # type: ignore[attr-defined]
    assert repr(backend).startswith(f"<{type(backend).__name__}")


async def test_the_store_is_one_per_backend(make_backend: BackendFactory) -> None:
    backend = await make_backend()
    assert backend.run_store() is backend.run_store()


# ---------------------------------------------------------------------- run store


async def test_run_store_create_load_list(make_backend: BackendFactory) -> None:
    """A created run is listed and loads back with its records; another run cannot take its
    id; an unknown id is a WorkflowError naming it."""
    store = (await make_backend()).run_store()
    log = await store.create(dict(HEADER))
    log.append({"k": "session", "at": 2.0})
    log.append(_task("a", 3.0))
    await log.close()
    with pytest.raises(sr.WorkflowError, match="already exists"):
        await store.create({**HEADER, "name": "other"})  # (redis: the same header is a retry)
    with pytest.raises(sr.WorkflowError, match="no run with id 'nope'"):
        await store.load("nope")
    loaded, again = await store.load("r1")
    await again.close()
    assert loaded.header["name"] == "wf"
    assert (loaded.sessions, list(loaded.completed)) == (1, ["a"])
    [summary] = await store.list_runs()
    assert (summary.run_id, summary.name, summary.fingerprint) == ("r1", "wf", "f1")
    assert summary.completed == 1
    # a session without an end record: the run never finished, a plain run resumes it
    assert (await store.find_unfinished("wf", "f1")) is not None
    assert (await store.find_unfinished("wf", "other")) is None


async def test_run_store_keeps_runs_across_reopening(make_backend: BackendFactory) -> None:
    """A durable backend's runs survive closing it and opening it again."""
    first = await make_backend()
    if not first.durable:
        pytest.skip("runs of a non-durable backend live as long as it does")
    log = await first.run_store().create(dict(HEADER))
    log.append(_task("a", 3.0))
    await log.close()
    await first.aclose()
    second = await make_backend()
    loaded, log2 = await second.run_store().load("r1")
    await log2.close()
    assert list(loaded.completed) == ["a"]


async def test_run_store_recorded_durations(make_backend: BackendFactory) -> None:
    """Durations of a workflow's earlier runs (last attempt of each completed task), per
    task and per agent; other workflows' runs and the excluded run do not count."""
    store = (await make_backend()).run_store()

    def timed(name: str, agent: str, start: float, end: float) -> dict[str, Any]:
        attempt = [1, agent, 0, start, end, "ok", None]
        return {**_task(name, end), "agent": agent, "history": [attempt]}

    log = await store.create(dict(HEADER))
    log.append(timed("a", "w", 10.0, 14.0))
    log.append(timed("b", "w", 14.0, 16.0))
    log.append({**timed("c", "v", 1.0, 2.0), "state": "failed"})
    await log.close()
    other = await store.create({**HEADER, "run_id": "r2", "name": "other"})
    other.append(timed("a", "w", 0.0, 100.0))
    await other.close()
    found = await store.recorded_durations("wf")
    assert found.tasks == {"a": 4.0, "b": 2.0}
    assert found.agents == {"w": (2, 3.0)}
    assert (await store.recorded_durations("wf", exclude="r1")).tasks == {}


# ---------------------------------------------------------------------- agent state


async def test_state_updates_copies_and_history(make_backend: BackendFactory) -> None:
    """Updates merge, functions transform, reads are copies, history is bounded."""
    backend = await make_backend()
    state = backend.state_manager(history_size=3)
    await state.register_agent_state("a", {"x": 1})
    await state.update_state("a", {"y": 2})
    await state.update_state("a", lambda s: {**s, "x": s["x"] + 10})
    got = await state.get_state("a")
    assert got == {"x": 11, "y": 2}
    got["x"] = -1  # a copy: the stored state does not change
    assert (await state.get_state("a"))["x"] == 11
    for n in range(5):
        await state.update_state("a", {"n": n})
    history = await state.get_state_history("a")
    assert [change.state["n"] for change in history] == [2, 3, 4]
    async with state.transaction("a") as working:
        working["t"] = True
    assert (await state.get_state("a"))["t"] is True


async def test_concurrent_state_updates_are_never_lost(make_backend: BackendFactory) -> None:
    state = (await make_backend()).state_manager()

    async def bump(current: dict[str, int]) -> dict[str, int]:
        value = current.get("n", 0)
        await anyio.lowlevel.checkpoint()
        return {"n": value + 1}

    await state.register_agent_state("counter")
    async with anyio.create_task_group() as tg:
        for _ in range(20):
            tg.start_soon(state.update_state, "counter", bump)
    assert await state.get_state("counter") == {"n": 20}


async def test_shared_backend_shares_state(make_backend: BackendFactory) -> None:
    """On a shared backend, what one process's runtime writes another one reads."""
    one = await make_backend()
    if not one.shared:
        pytest.skip("state of a backend that is not shared stays in its process")
    two = await make_backend()
    await one.state_manager().register_agent_state("a")
    await one.state_manager().update_state("a", {"x": 1})
    assert await two.state_manager().get_state("a") == {"x": 1}
    with pytest.raises(sr.UnknownAgentStateError, match="'b'"):  # unknown in every process
        await two.state_manager().update_state("b", {"x": 1})


# ---------------------------------------------------------------------- handoffs


async def test_handoff_settles_exactly_once_and_is_traced(make_backend: BackendFactory) -> None:
    handoffs = (await make_backend()).handoff_protocol()
    root = await handoffs.initiate_handoff("a", "b", {"job": 1}, reason="billing")
    child = await handoffs.initiate_handoff("b", "c", None, parent_id=root)
    with pytest.raises(sr.HandoffError):
        await handoffs.verify(root, "someone-else")
    assert (await handoffs.verify(root, "b")).verified_by == "b"
    assert await handoffs.complete_handoff(child, True, result={"ok": 1})
    assert not await handoffs.complete_handoff(child, False, error="late")  # once only
    settled = await handoffs.wait(child, timeout=5)
    assert (settled.status, settled.result) == ("completed", {"ok": 1})
    assert [h.id for h in await handoffs.trace(child)] == [root, child]
    pending = await handoffs.records(status="pending")
    assert [h.id for h in pending] == [root]
    with pytest.raises(sr.HandoffError, match="unknown"):
        await handoffs.verify("nope", "b")


async def test_shared_backend_shares_handoffs(make_backend: BackendFactory) -> None:
    one = await make_backend()
    if not one.shared:
        pytest.skip("handoffs of a backend that is not shared stay in its process")
    two = await make_backend()
    made = await one.handoff_protocol().initiate_handoff("a", "b", {"x": 1})
    assert await two.handoff_protocol().complete_handoff(made, True, result=2)
    assert (await one.handoff_protocol().wait(made, timeout=5)).result == 2


# ---------------------------------------------------------------------- artifact store


async def test_artifact_store_contract(make_backend: BackendFactory, tmp_path: Path) -> None:
    """A backend hands out one artifact store (its own place, or the configured directory);
    a table written there reads back verified; on a shared backend without a location it
    is a clear ConfigError, never a copy into the queue's store."""
    backend = await make_backend()
    frame = pl.DataFrame({"a": [1, 2, None], "b": ["x", "y", "ü"]})
    stores = [backend.artifact_store(str(tmp_path / "shared"))]
    if backend.shared:
        with pytest.raises(sr.ConfigError, match="location that every worker can read"):
            backend.artifact_store()
    else:
        if not backend.durable:  # in-process tables: one store, so results stay readable
            assert backend.artifact_store() is backend.artifact_store()
        stores.append(backend.artifact_store())
    for store in stores:
        ref = store.write_table(frame.lazy(), run="r1", name="t")
        assert ref.rows == 3
        assert open_table(ref).collect().equals(frame)
        assert store.runs() == ["r1"]
        assert store.delete_run("r1") == ref.size
        assert store.runs() == []


# ---------------------------------------------------------------------- hooks


class _Bare(Backend):
    scheme = "bare"

    def _new_run_store(self) -> Any:
        raise AssertionError("not used")


async def test_stores_a_backend_lacks_are_a_clear_error() -> None:
    """The artifact store and step journal hooks say which backend lacks them."""
    bare = _Bare(sr.MemoryQueue())
    with pytest.raises(sr.NotSupportedError, match=r"artifact store .* bare:// backend"):
        bare.artifact_store()
    with pytest.raises(sr.NotSupportedError, match=r"step journal .* bare:// backend"):
        bare.step_journal()
    assert isinstance(sr.NotSupportedError("x"), sr.ConfigError)
