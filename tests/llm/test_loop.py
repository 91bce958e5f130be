"""The agent loop on the in-process scripted model: Swarm's semantics and its bugs fixed."""

from __future__ import annotations

import json
import sys
import threading
from typing import Any

import anyio
import pytest

from swarm_runtime.errors import LLMError, MissingExtraError
from swarm_runtime.llm import Agent, Result, Swarm
from swarm_runtime.testing import ScriptedModel, reply, tool_call, tool_calls

from .conftest import scripted, user


async def test_plain_answer_has_sender_usage_and_run_id() -> None:
    """One model turn: the new message carries Swarm's sender; usage and run_id are set."""
    client, model = scripted(reply("hello", usage=(7, 3)))
    response = await client.arun(Agent(name="Greeter"), user("hi"))
    assert [m["content"] for m in response.messages] == ["hello"]
    assert response.messages[0]["sender"] == "Greeter"
    assert response.usage.prompt_tokens == 7
    assert response.usage.completion_tokens == 3
    assert response.usage.requests == 1
    assert response.run_id
    assert model.requests[0].messages[0] == {
        "role": "system",
        "content": "You are a helpful agent.",
    }


async def test_callable_instructions_get_context_variables() -> None:
    """Instructions may be a function of the context variables (missing keys read as '')."""
    agent = Agent(instructions=lambda cv: f"Help {cv['name']}{cv['missing']}.")
    client, model = scripted(reply("ok"))
    await client.arun(agent, user("hi"), context_variables={"name": "Ada"})
    assert model.requests[0].messages[0]["content"] == "Help Ada."


async def test_tool_results_and_context_updates() -> None:
    """A tool gets the context variables; a Result updates them for the rest of the run."""
    seen: list[dict[str, Any]] = []

    def remember(city: str, context_variables: dict[str, Any]) -> Result:
        seen.append(dict(context_variables))
        return Result(value=f"noted {city}", context_variables={"city": city})

    agent = Agent(functions=[remember], instructions=lambda cv: f"city={cv['city']}")
    client, model = scripted(tool_call("remember", {"city": "Oslo"}), reply("done"))
    response = await client.arun(agent, user("x"), context_variables={"user": "u1"})
    assert seen == [{"user": "u1"}]
    assert response.context_variables == {"user": "u1", "city": "Oslo"}
    assert response.messages[1]["content"] == "noted Oslo"
    assert model.requests[1].messages[0]["content"] == "city=Oslo"


async def test_handoff_by_returning_an_agent() -> None:
    """A function returning an Agent hands the conversation to it (Swarm's JSON value)."""
    sales = Agent(name="Sales", instructions="sell")

    def transfer_to_sales() -> Agent:
        return sales

    triage = Agent(name="Triage", functions=[transfer_to_sales])
    client, model = scripted(tool_call("transfer_to_sales"), reply("buy this"))
    response = await client.arun(triage, user("I want to buy"))
    assert response.agent is sales
    assert json.loads(response.messages[1]["content"]) == {"assistant": "Sales"}
    assert response.messages[2]["sender"] == "Sales"
    assert model.requests[1].messages[0]["content"] == "sell"


async def test_several_handoffs_in_one_turn_the_last_wins() -> None:
    """Two handoffs in one turn: the one the model listed last wins, as in Swarm."""
    a, b = Agent(name="A"), Agent(name="B")

    def to_a() -> Agent:
        return a

    def to_b() -> Agent:
        return b

    client, _ = scripted(tool_calls(("to_b", {}), ("to_a", {})), reply("hi from A"))
    response = await client.arun(Agent(functions=[to_a, to_b]), user("x"))
    assert response.agent is a
    assert response.messages[-1]["sender"] == "A"


