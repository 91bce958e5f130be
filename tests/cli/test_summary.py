"""The end-of-run summary of ``run``: full, short and none, and the JSON output."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import structlog
from click.testing import CliRunner

from swarm_runtime.cli import cli
from swarm_runtime.cli._exit import ExitCode
from swarm_runtime.cli._logcap import RepeatLimit

from ._generate import write_pipeline

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def runner() -> CliRunner:
    return CliRunner()


def test_small_run_keeps_the_full_table(runner: CliRunner, tmp_path: Path) -> None:
    """Up to 50 tasks the summary is one row per task, as before."""
    pipeline = write_pipeline(tmp_path / "p.yaml", 12)
    result = runner.invoke(cli, ["run", str(pipeline)])
    assert result.exit_code == 0, result.output
    for i in range(12):
        assert f"t{i} " in result.output
    assert "per agent" not in result.output
    assert "completed: 12/12 tasks completed" in result.output


def test_big_run_gets_a_short_summary(runner: CliRunner, tmp_path: Path) -> None:
    """Past 50 tasks: totals, per agent, the first 20 failed tasks with their errors and a
    count of the rest, the slowest 10, wall and CPU time; far fewer lines than tasks."""
    fail = frozenset(range(300, 330))
    pipeline = write_pipeline(tmp_path / "p.yaml", 400, agents=3, fail=fail)
    result = runner.invoke(cli, ["run", str(pipeline)])
    assert result.exit_code == ExitCode.FAILED, result.output
    out = result.stdout[result.stdout.index("gen400 · run") :]  # (test logs go to stdout)
    lines = out.splitlines()
    assert len(lines) < 60
    assert "400 tasks: 370 completed, 30 failed" in out
    assert "per agent" in out
    for agent in ("a0", "a1", "a2"):
        assert any(line.startswith(agent) for line in lines)
    shown = [line for line in lines if "boom in t" in line]
    assert len(shown) == 20
    assert "t300 (a0, 1 attempt): RuntimeError: boom in t300" in out
    assert "... and 10 more failed tasks" in out
    assert "slowest tasks" in out
    assert "CPU" in out
    assert "failed: 370/400 tasks completed, 30 failed" in out


def test_summary_modes_can_be_chosen(runner: CliRunner, tmp_path: Path) -> None:
    """``--summary full`` prints every task of a big run, ``short`` digests a small one,
    ``none`` prints no summary at all."""
    big = write_pipeline(tmp_path / "big.yaml", 80)
    full = runner.invoke(cli, ["run", str(big), "--summary", "full"])
    assert full.exit_code == 0, full.output
    assert all(f"t{i} " in full.stdout for i in range(80))
    small = write_pipeline(tmp_path / "small.yaml", 5)
    short = runner.invoke(cli, ["run", str(small), "--summary", "short"])
    assert short.exit_code == 0, short.output
    assert "5 tasks: 5 completed" in short.stdout
    assert "per agent" in short.stdout
    none = runner.invoke(cli, ["run", str(small), "--summary", "none"])
    assert none.exit_code == 0, none.output
    assert "tasks completed" not in none.stdout
    assert "per agent" not in none.stdout
    assert "t3 " not in none.stdout


def test_json_output_has_every_task(runner: CliRunner, tmp_path: Path) -> None:
    """``--output json`` prints one JSON document on stdout (every task, totals, per
    agent); the human lines go to stderr; the exit code still tells a failure."""
    pipeline = write_pipeline(tmp_path / "p.yaml", 120, agents=2, fail=frozenset({100}))
    result = runner.invoke(cli, ["run", str(pipeline), "--output", "json"])
    assert result.exit_code == ExitCode.FAILED
    data = json.loads(result.stdout.splitlines()[-1])  # (test logs go to stdout before it)
    assert data["pipeline"] == "gen120"
    assert data["ok"] is False
    assert data["status"] == "failed"
    assert data["counts"]["completed"] == 119
    assert data["counts"]["failed"] == 1
    assert data["agents"]["a0"]["completed"] + data["agents"]["a1"]["completed"] == 119
    assert len(data["tasks"]) == 120
    failed = [t for t in data["tasks"] if t["status"] == "failed"]
    assert [t["name"] for t in failed] == ["t100"]
    assert "boom in t100" in failed[0]["error"]
    assert data["wall_seconds"] > 0
    assert data["cpu_seconds"] > 0
    assert data["run_id"] in result.stderr
    assert result.stderr.splitlines()[0].startswith("run ")


@pytest.mark.slow
@pytest.mark.timeout(180)
def test_failures_do_not_flood_the_log(tmp_path: Path) -> None:
    """A real ``run`` whose 30 tasks fail logs only the first few failures on stderr and
    says how many lines it left out (the summary lists the failed tasks)."""
    fail = frozenset(range(300, 330))  # spread over 3 agents: no circuit breaker opens
    pipeline = write_pipeline(tmp_path / "p.yaml", 400, agents=3, fail=fail)
    done = subprocess.run(
        [sys.executable, "-m", "swarm_runtime", "run", str(pipeline)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=170,
        check=False,
    )
    assert done.returncode == ExitCode.FAILED, done.stderr
    failures = [line for line in done.stderr.splitlines() if "dead-lettered" in line]
    assert len(failures) == 6  # five log lines and the count of the others
    assert "(25 more log lines 'handler failed; message dead-lettered' not shown" in done.stderr
    assert "failed tasks (30):" in done.stdout


def test_repeat_limit_counts_what_it_drops() -> None:
    """The processor passes the first lines of each event and counts the rest."""
    limit = RepeatLimit(2)
    passed = 0
    for event in ["a", "a", "b", "a", "a", "b"]:
        try:
            limit(None, "error", {"event": event})
            passed += 1
        except structlog.DropEvent:
            pass
    assert passed == 4
    assert limit.dropped() == {"a": 2}
