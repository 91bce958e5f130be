"""DataPipelineOrchestrator: built-in and user agents, the seed form, resuming runs."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path
from typing import Any

import anyio
import pytest

from swarm_runtime.errors import ConfigError, PipelineConfigError, WorkflowError
from swarm_runtime.orchestrator import (
    DataPipelineOrchestrator,
    RunStart,
    TaskState,
    WorkflowState,
)

ROOT = Path(__file__).resolve().parents[2]
SALES = ROOT / "examples" / "data" / "sales.csv"
GUARD = 20


def sales_pipeline(out: Path, **extra: Any) -> dict[str, Any]:
    """A small general-form pipeline over the example data, writing into ``out``."""
    return {
        "name": "sales",
        "queue": "memory://",
        "agents": [
            {"name": "extract", "uses": "builtin.csv_source"},
            {"name": "transform", "uses": "builtin.transform", "replicas": 2},
            {"name": "analyze", "uses": "builtin.analyze"},
            {"name": "save", "uses": "builtin.json_sink"},
        ],
        "tasks": [
            {"name": "load", "agent": "extract", "params": {"path": str(SALES)}},
            {
                "name": "clean",
                "agent": "transform",
                "depends_on": ["load"],
                "params": {"ops": ["clean"]},
            },
            {
                "name": "stats",
                "agent": "analyze",
                "depends_on": ["clean"],
                "params": {"metrics": [{"metric": "distribution", "columns": ["units"]}]},
            },
            {
                "name": "save",
                "agent": "save",
                "depends_on": ["stats"],
                "params": {"path": str(out)},
            },
        ],
        "retry": {"max_attempts": 2, "base_delay": 0.0, "max_delay": 0.0},
        **extra,
    }


@pytest.fixture
def user_module(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """A user agent module on sys.path: a coroutine agent, an Agent subclass, a plain def."""
    name = f"user_agents_{tmp_path.name.replace('-', '_')}"
    (tmp_path / f"{name}.py").write_text(
        textwrap.dedent(
            """
            import swarm_runtime as sr

            async def count_rows(msg, ctx):
                (table,) = msg.payload["inputs"].values()
                return {"rows": len(table["rows"]), "params": msg.payload["params"]}

            class Doubler(sr.Agent):
                async def handle(self, msg, ctx):
                    return 2 * msg.payload["inputs"].get("input", 1)

            def not_async(msg, ctx):
                return None
            """
        )
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    return name


async def test_builtin_pipeline_runs_end_to_end(tmp_path: Path) -> None:
    """Built-in agents read, clean, analyse and write: results come back, the file exists."""
    out = tmp_path / "stats.json"
    orch = DataPipelineOrchestrator()
    pipeline_id = orch.create_pipeline(sales_pipeline(out))
    starts: list[RunStart] = []
    with anyio.fail_after(GUARD):
        result = await orch.execute_pipeline(pipeline_id, on_start=starts.append)
    assert result.ok, result.error
    assert [s.resumed for s in starts] == [False]
    assert starts[0].total == 4
    assert result.results["stats"]["distribution"]["units"]["count"] > 0
    assert json.loads(out.read_text())
    assert orch.get_pipeline_status(pipeline_id) == result.status
    assert {t.state for t in result.status.tasks.values()} == {TaskState.COMPLETED}


async def test_user_agents_function_and_class(user_module: str, tmp_path: Path) -> None:
    """``uses: module:callable`` runs a coroutine function or an Agent subclass; params of
    the agent are defaults for its tasks; ``input_data`` reaches root tasks."""
    config = {
        "name": "users",
        "queue": "memory://",
        "agents": [
            {"name": "extract", "uses": "builtin.csv_source"},
            {"name": "count", "uses": f"{user_module}:count_rows", "params": {"unit": "rows"}},
            {"name": "double", "uses": f"{user_module}:Doubler", "replicas": 2},
        ],
        "tasks": [
            {"name": "load", "agent": "extract", "params": {"path": str(SALES)}},
            {"name": "count", "agent": "count", "depends_on": ["load"], "params": {"x": 1}},
            {"name": "double", "agent": "double"},
        ],
    }
    orch = DataPipelineOrchestrator()
    pipeline_id = orch.create_pipeline(config)
    with anyio.fail_after(GUARD):
        result = await orch.execute_pipeline(pipeline_id, input_data=21)
    assert result.ok, result.error
    assert result.results["count"]["rows"] > 0
    assert result.results["count"]["params"] == {"unit": "rows", "x": 1}
    assert result.results["double"] == 42


def test_user_agent_errors_are_config_errors(user_module: str) -> None:
    """A module that cannot be imported, a missing name or a plain function is a clear
    ConfigError at create time, before anything runs."""
    orch = DataPipelineOrchestrator()

    def create(uses: str) -> None:
        orch.create_pipeline(
            {
                "name": "bad",
                "agents": [{"name": "a", "uses": uses}],
                "tasks": [{"name": "t", "agent": "a"}],
            }
        )

    with pytest.raises(ConfigError, match="cannot import module 'no_such_module_xyz'"):
        create("no_such_module_xyz:f")
    with pytest.raises(ConfigError, match="has no attribute 'missing'"):
        create(f"{user_module}:missing")
    with pytest.raises(ConfigError, match="plain \\(not async\\) function"):
        create(f"{user_module}:not_async")


def test_invalid_pipeline_lists_problems(tmp_path: Path) -> None:
    """An invalid file is a PipelineConfigError naming the file and field paths."""
    path = tmp_path / "bad.yaml"
    path.write_text("name: bad\nagents: []\ntasks:\n  - {name: a, agent: nobody}\n")
    with pytest.raises(PipelineConfigError) as info:
        DataPipelineOrchestrator().create_pipeline(path)
    assert info.value.source == str(path)
    assert [p.path for p in info.value.problems] == ["tasks[0].agent"]


async def test_seed_form_pipeline(tmp_path: Path) -> None:
    """The seed's etl/processing/analysis stages run as a chain of built-in agents."""
    config = {
        "name": "seed",
        "queue": "memory://",
        "etl_stages": [
            {
                "name": "extraction",
                "source": {"type": "csv", "path": str(SALES)},
                "transforms": ["clean"],
            }
        ],
        "processing_stages": [{"name": "features", "operations": ["scaling"]}],
        "analysis_stages": [{"name": "stats", "metrics": ["distribution"]}],
    }
    orch = DataPipelineOrchestrator()
    pipeline_id = orch.create_pipeline(config)
    with anyio.fail_after(GUARD):
        result = await orch.execute_pipeline(pipeline_id)
    assert result.ok, result.error
    assert list(result.results) == ["extraction_source", "extraction", "features", "stats"]


