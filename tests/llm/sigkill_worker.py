"""Child process for the SIGKILL test: a durable run whose tool has a counted side effect.

Usage: python sigkill_worker.py BASE_URL STORE_DIR RUN_ID COUNTER_FILE
"""

from __future__ import annotations

import asyncio
import json
import os
import sys

from swarm_runtime.llm import Agent, Swarm

BASE_URL, STORE, RUN_ID, COUNTER = sys.argv[1:5]


def charge(amount: int, idempotency_key: str) -> str:
    """Charge the customer (appends one fsync'd line per execution)."""
    with open(COUNTER, "a") as f:
        f.write(f"{amount} {idempotency_key}\n")
        f.flush()
        os.fsync(f.fileno())
    return f"charged {amount}"


async def main() -> None:
    import openai

    agent = Agent(name="Billing", functions=[charge])
    http = openai.AsyncOpenAI(base_url=BASE_URL, api_key="k")
    async with http, Swarm(http, store=f"file://{STORE}") as client:
        response = await client.arun(
            agent, [{"role": "user", "content": "charge 5"}], run_id=RUN_ID
        )
    print(
        json.dumps(
            {"content": response.messages[-1]["content"], "usage": response.usage.model_dump()}
        )
    )


asyncio.run(main())
