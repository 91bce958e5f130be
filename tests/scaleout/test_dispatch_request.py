"""DispatchRuntime (``run --no-agents``) sends and requests to agents that only a real
``worker`` process hosts, on redis://: both go through the runtime's one send path."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import anyio
import pytest

import swarm_runtime as sr
from swarm_runtime.agents.base import FunctionAgent
from swarm_runtime.orchestrator._scaleout import DispatchRuntime

from ..conftest import REDIS_URL

pytestmark = [pytest.mark.redis, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[2]


def _start_worker(pipeline: Path, err: Path) -> subprocess.Popen[bytes]:
    """``python -m swarm_runtime worker PIPELINE`` with its stderr in ``err``."""
    with open(err, "wb") as stderr:
        return subprocess.Popen(
            [sys.executable, "-m", "swarm_runtime", "worker", str(pipeline)],
            cwd=ROOT,
            env={**os.environ, "PYTHONPATH": str(ROOT)},
            stdout=subprocess.DEVNULL,
            stderr=stderr,
        )


async def _unused(msg: sr.Message, ctx: sr.Context) -> None:
    raise AssertionError("a remote agent must not run in the dispatching process")


async def test_request_and_send_reach_an_agent_hosted_by_a_worker(
    tmp_path: Path, prefix: str
) -> None:
    """``request`` to a remote agent returns the worker's answer (it used to raise
    UnknownAgentError while ``send`` worked); ``send`` and ``send_all`` reach the same worker."""
    url = f"{REDIS_URL}?prefix={prefix}"
    out = tmp_path / "executions"
    out.mkdir()
    pipeline = tmp_path / "pipeline.yaml"
    pipeline.write_text(
        "name: dispatch\n"
        f"queue: {url}\n"
        "agents:\n"
        '  - {name: rec, uses: "tests.scaleout.agents:record"}\n'
        "tasks:\n"
        "  - {name: only, agent: rec}\n"
    )
    err = tmp_path / "worker.err"
    worker = _start_worker(pipeline, err)
    try:
        with anyio.fail_after(30):
            while b" ready: " not in err.read_bytes():
                assert worker.poll() is None, err.read_text()
                await anyio.sleep(0.05)
        rt = DispatchRuntime(url, remote=[FunctionAgent("rec", _unused)], services=False)
        async with rt:
            params = {"task": "asked", "out": str(out)}
            reply = await rt.request("rec", {"params": params}, timeout=20)
            assert reply == {"task": "asked", "pid": worker.pid}
            await rt.send("rec", {"params": {"task": "told", "out": str(out)}})
            log = out / f"{worker.pid}.log"
            with anyio.fail_after(20):
                while "done told" not in (log.read_text() if log.exists() else ""):
                    await anyio.sleep(0.05)
            batch = [sr.Outgoing("rec", {"params": {"task": "listed", "out": str(out)}})]
            await rt.send_all(batch)
            with anyio.fail_after(20):
                while "done listed" not in log.read_text():
                    await anyio.sleep(0.05)
            with pytest.raises(sr.UnknownAgentError, match=r"'nobody'.*known agents: rec"):
                await rt.request("nobody", None)
    finally:
        if worker.poll() is None:
            worker.terminate()
        worker.wait(timeout=30)
    assert worker.returncode == 0, err.read_text()