async def test_failing_builtin_reports_the_error(tmp_path: Path) -> None:
    """A built-in that fails for good (missing file) fails the run with its DataError."""
    config = sales_pipeline(tmp_path / "x.json")
    config["tasks"][0]["params"]["path"] = str(tmp_path / "missing.csv")
    orch = DataPipelineOrchestrator()
    with anyio.fail_after(GUARD):
        result = await orch.execute_pipeline(orch.create_pipeline(config))
    assert result.status.state is WorkflowState.FAILED
    assert result.error is not None
    assert "DataError" in result.error
    assert "missing.csv" in result.error
    assert result.status.tasks["load"].attempts == 1  # permanent: not retried


async def test_plain_execute_resumes_unfinished_run(tmp_path: Path, user_module: str) -> None:
    """On a file queue, executing the pipeline again resumes its unfinished run (completed
    tasks are skipped); ``resume=False`` starts afresh; a changed pipeline is not resumed."""
    marker = tmp_path / "block"
    log = tmp_path / "calls.txt"
    module = tmp_path / f"{user_module}_rec.py"
    module.write_text(
        textwrap.dedent(
            f"""
            import anyio, pathlib

            async def record(msg, ctx):
                name = msg.payload["params"]["name"]
                with open({str(log)!r}, "a") as f:
                    f.write(name + "\\n")
                if name == "b" and pathlib.Path({str(marker)!r}).exists():
                    await anyio.sleep_forever()
                return name
            """
        )
    )
    config = {
        "name": "resumable",
        "queue": f"file://{tmp_path / 'q'}",
        "agents": [{"name": "rec", "uses": f"{module.stem}:record"}],
        "tasks": [
            {"name": "a", "agent": "rec", "params": {"name": "a"}},
            {"name": "b", "agent": "rec", "depends_on": ["a"], "params": {"name": "b"}},
            {"name": "c", "agent": "rec", "depends_on": ["b"], "params": {"name": "c"}},
        ],
    }
    marker.touch()
    orch = DataPipelineOrchestrator(grace_period=0.0)
    pipeline_id = orch.create_pipeline(config)
    starts: list[RunStart] = []
    with anyio.fail_after(GUARD):
        async with anyio.create_task_group() as tg:
            tg.start_soon(lambda: orch.execute_pipeline(pipeline_id, on_start=starts.append))
            while not log.exists() or log.read_text().split() != ["a", "b"]:
                await anyio.sleep(0.01)  # until b is running (and blocked)
            tg.cancel_scope.cancel()
        marker.unlink()
        result = await orch.execute_pipeline(pipeline_id, on_start=starts.append)
    assert result.ok
    assert result.resumed
    assert starts[1].run_id == starts[0].run_id
    assert starts[1].completed == 1
    assert log.read_text().split() == ["a", "b", "b", "c"]

    fresh = await orch.execute_pipeline(pipeline_id, resume=False)
    assert fresh.run_id != result.run_id
    assert not fresh.resumed
    with pytest.raises(WorkflowError, match="no run with id 'nope'"):
        await orch.execute_pipeline(pipeline_id, resume="nope")
    changed = orch.create_pipeline({**config, "tasks": config["tasks"][:2]})
    with pytest.raises(WorkflowError, match="changed since run"):
        await orch.execute_pipeline(changed, resume=result.run_id)
