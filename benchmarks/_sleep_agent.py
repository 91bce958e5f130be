"""The agent of ``bench_schedule.py``'s pipelines: sleeps its task's ``seconds``."""

from __future__ import annotations

import asyncio
from typing import Any


async def sleep(msg: Any, ctx: Any) -> None:
    """Stand in for a task of a traced workflow: take as long as it took, scaled."""
    await asyncio.sleep(msg.payload["params"]["seconds"])
