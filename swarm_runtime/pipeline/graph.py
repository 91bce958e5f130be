"""Text drawings of a pipeline's DAG: Mermaid (``flowchart``) and Graphviz DOT.

Nodes are tasks labelled with their agent and what it runs; edges follow the data
(``load --> clean``); nodes are coloured by kind (source, transform, analysis,
sink, user agent). With ``critical_path=True`` the longest chain under the tasks'
``estimate`` s is drawn in red (see :func:`estimated_critical_path`).
"""

from __future__ import annotations

import itertools
from collections.abc import Collection

from .config import PipelineConfig
from .critical_path import critical_path

__all__ = [
    "GRAPH_FORMATS",
    "estimated_critical_path",
    "render_graph",
    "to_dot",
    "to_mermaid",
]

_CRITICAL = "#dc2626"


def estimated_critical_path(config: PipelineConfig) -> list[str]:
    """The pipeline's longest chain under its tasks' ``estimate`` s; a task without one
    counts as the mean estimate of its agent's other tasks, else of all tasks, else 1 s
    (with no estimate at all: the chain with the most tasks)."""
    given: dict[str, list[float]] = {}
    for task in config.tasks:
        if task.estimate is not None:
            given.setdefault(task.agent, []).append(task.estimate)
    every = [value for values in given.values() for value in values]
    default = sum(every) / len(every) if every else 1.0
    per_agent = {agent: sum(values) / len(values) for agent, values in given.items()}
    cost = {
        t.name: t.estimate if t.estimate is not None else per_agent.get(t.agent, default)
        for t in config.tasks
    }
    names = [t.name for t in config.tasks]
    deps = {t.name: tuple(d for d in t.depends_on if d in cost) for t in config.tasks}
    dependents: dict[str, list[str]] = {name: [] for name in names}
    for name, ds in deps.items():
        for dep in ds:
            dependents[dep].append(name)
    path, _ = critical_path(names, deps, dependents, cost.__getitem__)
    return path


def _critical_edges(path: Collection[str]) -> set[tuple[str, str]]:
    return set(itertools.pairwise(list(path)))


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


def to_mermaid(
    config: PipelineConfig, *, direction: str = "LR", critical: Collection[str] = ()
) -> str:
    """A Mermaid ``flowchart`` of the pipeline (paste into Markdown or mermaid.live);
    the tasks of ``critical`` (a chain) and the edges between them drawn in red."""
    kinds = _kinds(config)
    ids = {task.name: f"t{i}" for i, task in enumerate(config.tasks)}
    lines = [f"flowchart {direction}", f"  %% pipeline: {_mermaid_text(config.name)}"]
    for task in config.tasks:
        kind, uses = kinds[task.name]
        detail = _mermaid_text(f"{task.agent} · {uses}")
        label = f"{_mermaid_text(task.name)}<br/><small>{detail}</small>"
        lines.append(f'  {ids[task.name]}["{label}"]:::{kind}')
    on_path = _critical_edges(critical)
    links: list[int] = []  # Mermaid numbers links in the order they are written
    written = 0
    for dep, name in config.edges():
        if dep in ids:
            if (dep, name) in on_path:
                links.append(written)
            lines.append(f"  {ids[dep]} --> {ids[name]}")
            written += 1
    for kind, (fill, stroke) in _COLOURS.items():
        lines.append(f"  classDef {kind} fill:{fill},stroke:{stroke},color:#0f172a")
    if critical:
        lines.append(f"  classDef critical stroke:{_CRITICAL},stroke-width:3px")
        lines.append(f"  class {','.join(ids[n] for n in critical if n in ids)} critical")
        if links:
            numbers = ",".join(map(str, links))
            lines.append(f"  linkStyle {numbers} stroke:{_CRITICAL},stroke-width:3px")
    return "\n".join(lines) + "\n"


def _dot_string(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


def to_dot(config: PipelineConfig, *, direction: str = "LR", critical: Collection[str] = ()) -> str:
    """A Graphviz DOT ``digraph`` of the pipeline (render with ``dot -Tsvg``); the tasks
    of ``critical`` (a chain) and the edges between them drawn in red."""
    kinds = _kinds(config)
    on_path = _critical_edges(critical)
    marked = set(critical)
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
        if task.name in marked:
            stroke = f'{_CRITICAL}", penwidth="3'
        lines.append(
            f'  {_dot_string(task.name)} [label={label}, fillcolor="{fill}", color="{stroke}"];'
        )
    for dep, name in config.edges():
        style = f' [color="{_CRITICAL}", penwidth=3]' if (dep, name) in on_path else ""
        lines.append(f"  {_dot_string(dep)} -> {_dot_string(name)}{style};")
    lines.append("}")
    return "\n".join(lines) + "\n"


def render_graph(
    config: PipelineConfig, fmt: str = "mermaid", *, critical_path: bool = False
) -> str:
    """``to_mermaid`` or ``to_dot`` by name (the CLI's ``graph --format``), with the
    estimated critical path marked if asked (``graph --critical-path``)."""
    critical = estimated_critical_path(config) if critical_path else ()
    if fmt == "mermaid":
        return to_mermaid(config, critical=critical)
    if fmt == "dot":
        return to_dot(config, critical=critical)
    raise ValueError(f"unknown graph format {fmt!r}; expected one of: {', '.join(GRAPH_FORMATS)}")
