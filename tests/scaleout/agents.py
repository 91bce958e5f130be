"""A user agent for the scale-out tests: records each execution (pid, task) to a file."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import anyio

import swarm_runtime as sr


def _note(out: str, line: str) -> None:
    with open(Path(out) / f"{os.getpid()}.log", "a") as file:
        file.write(line + "\n")
        file.flush()


async def record(msg: sr.Message, ctx: sr.Context) -> Any:
    """Note ``start TASK``, sleep ``params.sleep`` (forever if this process has
    ``SWARM_TEST_STALL`` set), note ``done TASK``, count it in the agent's state (shared by
    every worker through Redis) and return the task name and pid."""
    params = msg.payload["params"]
    task = params["task"]
    await anyio.to_thread.run_sync(_note, params["out"], f"start {task}")
    if os.environ.get("SWARM_TEST_STALL"):
        await anyio.sleep_forever()
    await anyio.sleep(float(params.get("sleep", 0.0)))
    await anyio.to_thread.run_sync(_note, params["out"], f"done {task}")
    await ctx.state.update(lambda state: {"done": state.get("done", 0) + 1})
    return {"task": task, "pid": os.getpid()}
