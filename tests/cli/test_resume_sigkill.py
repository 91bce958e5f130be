"""Resume after ``kill -9`` of a real ``python -m swarm_runtime run`` process."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from collections import Counter
from pathlib import Path

import pytest

from swarm_runtime.orchestrator._runstore import LOG_NAME, decode_lines

ROOT = Path(__file__).resolve().parents[2]
WAIT = 30.0  # seconds to wait for the first process to reach the blocking task

AGENT = """
import os
from pathlib import Path

import anyio

HERE = Path(__file__).resolve().parent


async def record(msg, ctx):
    '''Append the task's name to executions.txt (fsync'd), then block if told to.'''
    name = msg.payload["params"]["name"]
    with open(HERE / "executions.txt", "a") as f:
        f.write(name + "\\n")
        f.flush()
        os.fsync(f.fileno())
    if msg.payload["params"].get("block") and (HERE / "block").exists():
        await anyio.sleep(3600)
    return {"task": name, "inputs": sorted(msg.payload["inputs"])}
"""

PIPELINE = """
name: crashy
agents:
  - {name: rec, uses: "crash_agents:record", concurrency: 4}
tasks:
  - {name: t1, agent: rec, params: {name: t1}}
  - {name: t2, agent: rec, depends_on: [t1], params: {name: t2}}
  - {name: t2b, agent: rec, depends_on: [t1], params: {name: t2b}}
  - {name: t3, agent: rec, depends_on: [t2, t2b], params: {name: t3, block: true}}
  - {name: t4, agent: rec, depends_on: [t3], params: {name: t4}}
"""


def executions(path: Path) -> list[str]:
    return path.read_text().split() if path.exists() else []


def durable_completions(queue: Path) -> int:
    """How many task-completed records the run logs under ``queue/runs`` hold on disk."""
    count = 0
    for path in (queue / "runs").glob(f"*/{LOG_NAME}"):
        records, _end, _bad = decode_lines(path.read_bytes())
        count += sum(r.get("k") == "task" and r.get("state") == "completed" for r in records)
    return count


@pytest.mark.slow
def test_resume_after_sigkill(tmp_path: Path) -> None:
    """Kill -9 the run while a later task blocks; running the same command again resumes
    the run: it finishes, and the tasks that had completed are not run again."""
    (tmp_path / "crash_agents.py").write_text(textwrap.dedent(AGENT))
    (tmp_path / "crashy.yaml").write_text(textwrap.dedent(PIPELINE))
    (tmp_path / "block").touch()
    log = tmp_path / "executions.txt"
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "PYTHONPATH": str(ROOT)}
    command = [
        sys.executable,
        "-m",
        "swarm_runtime",
        "run",
        "crashy.yaml",
        "--queue",
        f"file://{tmp_path / 'queue'}",
    ]
    first = subprocess.Popen(
        command,
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        deadline = time.monotonic() + WAIT
        while "t3" not in executions(log) or durable_completions(tmp_path / "queue") < 3:
            # t3 starts once t1, t2 and t2b replied; their run-log records are written
            # behind (a crash before that reruns them: at-least-once), so wait for them
            if first.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"the run did not reach t3: {first.communicate()[0]}")
            time.sleep(0.05)
        first.send_signal(signal.SIGKILL)
        output, _ = first.communicate(timeout=WAIT)
    finally:
        if first.poll() is None:
            first.kill()
            first.wait()
    assert first.returncode == -signal.SIGKILL
    run_id = output.split()[1]
    assert output.startswith(f"run {run_id} of crashy (5 tasks)")
    assert Counter(executions(log)) == {"t1": 1, "t2": 1, "t2b": 1, "t3": 1}

    (tmp_path / "block").unlink()
    second = subprocess.run(
        command, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=WAIT
    )
    assert second.returncode == 0, second.stdout + second.stderr
    assert f"resuming run {run_id} of crashy: 3 of 5 tasks already completed" in second.stdout
    assert "completed: 5/5 tasks completed" in second.stdout
    # t3 was running when the process died, so it runs again; nothing else does
    assert Counter(executions(log)) == {"t1": 1, "t2": 1, "t2b": 1, "t3": 2, "t4": 1}
