"""The shipped example pipelines, data and user agent."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from swarm_runtime.agents.builtin import BUILTINS
from swarm_runtime.pipeline import Dag, import_callable, load_pipeline

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = sorted((ROOT / "examples").glob("*pipeline*.yaml"))


def test_there_are_three_example_pipelines() -> None:
    """The general-form demo, the seed form and the user-agent pipeline ship together."""
    assert [p.name for p in EXAMPLES] == [
        "pipeline.yaml",
        "seed_pipeline.yaml",
        "user_agent_pipeline.yaml",
    ]


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.name)
def test_example_pipelines_validate(path: Path) -> None:
    """Every example pipeline passes the validator and forms a DAG."""
    config = load_pipeline(path)
    assert Dag.from_config(config).topological_order()


def test_demo_has_a_parallel_branch() -> None:
    """The default demo fans out after cleaning (extract → clean → branches → sinks)."""
    dag = Dag.from_config(load_pipeline(ROOT / "examples" / "pipeline.yaml"))
    assert dag.roots() == ["load"]
    assert len(dag.dependents["clean"]) >= 2
    sinks = {"save_stats", "save_features"}
    assert set(dag.leaves()) == sinks


def test_sales_data_is_reproducible(tmp_path: Path) -> None:
    """generate_sales.py recreates examples/data/sales.csv byte for byte."""
    spec = importlib.util.spec_from_file_location(
        "generate_sales", ROOT / "examples" / "data" / "generate_sales.py"
    )
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert module.generate() == (ROOT / "examples" / "data" / "sales.csv").read_text("utf-8")


def test_sales_data_has_work_for_clean() -> None:
    """The sample has ~500 rows, numeric and categorical columns, nulls and duplicates."""
    table = BUILTINS["builtin.csv_source"].run({"path": "examples/data/sales.csv"}, {})
    cleaned = BUILTINS["builtin.transform"].run({"ops": ["clean"]}, {"load": table})
    assert 450 <= len(table["rows"]) <= 550
    assert any(None in row for row in table["rows"])
    assert len(cleaned["rows"]) < len(table["rows"]) - 12  # duplicates and null rows gone
    assert {"region", "channel", "product", "units", "revenue"} <= set(table["columns"])


class _Log:
    def __init__(self) -> None:
        self.events: list[tuple[str, dict[str, Any]]] = []

    def info(self, event: str, **fields: Any) -> None:
        self.events.append((event, fields))


async def test_user_agent_scores_groups() -> None:
    """examples.agents:score turns the cleaned orders into a ranked table per group."""
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    score = import_callable("examples.agents:score")
    table = BUILTINS["builtin.csv_source"].run({"path": "examples/data/sales.csv"}, {})
    cleaned = BUILTINS["builtin.transform"].run({"ops": ["clean"]}, {"load": table})
    msg = SimpleNamespace(payload={"params": {"group_by": "channel"}, "inputs": {"clean": cleaned}})
    ctx = SimpleNamespace(log=_Log())
    result = await score(msg, ctx)
    assert result["columns"][0] == "channel"
    assert {row[0] for row in result["rows"]} == {"Online", "Retail", "Partner"}
    scores = [row[-1] for row in result["rows"]]
    assert scores == sorted(scores, reverse=True)
    assert sum(row[2] for row in result["rows"]) == pytest.approx(1.0, abs=1e-3)
    assert ctx.log.events == [("scored groups", {"group_by": "channel", "groups": 3})]
