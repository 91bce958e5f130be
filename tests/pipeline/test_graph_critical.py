"""``graph --critical-path``: the longest chain under the tasks' estimates, drawn in red."""

from __future__ import annotations

from pathlib import Path

from click.testing import CliRunner

from swarm_runtime.cli import cli
from swarm_runtime.pipeline import parse_pipeline
from swarm_runtime.pipeline.graph import estimated_critical_path

PIPELINE = """
name: cp
agents:
  - {name: w, uses: "tests.orchestrator.test_critical_path:_noop"}
tasks:
  - {name: a, agent: w, estimate: 1}
  - {name: b, agent: w, estimate: 1}
  - {name: c, agent: w, estimate: 1}
  - {name: d, agent: w, depends_on: [c], estimate: 10}
  - {name: e, agent: w, depends_on: [a, d]}
  - {name: f, agent: w, depends_on: [b]}
"""


def test_estimated_critical_path_follows_the_estimates() -> None:
    """c -> d -> e is longest (e has no estimate: its agent's mean counts); without any
    estimate the chain with the most tasks wins (ties to the task declared first)."""
    config = parse_pipeline(PIPELINE)
    assert estimated_critical_path(config) == ["c", "d", "e"]
    plain = parse_pipeline(PIPELINE.replace(", estimate: 10", "").replace(", estimate: 1", ""))
    assert estimated_critical_path(plain) == ["c", "d", "e"]
    only_b = parse_pipeline(
        PIPELINE.replace("{name: b, agent: w, estimate: 1}", "{name: b, agent: w, estimate: 50}")
    )
    assert estimated_critical_path(only_b) == ["b", "f"]


def test_graph_command_marks_the_critical_path(tmp_path: Path) -> None:
    """Mermaid: a ``critical`` class on the chain's nodes and red links between them;
    DOT: red nodes and edges; without the flag nothing is marked."""
    path = tmp_path / "cp.yaml"
    path.write_text(PIPELINE)
    runner = CliRunner()
    mermaid = runner.invoke(cli, ["graph", str(path), "--critical-path"])
    assert mermaid.exit_code == 0, mermaid.output
    assert "  class t2,t3,t4 critical\n" in mermaid.output
    assert "linkStyle 0,2 stroke:#dc2626" in mermaid.output  # c -> d, d -> e
    dot = runner.invoke(cli, ["graph", str(path), "--critical-path", "--format", "dot"])
    assert '"c" -> "d" [color="#dc2626", penwidth=3];' in dot.output
    assert '"a" -> "e";' in dot.output
    plain = runner.invoke(cli, ["graph", str(path)])
    assert "classDef critical" not in plain.output
