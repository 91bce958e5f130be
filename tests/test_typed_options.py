"""Send-like methods take typed keyword options: mypy rejects a misspelt or mistyped one."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest
from mypy import api

pytestmark = pytest.mark.slow

SNIPPET = """
import swarm_runtime as sr


async def use(
    rt: sr.Runtime, ctx: sr.Context, q: sr.MessageQueue, comm: sr.CommunicationSystem
) -> None:
    await rt.send("a", 1, delay=5, priority=2, dedup_key="k", headers={"h": 1})
    await rt.request("a", 1, timeout=3.0, workflow_id="wf")
    await rt.send("a", 1, dealy=5)  # line 10
    await rt.request("a", 1, timout=5)  # line 11
    await rt.publish("t", 1, priorty=1)  # line 12
    await ctx.send("a", 1, dedup="k")  # line 13
    await ctx.request("a", 1, timeout="soon")  # line 14
    await ctx.publish("t", 1, header={})  # line 15
    await q.publish("t", 1, dely=1)  # line 16
    await comm.send_message(None, "a", 1, priority="high")  # line 17
"""


@pytest.mark.timeout(300)
def test_mypy_rejects_misspelt_options(tmp_path: Path) -> None:
    """Each misspelt option (and each wrongly typed one) is a mypy error on its own line;
    the correctly spelt calls pass."""
    source = tmp_path / "snippet.py"
    source.write_text(textwrap.dedent(SNIPPET))
    cache = Path(__file__).resolve().parents[1] / ".mypy_cache"
    stdout, stderr, status = api.run(
        [str(source), "--strict", "--no-error-summary", "--cache-dir", str(cache)]
    )
    assert status == 1, stdout + stderr
    flagged = {int(line.split(":")[1]) for line in stdout.splitlines() if ": error:" in line}
    assert flagged == set(range(10, 18)), stdout
