"""The LLM step journal contract, on every backend's ``step_journal()``."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from swarm_runtime.backends import Backend

from ..conftest import REDIS_URL, require_redis


@pytest.fixture(params=["memory", "file", "redis"])
async def backend(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Backend]:
    """An opened backend of each kind (redis under a private prefix, removed afterwards)."""
    prefix = f"swarmtest:{uuid.uuid4().hex[:12]}"
    if request.param == "redis":
        require_redis()
    url = {
        "memory": "memory://",
        "file": f"file://{tmp_path / 'q'}",
        "redis": f"{REDIS_URL}?prefix={prefix}",
    }[request.param]
    async with Backend.open(url) as opened:
        yield opened
    if request.param == "redis":
        from ..queue.redis_helpers import delete_keys

        await delete_keys(prefix)


async def test_records_written_are_read_back_by_step(backend: Backend) -> None:
    """A run's records come back by step when the run is opened again; a new run is empty."""
    journal = backend.step_journal()
    assert backend.step_journal() is journal
    run = await journal.open("run-1")
    assert run.records == {}
    await run.write(
        {"step": 0, "k": "start"}, {"step": 1, "k": "model", "message": {"content": "hé"}}
    )
    await run.aclose()
    again = await journal.open("run-1")
    assert again.records == {
        0: {"step": 0, "k": "start"},
        1: {"step": 1, "k": "model", "message": {"content": "hé"}},
    }
    assert (await journal.open("run-2")).records == {}
    assert journal.durable == backend.durable
    assert journal.shared == backend.shared


async def test_the_first_record_of_a_step_stands(backend: Backend) -> None:
    """Writing a step twice (two writers racing) keeps the first record."""
    journal = backend.step_journal()
    run = await journal.open("dup")
    await run.write({"step": 3, "k": "tool", "content": "first"})
    await run.write({"step": 3, "k": "tool", "content": "second"})
    await run.aclose()
    assert (await journal.open("dup")).records[3]["content"] == "first"


async def test_durable_journals_survive_a_new_backend(backend: Backend, tmp_path: Path) -> None:
    """On a durable backend, the journal opened through another handle holds the run."""
    if not backend.durable:
        pytest.skip("memory:// keeps nothing beyond its process")
    run = await backend.step_journal().open("kept")
    await run.write({"step": 0, "k": "start"})
    await run.aclose()
    url = (
        f"file://{tmp_path / 'q'}"
        if not backend.shared
        else f"{REDIS_URL}?prefix={backend.step_journal().prefix}"  # type: ignore[attr-defined]
    )
    other = Backend.step_journal_at(url)
    try:
        assert (await other.open("kept")).records == {0: {"step": 0, "k": "start"}}
    finally:
        await other.aclose()
