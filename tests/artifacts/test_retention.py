"""Retention: artifacts of finished runs beyond keep_runs are removed (by the pipeline when a
run ends, and by ``runs gc``); unfinished runs keep theirs."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anyio
import polars as pl
from click.testing import CliRunner

from swarm_runtime import DataPipelineOrchestrator
from swarm_runtime.artifacts import DirectoryArtifactStore
from swarm_runtime.artifacts.retention import collect_garbage
from swarm_runtime.cli import cli

SALES = Path("examples/data/sales.csv").absolute()


@dataclass
class FakeRun:
    run_id: str
    name: str
    updated_at: float
    unfinished: bool = False


async def test_keeps_newest_finished_and_every_unfinished(tmp_path: Path) -> None:
    """Per pipeline the newest ``keep`` finished runs and all unfinished ones keep their
    artifacts; orphans go only when asked."""
    store = DirectoryArtifactStore(tmp_path)
    for run in ("a1", "a2", "a3", "b1", "live", "orphan"):
        store.write_table(pl.DataFrame({"x": [1]}), run=run, name="t")
    runs = [
        FakeRun("a1", "a", 1.0),
        FakeRun("a2", "a", 2.0),
        FakeRun("a3", "a", 3.0),
        FakeRun("b1", "b", 1.0),
        FakeRun("live", "a", 0.5, unfinished=True),
    ]
    dry = await collect_garbage(store, runs, keep=1, dry_run=True)
    assert sorted(r.run_id for r in dry) == ["a1", "a2"]
    assert store.runs() == ["a1", "a2", "a3", "b1", "live", "orphan"]
    removed = await collect_garbage(store, runs, keep=1)
    assert sorted(r.run_id for r in removed) == ["a1", "a2"]
    assert all(r.bytes > 0 for r in removed)
    assert store.runs() == ["a3", "b1", "live", "orphan"]
    assert [r.run_id for r in await collect_garbage(store, runs, keep=0, pipeline="b")] == ["b1"]
    assert [r.run_id for r in await collect_garbage(store, runs, keep=1, orphans=True)] == [
        "orphan"
    ]
    assert store.runs() == ["a3", "live"]


def pipeline(queue: str, keep: int) -> dict[str, Any]:
    return {
        "name": "keeper",
        "queue": queue,
        "artifacts": {"keep_runs": keep},
        "agents": [{"name": "extract", "uses": "builtin.csv_source"}],
        "tasks": [{"name": "load", "agent": "extract", "params": {"path": str(SALES)}}],
    }


async def _three_runs(queue: str) -> list[str]:
    orch = DataPipelineOrchestrator(services=False)
    pid = orch.create_pipeline(pipeline(queue, 2))
    run_ids = []
    for _ in range(3):
        with anyio.fail_after(60):
            result = await orch.execute_pipeline(pid, resume=False)
        assert result.ok, result.error
        run_ids.append(result.run_id)
    return run_ids


def test_a_pipeline_applies_keep_runs_when_a_run_ends(tmp_path: Path) -> None:
    """With keep_runs: 2, the third run's end removes the first run's artifacts; runs gc
    --keep 1 then removes the second's, and --dry-run only reports."""
    queue = f"file://{tmp_path / 'queue'}"
    run_ids = anyio.run(_three_runs, queue)
    store = DirectoryArtifactStore(tmp_path / "queue" / "artifacts")
    assert store.runs() == sorted(run_ids[1:])
    runner = CliRunner()
    dry = runner.invoke(cli, ["runs", "gc", "--queue", queue, "--keep", "1", "--dry-run"])
    assert dry.exit_code == 0, dry.output
    assert f"would remove {run_ids[1]} (keeper)" in dry.output
    assert store.runs() == sorted(run_ids[1:])
    done = runner.invoke(cli, ["runs", "gc", "--queue", queue, "--keep", "1"])
    assert done.exit_code == 0, done.output
    assert "removed the artifacts of 1 run(s)" in done.output
    assert store.runs() == [run_ids[2]]