@pytest.mark.parametrize(
    ("script", "expected"),
    [
        (tool_call("nope"), "Error: Tool nope not found."),
        (tool_call("add", {"a": "x", "b": 1}), "Error: invalid arguments for tool add: a:"),
        (tool_call("add", {"a": 1}), "Error: invalid arguments for tool add: b: Field required"),
        (tool_call("fail"), "Error: tool fail raised ValueError: boom"),
    ],
)
async def test_tool_errors_go_back_to_the_model(script: Any, expected: str) -> None:
    """An unknown tool, malformed arguments or a raising tool is an answer; the run goes on."""

    def add(a: int, b: int) -> str:
        return str(a + b)

    def fail() -> str:
        raise ValueError("boom")

    client, model = scripted(script, reply("sorry"))
    response = await client.arun(Agent(functions=[add, fail]), user("x"))
    assert response.messages[1]["content"].startswith(expected)
    assert response.messages[-1]["content"] == "sorry"
    assert len(model.requests) == 2


async def test_malformed_json_arguments_are_a_tool_error() -> None:
    """Arguments that are not JSON at all become a tool error, not a crash."""
    from swarm_runtime.testing import Reply

    def add(a: int) -> str:
        return str(a)

    def broken(body: dict[str, Any]) -> Reply:
        return tool_call("add")

    model = ScriptedModel(broken, reply("ok"))
    original = model.script.message

    def bad_arguments(answer: Reply) -> dict[str, Any]:
        message = original(answer)
        for call in message["tool_calls"] or ():
            call["function"]["arguments"] = "{not json"
        return message

    model.script.message = bad_arguments  # type: ignore[method-assign]
    client = Swarm(model)
    response = await client.arun(Agent(functions=[add]), user("x"))
    assert response.messages[1]["content"].startswith("Error: invalid arguments for tool add")


async def test_tool_timeout_is_a_tool_error() -> None:
    """A tool past its timeout is cancelled and the model is told so."""

    async def slow() -> str:
        await anyio.sleep(30)
        return "never"

    client, _ = scripted(tool_call("slow"), reply("ok"), tool_timeout=0.05)
    response = await client.arun(Agent(functions=[slow]), user("x"))
    assert response.messages[1]["content"] == "Error: tool slow timed out after 0.05 s."


async def test_parallel_tool_calls_run_concurrently_results_in_model_order() -> None:
    """Async tools of one turn overlap; their results are appended in the model's order."""
    running = 0
    peak = 0

    async def work(n: int) -> str:
        nonlocal running, peak
        running += 1
        peak = max(peak, running)
        await anyio.sleep(0.05 * (3 - n))  # the first finishes last
        running -= 1
        return f"r{n}"

    calls = tool_calls(("work", {"n": 0}), ("work", {"n": 1}), ("work", {"n": 2}))
    client, _ = scripted(calls, reply("ok"))
    response = await client.arun(Agent(functions=[work]), user("x"))
    assert [m["content"] for m in response.messages[1:4]] == ["r0", "r1", "r2"]
    assert peak == 3


async def test_parallel_tools_are_bounded_and_sync_tools_leave_the_loop() -> None:
    """tool_concurrency bounds the calls at once; sync tools run in worker threads."""
    threads: set[str] = set()
    running = 0
    peak = 0
    lock = threading.Lock()

    def blocking(n: int) -> str:
        nonlocal running, peak
        with lock:
            running += 1
            peak = max(peak, running)
        threads.add(threading.current_thread().name)
        import time

        time.sleep(0.02)
        with lock:
            running -= 1
        return str(n)

    calls = tool_calls(*[("blocking", {"n": i}) for i in range(6)])
    client, _ = scripted(calls, reply("ok"), tool_concurrency=2)
    response = await client.arun(Agent(functions=[blocking]), user("x"))
    assert [m["content"] for m in response.messages[1:7]] == [str(i) for i in range(6)]
    assert peak <= 2
    assert threading.main_thread().name not in threads


