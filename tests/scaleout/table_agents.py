"""A user agent for the Redis table test: tags each upstream table with the worker's pid."""

from __future__ import annotations

import os
from typing import Any

import anyio
import polars as pl


async def tag(msg: Any, ctx: Any) -> pl.DataFrame:
    """The upstream table with a ``pid`` column (this process) and a ``part`` column.

    The first tasks wait (up to 30 s) until two processes have started one, so the test
    sees both workers take part whatever the scheduling.
    """
    params = msg.payload["params"]
    meeting = anyio.Path(params["meeting"])
    await meeting.mkdir(exist_ok=True)
    await (meeting / str(os.getpid())).touch()
    with anyio.move_on_after(30):
        while len([p async for p in meeting.iterdir()]) < 2:
            await anyio.sleep(0.05)
    (table,) = msg.payload["inputs"].values()
    return table.to_polars().with_columns(pid=pl.lit(os.getpid()), part=pl.lit(params["part"]))
