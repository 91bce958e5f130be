"""Mermaid and DOT drawings of pipelines."""

from __future__ import annotations

import re

import pytest

from swarm_runtime.pipeline import load_pipeline, render_graph, to_dot, to_mermaid


def test_mermaid_has_every_task_edge_and_kind() -> None:
    """The Mermaid flowchart holds a node per task, an arrow per dependency, and kind classes."""
    config = load_pipeline("examples/pipeline.yaml")
    text = to_mermaid(config)
    assert text.startswith("flowchart LR\n")
    nodes = dict(re.findall(r'^  (t\d+)\["([a-z_]+)<br/>', text, re.M))
    assert sorted(nodes.values()) == sorted(t.name for t in config.tasks)
    ids = {name: node for node, name in nodes.items()}
    arrows = set(re.findall(r"^  (t\d+) --> (t\d+)$", text, re.M))
    assert arrows == {(ids[a], ids[b]) for a, b in config.edges()}
    assert f'{ids["load"]}["load<br/><small>extract · builtin.csv_source</small>"]:::source' in text
    assert ":::analysis" in text
    assert "classDef sink" in text


def test_dot_is_a_digraph_with_quoted_names() -> None:
    """The DOT text is one digraph, every task a node and every dependency an edge."""
    config = load_pipeline("examples/user_agent_pipeline.yaml")
    text = to_dot(config)
    assert text.startswith('digraph "regional-scores" {\n')
    assert text.rstrip().endswith("}")
    assert text.count("{") == text.count("}")
    for a, b in config.edges():
        assert f'  "{a}" -> "{b}";' in text
    assert '"by_region" [label="by_region\\nscore · examples.agents:score"' in text


def test_render_graph_by_format_name() -> None:
    """render_graph picks the format by name and refuses unknown ones."""
    config = load_pipeline("examples/seed_pipeline.yaml")
    assert render_graph(config, "dot") == to_dot(config)
    assert render_graph(config) == to_mermaid(config)
    with pytest.raises(ValueError, match="unknown graph format 'png'"):
        render_graph(config, "png")
