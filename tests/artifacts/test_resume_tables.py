"""kill -9 of a real ``run`` mid-pipeline: finished tables are reused (verified), never redone;
a corrupted artifact makes its producing task run again."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from collections import Counter
from pathlib import Path

import pandas as pd
import pytest

ROOT = Path(__file__).resolve().parents[2]
WAIT = 60.0

AGENTS = """
import os
from pathlib import Path

import anyio
import polars as pl

HERE = Path(__file__).resolve().parent


async def hold(msg, ctx):
    '''Record the run (fsync'd), block while the block file exists, return a table.'''
    with open(HERE / "executions.txt", "a") as f:
        f.write("hold\\n")
        f.flush()
        os.fsync(f.fileno())
    while (HERE / "block").exists():
        await anyio.sleep(0.05)
    clean = msg.payload["inputs"]["clean"].to_lazy()
    return clean.group_by("region").agg(pl.col("revenue").sum()).sort("region").collect()
"""

PIPELINE = """
name: tables-crash
agents:
  - {name: extract, uses: builtin.csv_source}
  - {name: transform, uses: builtin.transform}
  - {name: holder, uses: "table_crash_agents:hold"}
  - {name: sink, uses: builtin.csv_sink}
tasks:
  - {name: load, agent: extract, params: {path: data.csv}}
  - {name: clean, agent: transform, depends_on: [load], params: {ops: [clean]}}
  - {name: totals, agent: holder, depends_on: [clean]}
  - {name: save, agent: sink, depends_on: [totals], params: {path: totals.csv}}
retry: {max_attempts: 2, base_delay: 0.05, max_delay: 0.1}
"""


def artifacts(queue: Path) -> Counter[str]:
    """How many artifacts each task wrote (file names start with the task's name)."""
    return Counter(p.name.split(".")[0] for p in (queue / "artifacts").rglob("*.arrow"))


def start(tmp_path: Path) -> tuple[list[str], dict[str, str]]:
    (tmp_path / "table_crash_agents.py").write_text(textwrap.dedent(AGENTS))
    (tmp_path / "p.yaml").write_text(textwrap.dedent(PIPELINE))
    rows = [
        [i, ["North", "South", "East"][i % 3], float(i % 17) if i % 29 else None]
        for i in range(3000)
    ]
    frame = pd.DataFrame(rows + rows[:50], columns=["id", "region", "revenue"])
    frame.to_csv(tmp_path / "data.csv", index=False)
    (tmp_path / "block").touch()
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "PYTHONPATH": str(ROOT)}
    command = [sys.executable, "-m", "swarm_runtime", "run", "p.yaml"]
    command += ["--queue", f"file://{tmp_path / 'queue'}"]
    return command, env


def kill_while_holding(tmp_path: Path, command: list[str], env: dict[str, str]) -> None:
    log = tmp_path / "executions.txt"
    first = subprocess.Popen(
        command, cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    try:
        deadline = time.monotonic() + WAIT
        while not log.exists():
            if first.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"the run did not reach totals: {first.communicate()[0]}")
            time.sleep(0.05)
        first.send_signal(signal.SIGKILL)
        first.communicate(timeout=WAIT)
    finally:
        if first.poll() is None:
            first.kill()
            first.wait()
    assert first.returncode == -signal.SIGKILL


def expected_totals(tmp_path: Path) -> list[float]:
    clean = pd.read_csv(tmp_path / "data.csv").dropna().drop_duplicates()
    return clean.groupby("region")["revenue"].sum().sort_index().tolist()


@pytest.mark.slow
def test_resume_reuses_finished_artifacts(tmp_path: Path) -> None:
    """After kill -9 while a task holds, the resumed run finishes; load and clean (finished,
    their artifacts verified) are not run again; only the interrupted task is."""
    command, env = start(tmp_path)
    kill_while_holding(tmp_path, command, env)
    queue = tmp_path / "queue"
    assert artifacts(queue) == {"load": 1, "clean": 1}
    (tmp_path / "block").unlink()
    second = subprocess.run(
        command, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=WAIT
    )
    assert second.returncode == 0, second.stdout + second.stderr
    assert "2 of 4 tasks already completed" in second.stdout
    assert artifacts(queue) == {"load": 1, "clean": 1, "totals": 1}
    assert (tmp_path / "executions.txt").read_text().split() == ["hold", "hold"]
    totals = pd.read_csv(tmp_path / "totals.csv")
    assert totals["revenue"].tolist() == pytest.approx(expected_totals(tmp_path))


@pytest.mark.slow
def test_corrupt_artifact_makes_its_task_run_again(tmp_path: Path) -> None:
    """A finished task whose artifact was damaged after the crash is run again on resume
    (its new artifact verified); nothing downstream reads the damaged one."""
    command, env = start(tmp_path)
    kill_while_holding(tmp_path, command, env)
    queue = tmp_path / "queue"
    (clean,) = (queue / "artifacts").rglob("clean.*.arrow")
    data = bytearray(clean.read_bytes())
    data[len(data) // 2] ^= 0xFF
    clean.write_bytes(bytes(data))
    (tmp_path / "block").unlink()
    second = subprocess.run(
        command, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=WAIT
    )
    assert second.returncode == 0, second.stdout + second.stderr
    assert "1 of 4 tasks already completed" in second.stdout
    assert artifacts(queue) == {"load": 1, "clean": 2, "totals": 1}
    totals = pd.read_csv(tmp_path / "totals.csv")
    assert totals["revenue"].tolist() == pytest.approx(expected_totals(tmp_path))
