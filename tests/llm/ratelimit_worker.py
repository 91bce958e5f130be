"""Child process for the shared rate-limit test: two model calls under a Redis limit.

Usage: python ratelimit_worker.py BASE_URL REDIS_URL KEY_PREFIX GO_FILE
"""

from __future__ import annotations

import asyncio
import sys
import time
from pathlib import Path

import openai

from swarm_runtime.llm import Agent, RateLimit, Swarm

BASE_URL, REDIS_URL, PREFIX, GO = sys.argv[1:5]


async def main() -> None:
    limit = RateLimit(requests=2, per=2, storage=REDIS_URL, key_prefix=PREFIX)
    http = openai.AsyncOpenAI(base_url=BASE_URL, api_key="k")
    async with http, Swarm(http, rate_limit=limit) as client:
        for _ in range(2):
            await client.arun(Agent(), [{"role": "user", "content": "hi"}])
    print("done", flush=True)


print("ready", flush=True)
while not Path(GO).exists():  # both processes start their calls together
    time.sleep(0.01)
asyncio.run(main())
