"""The LLM step journal contract, on every backend's ``step_journal()`` (``make_backend``)."""

from __future__ import annotations

from typing import Any

import pytest

from swarm_runtime.backends import Backend
from swarm_runtime.llm import StepJournal

from .conftest import BackendFactory


async def records_of(journal: StepJournal, run_id: str) -> dict[int, Any]:
    """What the journal holds for ``run_id`` (opened and closed again)."""
    run = await journal.open(run_id)
    await run.aclose()
    return run.records


async def test_records_written_are_read_back_by_step(make_backend: BackendFactory) -> None:
    """A run's records come back by step when the run is opened again; a new run is empty;
    the journal has its backend's capabilities."""
    backend = await make_backend()
    journal = backend.step_journal()
    assert backend.step_journal() is journal
    run = await journal.open("run-1")
    assert run.records == {}
    await run.write({"step": 0, "k": "start"}, {"step": 1, "k": "model", "message": {"c": "hé"}})
    await run.write({"step": 2, "k": "tool"})
    await run.aclose()
    again = await journal.open("run-1")
    assert again.records == {
        0: {"step": 0, "k": "start"},
        1: {"step": 1, "k": "model", "message": {"c": "hé"}},
        2: {"step": 2, "k": "tool"},
    }
    await again.aclose()
    assert await records_of(journal, "run-2") == {}
    assert (journal.durable, journal.shared) == (backend.durable, backend.shared)


async def test_the_first_record_of_a_step_stands(make_backend: BackendFactory) -> None:
    """Writing a step twice (two writers racing) keeps the first record."""
    journal = (await make_backend()).step_journal()
    run = await journal.open("dup")
    await run.write({"step": 3, "k": "tool", "content": "first"})
    await run.write({"step": 3, "k": "tool", "content": "second"})
    await run.aclose()
    assert (await records_of(journal, "dup"))[3]["content"] == "first"


async def test_durable_journals_survive_the_backend(make_backend: BackendFactory) -> None:
    """On a durable backend, a run journaled before closing it is there after reopening."""
    first = await make_backend()
    if not first.durable:
        pytest.skip("memory:// keeps nothing beyond its process")
    run = await first.step_journal().open("kept")
    await run.write({"step": 0, "k": "start"})
    await run.aclose()
    await first.aclose()
    second = await make_backend()
    assert await records_of(second.step_journal(), "kept") == {0: {"step": 0, "k": "start"}}


async def test_shared_backends_share_runs(make_backend: BackendFactory) -> None:
    """On a shared backend, a run written through one backend is read through another."""
    one = await make_backend()
    if not one.shared:
        pytest.skip("only a shared backend is seen by other processes")
    two = await make_backend()
    run = await one.step_journal().open("shared")
    await run.write({"step": 0, "k": "start"})
    await run.aclose()
    assert await records_of(two.step_journal(), "shared") == {0: {"step": 0, "k": "start"}}


def test_a_journal_for_a_url_without_opening_its_queue(tmp_path: object) -> None:
    """Backend.step_journal_at(url) gives the scheme's journal (for Swarm(store=url))."""
    assert not Backend.step_journal_at("memory://").durable
    assert Backend.step_journal_at(f"file://{tmp_path}").durable


async def test_a_run_is_claimed_while_open(make_backend: BackendFactory) -> None:
    """A run being executed cannot be opened a second time until it is closed (file: its
    flock, which the OS drops if the process dies; memory: in process)."""
    backend = await make_backend()
    if backend.shared:
        pytest.skip("redis:// runs are not claimed (the queue's lease serialises hosted runs)")
    from swarm_runtime.errors import LLMError

    journal = backend.step_journal()
    run = await journal.open("busy")
    with pytest.raises(LLMError, match="'busy' is being executed"):
        await journal.open("busy")
    await run.aclose()
    again = await journal.open("busy")
    await again.aclose()