async def test_max_turns_counts_model_calls() -> None:
    """max_turns=2 allows two model calls, however many tool messages come between."""

    def noop() -> str:
        return "."

    turn = tool_calls(("noop", {}), ("noop", {}), ("noop", {}))
    client, model = scripted(turn, turn, turn, reply("never"))
    response = await client.arun(Agent(functions=[noop]), user("x"), max_turns=2)
    assert len(model.requests) == 2
    assert sum(m["role"] == "assistant" for m in response.messages) == 2


async def test_execute_tools_false_stops_at_the_tool_call() -> None:
    """With execute_tools=False the run ends on the turn that asks for tools."""
    calls: list[int] = []

    def act() -> str:
        calls.append(1)
        return "x"

    client, _ = scripted(tool_call("act"))
    response = await client.arun(Agent(functions=[act]), user("x"), execute_tools=False)
    assert calls == []
    assert response.messages[-1]["tool_calls"][0]["function"]["name"] == "act"


async def test_private_keys_never_go_on_the_wire() -> None:
    """sender and tool_name stay in Response.messages but are not sent to the model."""

    def act() -> str:
        return "x"

    client, model = scripted(tool_call("act"), reply("ok"))
    response = await client.arun(Agent(functions=[act]), user("x"))
    assert response.messages[0]["sender"]
    assert response.messages[1]["tool_name"] == "act"
    for message in model.requests[1].messages:
        assert "sender" not in message
        assert "tool_name" not in message


async def test_streamed_sender_is_the_active_agent_after_a_handoff() -> None:
    """Swarm streams the first agent's name after a handoff; here it is the new agent's."""
    sales = Agent(name="Sales")

    def to_sales() -> Agent:
        return sales

    client, _ = scripted(tool_call("to_sales"), reply("hello from sales"))
    events = [
        e
        async for e in await client.arun(
            Agent(name="T", functions=[to_sales]), user("x"), stream=True
        )
    ]
    senders = [e["sender"] for e in events if "sender" in e]
    assert senders == ["T", "Sales"]
    assert events[0] == {"delim": "start"}
    assert "response" in events[-1]
    response = events[-1]["response"]
    assert response.messages[-1] == {
        "content": "hello from sales",
        "role": "assistant",
        "function_call": None,
        "tool_calls": None,
        "sender": "Sales",
    }


async def test_idempotency_key_is_stable_per_call() -> None:
    """A tool declaring idempotency_key gets '<run_id>-<step>' (hidden from the schema)."""
    keys: list[str] = []

    def charge(amount: int, idempotency_key: str) -> str:
        keys.append(idempotency_key)
        return "charged"

    client, model = scripted(
        tool_calls(("charge", {"amount": 1}), ("charge", {"amount": 2})), reply("ok")
    )
    response = await client.arun(Agent(functions=[charge]), user("x"), run_id="r1")
    assert sorted(keys) == ["r1-2", "r1-3"]  # one per call, whichever thread ends first
    schema = model.requests[0].body["tools"][0]["function"]["parameters"]
    assert list(schema["properties"]) == ["amount"]
    assert response.run_id == "r1"


async def test_run_inside_a_running_loop_points_to_arun() -> None:
    """The sync run() refuses to block a running event loop and names arun."""
    client, _ = scripted(reply("x"))
    with pytest.raises(LLMError, match=r"arun"):
        client.run(Agent(), user("x"))


def test_sync_run_and_stream_outside_a_loop() -> None:
    """run() works from sync code, whole or streamed, several times on one Swarm."""
    client, _ = scripted(reply("one"), reply("two three"))
    with client:
        assert client.run(Agent(), user("x")).messages[0]["content"] == "one"
        events = list(client.run(Agent(), user("x"), stream=True))
        assert [e.get("content") for e in events[2:4]] == ["two", " three"]
        assert events[-1]["response"].messages[0]["content"] == "two three"


def test_missing_openai_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    """Without the openai package, Swarm() says to install swarm-runtime[llm]."""
    monkeypatch.setitem(sys.modules, "openai", None)
    with pytest.raises(MissingExtraError, match=r"swarm-runtime\[llm\]"):
        Swarm()
    assert Agent(name="still importable").name == "still importable"
