"""Tables between pipeline tasks travel as artifacts; user agents get and return tables."""

from __future__ import annotations

import sys
import textwrap
from pathlib import Path
from typing import Any

import anyio
import pandas as pd
import pytest

from swarm_runtime import DataPipelineOrchestrator
from swarm_runtime.artifacts import is_artifact_ref
from swarm_runtime.report import render_html

SALES = Path("examples/data/sales.csv").absolute()
GUARD = 60


def pipeline(queue: str, out: Path, **extra: Any) -> dict[str, Any]:
    """load → clean → (stats, save): a table flows through two tasks."""
    return {
        "name": "tables",
        "queue": queue,
        "agents": [
            {"name": "extract", "uses": "builtin.csv_source"},
            {"name": "transform", "uses": "builtin.transform"},
            {"name": "analyze", "uses": "builtin.analyze"},
            {"name": "sink", "uses": "builtin.csv_sink"},
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
                "params": {"metrics": ["distribution"]},
            },
            {
                "name": "save",
                "agent": "sink",
                "depends_on": ["clean"],
                "params": {"path": str(out)},
            },
        ],
        **extra,
    }


@pytest.mark.parametrize("scheme", ["file", "memory"])
async def test_table_results_are_references(scheme: str, tmp_path: Path) -> None:
    """A table result is a small reference to a verified artifact; values match pandas."""
    queue = f"file://{tmp_path / 'queue'}" if scheme == "file" else "memory://"
    orch = DataPipelineOrchestrator(services=False)
    pid = orch.create_pipeline(pipeline(queue, tmp_path / "clean.csv"))
    with anyio.fail_after(GUARD):
        result = await orch.execute_pipeline(pid)
    assert result.ok, result.error
    for task in ("load", "clean"):
        assert is_artifact_ref(result.results[task])
    ref = result.results["clean"]
    expected = pd.read_csv(SALES).dropna().drop_duplicates()
    assert ref["rows"] == len(expected)
    if scheme == "file":
        assert ref["uri"].startswith(f"file://{tmp_path / 'queue' / 'artifacts' / result.run_id}/")
    clean = result.table("clean").to_pandas()
    assert clean["order_id"].tolist() == expected["order_id"].tolist()
    assert result.results["stats"]["rows"] == len(expected)
    assert pd.read_csv(tmp_path / "clean.csv")["order_id"].tolist() == expected["order_id"].tolist()
    html = render_html(result.to_report())
    assert f"{len(expected):,} rows, 11 columns" in html  # the clean table, from its artifact
    assert "schema: order_id: Int64, order_date: String" in html
    assert f'artifact <span class="mono">{ref["uri"]}</span>' in html
    assert f"<td>{expected['order_id'].iloc[0]}</td>" in html  # its first rows, previewed


USER_AGENTS = """
import polars as pl
import pyarrow as pa
import pandas as pd

async def top_regions(msg, ctx):
    table = msg.payload["inputs"]["clean"]
    frame = table.to_polars()
    return frame.group_by("region").agg(pl.col("revenue").sum()).sort("revenue", descending=True)

async def as_arrow(msg, ctx):
    return msg.payload["inputs"]["top"].to_arrow()

async def as_pandas(msg, ctx):
    rows = msg.payload["inputs"]["arrow"].rows
    return pd.DataFrame(rows, columns=["region", "revenue"]).head(2)

async def legacy(msg, ctx):
    table = msg.payload["inputs"]["pandas"]
    return {"columns": table["columns"], "rows": table["rows"], "n": len(table["rows"])}
"""


async def test_user_agents_receive_and_return_tables(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """User agents get TableInput objects and may return Polars, Arrow or pandas tables."""
    module = tmp_path / "table_agents.py"
    module.write_text(textwrap.dedent(USER_AGENTS))
    monkeypatch.syspath_prepend(str(tmp_path))
    config = pipeline(f"file://{tmp_path / 'queue'}", tmp_path / "c.csv")
    config["agents"] += [
        {"name": name, "uses": f"table_agents:{name}"}
        for name in ("top_regions", "as_arrow", "as_pandas", "legacy")
    ]
    config["tasks"] += [
        {"name": "top", "agent": "top_regions", "depends_on": ["clean"]},
        {"name": "arrow", "agent": "as_arrow", "depends_on": ["top"]},
        {"name": "pandas", "agent": "as_pandas", "depends_on": ["arrow"]},
        {"name": "legacy", "agent": "legacy", "depends_on": ["pandas"]},
    ]
    orch = DataPipelineOrchestrator(services=False)
    pid = orch.create_pipeline(config)
    try:
        with anyio.fail_after(GUARD):
            result = await orch.execute_pipeline(pid)
    finally:
        sys.modules.pop("table_agents", None)
    assert result.ok, result.error
    for task in ("top", "arrow", "pandas"):
        assert is_artifact_ref(result.results[task]), task
    clean = pd.read_csv(SALES).dropna().drop_duplicates()
    expected = clean.groupby("region")["revenue"].sum().sort_values(ascending=False)
    top = result.table("top").to_pandas()
    assert top["region"].tolist() == expected.index.tolist()
    assert top["revenue"].tolist() == pytest.approx(expected.tolist(), rel=1e-12)
    assert result.results["legacy"]["n"] == 2
    assert result.results["legacy"]["rows"][0][0] == expected.index[0]
