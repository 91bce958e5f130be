"""Text drawings of a pipeline's DAG: Mermaid (``flowchart``) and Graphviz DOT.

Nodes are tasks labelled with their agent and what it runs; edges follow the data
(``load --> clean``); nodes are coloured by kind (source, transform, analysis,
sink, user agent).
"""

from __future__ import annotations

from .config import PipelineConfig

__all__ = ["GRAPH_FORMATS", "render_graph", "to_dot", "to_mermaid"]

GRAPH_FORMATS = ("mermaid", "dot")

#: fill and stroke colours per kind of agent
_COLOURS = {
    "source": ("#e0f2fe", "#0284c7"),
    "transform": ("#ede9fe", "#7c3aed"),
    "analysis": ("#fef3c7", "#d97706"),
    "sink": ("#dcfce7", "#16a34a"),
    "user": ("#f1f5f9", "#475569"),
}


def _kinds(config: PipelineConfig) -> dict[str, tuple[str, str]]:
    """Per task: (kind, what its agent runs)."""
    agents = {agent.name: agent for agent in config.agents}
    out: dict[str, tuple[str, str]] = {}
    for task in config.tasks:
        agent = agents.get(task.agent)
        builtin = agent.builtin if agent is not None else None
        kind = builtin.kind if builtin is not None else "user"
        out[task.name] = (kind, agent.uses if agent is not None else "?")
    return out


def _mermaid_text(text: str) -> str:
    return (
        text.replace("&", "#amp;").replace('"', "#quot;").replace("<", "#lt;").replace(">", "#gt;")
    )


def to_mermaid(config: PipelineConfig, *, direction: str = "LR") -> str:
    """A Mermaid ``flowchart`` of the pipeline (paste into Markdown or mermaid.live)."""
    kinds = _kinds(config)
    ids = {task.name: f"t{i}" for i, task in enumerate(config.tasks)}
    lines = [f"flowchart {direction}", f"  %% pipeline: {_mermaid_text(config.name)}"]
    for task in config.tasks:
        kind, uses = kinds[task.name]
        detail = _mermaid_text(f"{task.agent} · {uses}")
        label = f"{_mermaid_text(task.name)}<br/><small>{detail}</small>"
        lines.append(f'  {ids[task.name]}["{label}"]:::{kind}')
    for dep, name in config.edges():
        if dep in ids:
            lines.append(f"  {ids[dep]} --> {ids[name]}")
    for kind, (fill, stroke) in _COLOURS.items():
        lines.append(f"  classDef {kind} fill:{fill},stroke:{stroke},color:#0f172a")
    return "\n".join(lines) + "\n"


def _dot_string(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


def to_dot(config: PipelineConfig, *, direction: str = "LR") -> str:
    """A Graphviz DOT ``digraph`` of the pipeline (render with ``dot -Tsvg``)."""
    kinds = _kinds(config)
    lines = [
        f"digraph {_dot_string(config.name)} {{",
        f"  rankdir={direction};",
        '  node [shape=box, style="rounded,filled", fontname="Helvetica", fontsize=11];',
        '  edge [color="#64748b", arrowsize=0.7];',
    ]
    for task in config.tasks:
        kind, uses = kinds[task.name]
        fill, stroke = _COLOURS[kind]
        label = _dot_string(f"{task.name}\n{task.agent} · {uses}")
        lines.append(
            f'  {_dot_string(task.name)} [label={label}, fillcolor="{fill}", color="{stroke}"];'
        )
    for dep, name in config.edges():
        lines.append(f"  {_dot_string(dep)} -> {_dot_string(name)};")
    lines.append("}")
    return "\n".join(lines) + "\n"


def render_graph(config: PipelineConfig, fmt: str = "mermaid") -> str:
    """``to_mermaid`` or ``to_dot`` by name (the CLI's ``graph --format``)."""
    if fmt == "mermaid":
        return to_mermaid(config)
    if fmt == "dot":
        return to_dot(config)
    raise ValueError(f"unknown graph format {fmt!r}; expected one of: {', '.join(GRAPH_FORMATS)}")
