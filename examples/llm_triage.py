"""Swarm-style LLM triage: a triage agent hands customers off to refunds or sales.

Runs against any OpenAI-compatible endpoint (``OPENAI_API_KEY`` / ``OPENAI_BASE_URL``), or
with ``--fake`` against the scripted server of ``swarm_runtime.testing`` (offline). The runs
are durable (``--store``, default a temporary ``file://`` directory): each is replayed from
its journal by run id afterwards, with no model call and no tool run again.

    python examples/llm_triage.py --fake
    python examples/llm_triage.py --model gpt-4o-mini "I want my money back for order 7"
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
from typing import Any

from swarm_runtime.llm import Agent, Result, Swarm
from swarm_runtime.testing import ScriptedServer, reply, tool_call

REFUNDS_DONE: list[str] = []


def process_refund(item_id: str, reason: str, idempotency_key: str) -> str:
    """Refund an item. Make sure you have the item_id of the form item_... and a reason."""
    REFUNDS_DONE.append(idempotency_key)  # a real system passes the key to the payment API
    return f"Refund of {item_id} processed ({reason})."


def look_up_item(search_query: str, context_variables: dict[str, Any]) -> Result:
    """Find the item id of an order from a description of it."""
    item_id = "item_132612938"
    return Result(value=f"Found {item_id}", context_variables={"item_id": item_id})


def transfer_back_to_triage() -> Agent:
    """Call this if the user brings up a topic outside of your purview."""
    return triage_agent


def transfer_to_sales() -> Agent:
    """Hand the customer to the sales team (buying, prices, offers)."""
    return sales_agent


def transfer_to_refunds() -> Agent:
    """Hand the customer to the refunds team (returns, broken items, money back)."""
    return refunds_agent


triage_agent = Agent(
    name="Triage Agent",
    instructions=lambda cv: (
        f"Determine which agent is best suited to handle {cv['user_name'] or 'the user'}'s "
        "request, and transfer the conversation to that agent."
    ),
    functions=[transfer_to_sales, transfer_to_refunds],
)
sales_agent = Agent(
    name="Sales Agent",
    instructions="Be super enthusiastic about selling bees.",
    functions=[transfer_back_to_triage],
)
refunds_agent = Agent(
    name="Refunds Agent",
    instructions="Help the user with a refund. Look the item up, then process the refund.",
    functions=[look_up_item, process_refund, transfer_back_to_triage],
)
AGENTS = [triage_agent, sales_agent, refunds_agent]

FAKE_SCRIPT = [
    # "My bee kettle arrived broken, I want my money back."
    tool_call("transfer_to_refunds"),
    tool_call("look_up_item", {"search_query": "bee kettle"}),
    tool_call("process_refund", {"item_id": "item_132612938", "reason": "arrived broken"}),
    reply("Done! Your refund for the bee kettle is on its way."),
    # "I'd like to buy some bees."
    tool_call("transfer_to_sales"),
    reply("Bees are AMAZING! How many hives' worth would you like?"),
]
FAKE_REQUESTS = [
    "My bee kettle arrived broken, I want my money back.",
    "I'd like to buy some bees.",
]


def show(response: Any) -> None:
    for message in response.messages:
        sender = message.get("sender") or message.get("tool_name") or message["role"]
        for call in message.get("tool_calls") or ():
            print(f"  {sender}: calls {call['function']['name']}({call['function']['arguments']})")
        if message.get("content"):
            print(f"  {sender}: {message['content']}")


async def converse(client: Swarm, requests: list[str], model: str | None) -> list[str]:
    run_ids = []
    for text in requests:
        print(f"user: {text}")
        response = await client.arun(
            triage_agent,
            [{"role": "user", "content": text}],
            context_variables={"user_name": "Ann"},
            model_override=model,
        )
        show(response)
        usage = response.usage
        print(
            f"  -> {response.agent.name if response.agent else '?'}; run {response.run_id}; "
            f"{usage.requests} model calls, {usage.total_tokens} tokens\n"
        )
        run_ids.append(str(response.run_id))
    return run_ids


async def replay(client: Swarm, requests: list[str], run_ids: list[str], model: str | None) -> None:
    for text, run_id in zip(requests, run_ids, strict=True):
        response = await client.arun(
            triage_agent,
            [{"role": "user", "content": text}],
            context_variables={"user_name": "Ann"},
            model_override=model,
            run_id=run_id,
        )
        print(
            f"replayed run {run_id}: {response.usage.requests} model calls, "
            f"{response.usage.replayed_steps} steps from the journal, "
            f"last agent {response.agent.name if response.agent else '?'}"
        )


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("request", nargs="*", help="what the customer says")
    parser.add_argument("--fake", action="store_true", help="use the offline scripted server")
    parser.add_argument("--model", default=None, help="model for every agent (default gpt-4o)")
    parser.add_argument("--store", default=None, help="journal URL (default: a temp file://)")
    args = parser.parse_args()
    requests = args.request or FAKE_REQUESTS
    with tempfile.TemporaryDirectory() as tmp:
        store = args.store or f"file://{tmp}"
        server = ScriptedServer(*FAKE_SCRIPT) if args.fake else None
        client_arg: Any = None
        if server is not None:
            server.start()
            client_arg = server.client()
            requests = FAKE_REQUESTS
        try:
            async with Swarm(client_arg, store=store, agents=AGENTS) as client:
                run_ids = await converse(client, requests, args.model)
                await replay(client, requests, run_ids, args.model)
            if client_arg is not None:
                await client_arg.close()
        finally:
            if server is not None:
                server.stop()
                print(
                    f"scripted server: {len(server.requests)} requests, {server.answered} answered"
                )
    print(f"refunds processed: {len(REFUNDS_DONE)}")


if __name__ == "__main__":
    asyncio.run(main())
