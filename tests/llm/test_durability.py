"""Durable runs: every step journaled; a resumed run replays without paying or redoing."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import anyio
import pytest

from swarm_runtime.errors import JournalMismatchError, LLMError, ModelCallError
from swarm_runtime.llm import Agent, MemoryStepJournal, StepJournal, Swarm, open_step_journal
from swarm_runtime.testing import ScriptedModel, error, reply, tool_call, tool_calls

from ..conftest import REDIS_URL, require_redis
from .conftest import NO_WAIT, user

StoreFactory = Callable[[], StepJournal]


@pytest.fixture(params=["memory", "file", "redis"])
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[StoreFactory]:
    """New handles on one journal of each backend (as a new process would open them)."""
    kind: str = request.param
    prefix = f"swarmtest:{uuid.uuid4().hex[:12]}"
    memory = MemoryStepJournal()
    opened: list[StepJournal] = []
    if kind == "redis":
        require_redis()

    def factory() -> StepJournal:
        if kind == "memory":
            return memory
        url = f"file://{tmp_path}" if kind == "file" else f"{REDIS_URL}?prefix={prefix}"
        journal = open_step_journal(url)
        opened.append(journal)
        return journal

    yield factory
    for journal in opened:
        await journal.aclose()
    if kind == "redis":
        from ..queue.redis_helpers import delete_keys

        await delete_keys(prefix)


class Counter:
    """A tool with a side effect we can count."""

    def __init__(self) -> None:
        self.calls: list[tuple[int, str]] = []

    def charge(self, amount: int, idempotency_key: str) -> str:
        """Charge the card."""
        self.calls.append((amount, idempotency_key))
        return f"charged {amount}"


def agent_with(counter: Counter, **fields: Any) -> Agent:
    charge = counter.charge
    return Agent(name="Billing", functions=[charge], **fields)


async def test_a_finished_run_replays_without_model_calls_or_tools(store: StoreFactory) -> None:
    """arun(run_id=R) on a finished run gives the same response from the journal alone."""
    counter = Counter()
    model = ScriptedModel(tool_call("charge", {"amount": 5}), reply("done"))
    first = await Swarm(model, store=store()).arun(agent_with(counter), user("pay"))
    again = ScriptedModel()
    second = await Swarm(again, store=store()).arun(
        agent_with(counter), user("pay"), run_id=first.run_id
    )
    assert again.requests == []
    assert len(counter.calls) == 1
    assert second.messages == first.messages
    assert second.usage.replayed_steps == 3
    assert (second.usage.requests, second.usage.total_tokens) == (0, first.usage.total_tokens)


async def test_a_failed_run_resumes_where_it_stopped(store: StoreFactory) -> None:
    """After a failure past a tool call, a resume asks only the failed step again."""
    counter = Counter()
    model = ScriptedModel(tool_call("charge", {"amount": 5}), error(400, "bad"))
    with pytest.raises(ModelCallError):
        await Swarm(model, store=store(), retry=NO_WAIT).arun(
            agent_with(counter), user("pay"), run_id="run-1"
        )
    model2 = ScriptedModel(reply("done"))
    response = await Swarm(model2, store=store()).arun(
        agent_with(counter), user("pay"), run_id="run-1"
    )
    assert response.messages[-1]["content"] == "done"
    assert counter.calls == [(5, "run-1-2")]
    assert len(model2.requests) == 1
    assert model2.requests[0].messages[-1]["content"] == "charged 5"


async def test_cancelled_mid_tools_redoes_only_unfinished_calls(store: StoreFactory) -> None:
    """A run cut while parallel tools run keeps the finished ones; the resumed run reruns
    only the unfinished call, with the same idempotency key."""
    done: list[str] = []
    keys: dict[str, list[str]] = {"fast": [], "slow": []}
    slow_blocks = True

    async def fast(idempotency_key: str) -> str:
        keys["fast"].append(idempotency_key)
        done.append("fast")
        return "f"

    async def slow(idempotency_key: str) -> str:
        keys["slow"].append(idempotency_key)
        if slow_blocks:
            await anyio.sleep(30)
        done.append("slow")
        return "s"

    agent = Agent(functions=[fast, slow])
    model = ScriptedModel(tool_calls(("fast", {}), ("slow", {})))
    with anyio.move_on_after(0.3):
        await Swarm(model, store=store()).arun(agent, user("x"), run_id="cut")
    assert done == ["fast"]
    slow_blocks = False
    model2 = ScriptedModel(reply("ok"))
    response = await Swarm(model2, store=store()).arun(agent, user("x"), run_id="cut")
    assert done == ["fast", "slow"]
    assert keys == {"fast": ["cut-2"], "slow": ["cut-3", "cut-3"]}
    assert [m["content"] for m in response.messages[1:]] == ["f", "s", "ok"]


async def test_changed_instructions_or_tools_is_a_clear_mismatch(store: StoreFactory) -> None:
    """A resumed run whose request changed names the step and what changed."""
    counter = Counter()
    model = ScriptedModel(tool_call("charge", {"amount": 5}), reply("done"))
    first = await Swarm(model, store=store()).arun(agent_with(counter), user("pay"))
    changed = agent_with(counter, instructions="Be terse.")
    with pytest.raises(JournalMismatchError, match=r"step 1 .*instructions changed") as caught:
        await Swarm(ScriptedModel(), store=store()).arun(changed, user("pay"), run_id=first.run_id)
    assert caught.value.differences == ("instructions",)
    other_model = agent_with(counter, model="gpt-4o-mini")
    with pytest.raises(JournalMismatchError, match="model"):
        await Swarm(ScriptedModel(), store=store()).arun(
            other_model, user("pay"), run_id=first.run_id
        )
    with pytest.raises(JournalMismatchError, match="step 0.*input"):
        await Swarm(ScriptedModel(), store=store()).arun(
            agent_with(counter), user("refund"), run_id=first.run_id
        )


async def test_mismatch_policy_journal_replays_what_was_recorded(store: StoreFactory) -> None:
    """on_mismatch='journal' trusts the journal: the recorded answers are replayed."""
    counter = Counter()
    model = ScriptedModel(tool_call("charge", {"amount": 5}), reply("done"))
    first = await Swarm(model, store=store()).arun(agent_with(counter), user("pay"))
    changed = agent_with(counter, instructions="Be terse.")
    again = ScriptedModel()
    response = await Swarm(again, store=store(), on_mismatch="journal").arun(
        changed, user("pay"), run_id=first.run_id
    )
    assert response.messages[-1]["content"] == "done"
    assert again.requests == []


async def test_replayed_handoff_needs_the_target_agent(store: StoreFactory) -> None:
    """A journaled handoff is resolved by name among Swarm(agents=...); unknown: clear error."""
    refunds = Agent(name="Refunds")

    def to_refunds() -> Agent:
        return refunds

    triage = Agent(name="Triage", functions=[to_refunds])
    model = ScriptedModel(tool_call("to_refunds"), reply("refunded"))
    first = await Swarm(model, store=store()).arun(triage, user("money back"))
    with pytest.raises(LLMError, match=r"'Refunds'.*Swarm\(agents=\[\.\.\.\]\)"):
        await Swarm(ScriptedModel(), store=store()).arun(
            triage, user("money back"), run_id=first.run_id
        )
    response = await Swarm(ScriptedModel(), store=store(), agents=[refunds]).arun(
        triage, user("money back"), run_id=first.run_id
    )
    assert response.agent is refunds
    assert response.messages[-1]["sender"] == "Refunds"


async def test_streamed_replay_yields_the_recorded_messages(store: StoreFactory) -> None:
    """A replayed step streams as one delta with the whole message, then the response."""
    first = await Swarm(ScriptedModel(reply("hello there")), store=store()).arun(
        Agent(), user("hi")
    )
    again = ScriptedModel()
    events = [
        e
        async for e in await Swarm(again, store=store()).arun(
            Agent(), user("hi"), stream=True, run_id=first.run_id
        )
    ]
    assert events[0] == {"delim": "start"}
    assert events[1]["content"] == "hello there"
    assert events[1]["sender"] == "Agent"
    assert events[2] == {"delim": "end"}
    assert events[-1]["response"].messages == first.messages
    assert again.requests == []


async def test_context_variables_from_tools_are_journaled(store: StoreFactory) -> None:
    """Context updates returned by tools come back on replay without running the tool."""
    from swarm_runtime.llm import Result

    ran: list[int] = []

    def login(user_id: int) -> Result:
        ran.append(user_id)
        return Result(value="ok", context_variables={"user_id": user_id})

    agent = Agent(functions=[login], instructions=lambda cv: f"user {cv['user_id']}")
    model = ScriptedModel(tool_call("login", {"user_id": 42}), error(400, "stop"))
    with pytest.raises(ModelCallError):
        await Swarm(model, store=store(), retry=NO_WAIT).arun(agent, user("x"), run_id="cv")
    model2 = ScriptedModel(reply("hello 42"))
    response = await Swarm(model2, store=store()).arun(agent, user("x"), run_id="cv")
    assert ran == [42]
    assert response.context_variables == {"user_id": 42}
    assert model2.requests[0].messages[0]["content"] == "user 42"


async def test_file_journal_cuts_a_torn_tail(tmp_path: Path) -> None:
    """A half-written last record (a crash mid-write) is cut off; the run resumes and its
    next records follow the last good one."""
    from swarm_runtime.orchestrator._runstore import decode_lines

    def act() -> str:
        return "acted"

    url = f"file://{tmp_path}"
    agent = Agent(functions=[act])
    async with open_step_journal(url) as journal:
        model = ScriptedModel(tool_call("act"), error(400, "stop"))
        with pytest.raises(ModelCallError):
            await Swarm(model, store=journal, retry=NO_WAIT).arun(agent, user("x"), run_id="torn")
    log = tmp_path / "llm" / "torn.log"
    good = log.read_bytes()
    log.write_bytes(good + b'0badc0de {"step": 3, "k": "mod')
    async with open_step_journal(url) as journal:
        again = ScriptedModel(reply("two"))
        response = await Swarm(again, store=journal).arun(agent, user("x"), run_id="torn")
    assert response.messages[-1]["content"] == "two"
    assert len(again.requests) == 1
    data = log.read_bytes()
    records, valid, bad = decode_lines(data)
    assert data.startswith(good)
    assert (valid, bad) == (len(data), 0)
    assert [r["step"] for r in records] == [0, 1, 2, 3]


def test_store_urls_are_checked(tmp_path: Path) -> None:
    """A store URL of an unknown scheme is a clear error; a plain path is a directory."""
    from swarm_runtime.errors import ConfigError

    with pytest.raises(ConfigError, match="unknown queue URL scheme 'ftp'"):
        open_step_journal("ftp://x")
    assert open_step_journal(str(tmp_path)).durable


async def test_unsafe_run_ids_are_refused_on_file(tmp_path: Path) -> None:
    """A run id that could escape the journal directory is refused."""
    async with open_step_journal(f"file://{tmp_path}") as journal:
        with pytest.raises(LLMError, match="run id"):
            await journal.open("../evil")
