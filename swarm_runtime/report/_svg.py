"""Inline SVG drawings for the HTML report: the DAG, the Gantt timeline, histograms.

Everything is laid out here (no JavaScript, no external library): the DAG by
topological level with a few barycentre sweeps to untangle edges, the timeline
with one lane per agent replica.
"""

from __future__ import annotations

import datetime as dt
import itertools
import math
from collections.abc import Sequence
from html import escape

from ._format import fmt_number, fmt_seconds
from ._style import STATUS_COLOURS
from .model import RunReport, TaskRecord

__all__ = [
    "MAX_DAG_NODES",
    "dag_levels",
    "dag_svg",
    "gantt_svg",
    "histogram_svg",
    "order_levels",
    "time_axis",
    "time_range",
]

MAX_DAG_NODES = 400
_NODE_H, _GAP_X, _GAP_Y, _PAD = 48, 64, 18, 16
_NAME_CHARS = 30  # longer names are cut (the full name is in the tooltip)


def _short(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def dag_levels(names: Sequence[str], edges: Sequence[tuple[str, str]]) -> dict[str, int]:
    """Longest-path level of each task (roots at 0); tasks in a cycle, if any, go last."""
    known = set(names)
    parents: dict[str, list[str]] = {n: [] for n in names}
    children: dict[str, list[str]] = {n: [] for n in names}
    for a, b in edges:
        if a in known and b in known and a != b:
            parents[b].append(a)
            children[a].append(b)
    missing = {n: len(parents[n]) for n in names}
    level = {n: 0 for n in names}
    stack = [n for n in names if missing[n] == 0]
    done: set[str] = set()
    while stack:
        node = stack.pop()
        done.add(node)
        for child in children[node]:
            level[child] = max(level[child], level[node] + 1)
            missing[child] -= 1
            if missing[child] == 0:
                stack.append(child)
    last = max(level.values(), default=0) + 1
    for n in names:
        if n not in done:
            level[n] = last
    return level


def order_levels(
    names: Sequence[str], edges: Sequence[tuple[str, str]], level: dict[str, int]
) -> list[list[str]]:
    """Tasks per level, ordered by barycentre sweeps to reduce edge crossings."""
    layers: list[list[str]] = [[] for _ in range(max(level.values(), default=-1) + 1)]
    for name in names:
        layers[level[name]].append(name)
    parents: dict[str, list[str]] = {n: [] for n in names}
    children: dict[str, list[str]] = {n: [] for n in names}
    for a, b in edges:
        if a in parents and b in parents and a != b:
            parents[b].append(a)
            children[a].append(b)
    position = {n: float(i) for layer in layers for i, n in enumerate(layer)}

    def sweep(indexes: range, neighbours: dict[str, list[str]]) -> None:
        for index in indexes:
            layer = layers[index]
            keys = {}
            for i, name in enumerate(layer):
                near = neighbours[name]
                keys[name] = sum(position[n] for n in near) / len(near) if near else float(i)
            layer.sort(key=lambda n: keys[n])
            for i, name in enumerate(layer):
                position[name] = float(i)

    for _ in range(3):
        sweep(range(1, len(layers)), parents)
        sweep(range(len(layers) - 2, -1, -1), children)
    return layers


def dag_svg(report: RunReport) -> str:
    """The DAG, left to right, nodes coloured by status (an empty string if too large)."""
    names = [t.name for t in report.tasks]
    if not names or len(names) > MAX_DAG_NODES:
        return ""
    records = {t.name: t for t in report.tasks}
    layers = order_levels(names, report.edges, dag_levels(names, report.edges))
    tallest = max(len(layer) for layer in layers)
    height = _PAD * 2 + tallest * _NODE_H + (tallest - 1) * _GAP_Y
    longest = max(len(_short(n, _NAME_CHARS)) for n in names)
    node_w = max(150, round(7.6 * longest) + 40)  # wide enough for the longest name
    width = _PAD * 2 + len(layers) * node_w + (len(layers) - 1) * _GAP_X
    centre: dict[str, tuple[float, float]] = {}
    for column, layer in enumerate(layers):
        span = len(layer) * _NODE_H + (len(layer) - 1) * _GAP_Y
        top = (height - span) / 2
        for row, name in enumerate(layer):
            centre[name] = (
                float(_PAD + column * (node_w + _GAP_X)),
                top + row * (_NODE_H + _GAP_Y),
            )
    parts = [
        f'<svg class="dag" width="{width}" height="{height}" viewBox="0 0 {width} {height}" '
        'role="img" aria-label="task graph">',
        '<defs><marker id="arrow" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="7" '
        'markerHeight="7" orient="auto-start-reverse"><path d="M 0 0 L 10 5 L 0 10 z" '
        'fill="#94a3b8"/></marker></defs>',
    ]
    for a, b in report.edges:
        if a not in centre or b not in centre:
            continue
        (ax, ay), (bx, by) = centre[a], centre[b]
        x1, y1 = ax + node_w, ay + _NODE_H / 2
        x2, y2 = bx - 2, by + _NODE_H / 2
        bend = max(24.0, (x2 - x1) / 2)
        parts.append(
            f'<path class="edge" d="M {x1:.1f} {y1:.1f} C {x1 + bend:.1f} {y1:.1f}, '
            f'{x2 - bend:.1f} {y2:.1f}, {x2:.1f} {y2:.1f}" marker-end="url(#arrow)">'
            f"<title>{escape(a)} → {escape(b)}</title></path>"
        )
    for name, (x, y) in centre.items():
        record = records[name]
        fill, stroke = STATUS_COLOURS.get(record.status, STATUS_COLOURS["pending"])
        dash = ' stroke-dasharray="5 3"' if record.status in ("skipped", "pending") else ""
        detail = record.agent
        if record.duration is not None:
            detail += f" · {fmt_seconds(record.duration)}"
        elif record.status != "completed":
            detail += f" · {record.status}"
        tip = f"{name} — {record.status} ({record.attempts} attempt(s)) on {record.lane}"
        parts.append(
            f'<g class="node {escape(record.status)}"><title>{escape(tip)}</title>'
            f'<rect x="{x:.1f}" y="{y:.1f}" width="{node_w}" height="{_NODE_H}" rx="9" '
            f'fill="{fill}" stroke="{stroke}"{dash}/>'
            f'<circle cx="{x + 14:.1f}" cy="{y + 17:.1f}" r="4.5" fill="{stroke}"/>'
            f'<text class="t" x="{x + 25:.1f}" y="{y + 21:.1f}">'
            f"{escape(_short(name, _NAME_CHARS))}</text>"
            f'<text class="d" x="{x + 12:.1f}" y="{y + 38:.1f}">'
            f"{escape(_short(detail, (node_w - 20) // 6))}</text>"
            "</g>"
        )
    parts.append("</svg>")
    return "".join(parts)


def _nice_step(span: float, target: int = 8) -> float:
    raw = span / target
    magnitude = 10.0 ** math.floor(math.log10(raw))
    for factor in (1.0, 2.0, 2.5, 5.0, 10.0):
        if raw <= factor * magnitude:
            return factor * magnitude
    return 10.0 * magnitude


def time_range(
    report: RunReport, ran: Sequence[TaskRecord]
) -> tuple[dt.datetime, dt.datetime, float]:
    """Start and end of the timeline (the run's, widened to every task's) and seconds."""
    starts = [t.started_at for t in ran if t.started_at is not None]
    t0 = min([*starts, *([report.started_at] if report.started_at else [])])
    ends = [t.finished_at for t in ran if t.finished_at is not None]
    t1 = max([*ends, *starts, *([report.finished_at] if report.finished_at else [])])
    return t0, t1, max((t1 - t0).total_seconds(), 1e-3)


def time_axis(span: float, *, left: float, width: float, top: float, bottom: float) -> str:
    """Vertical grid lines with their time labels, at round steps from 0 to ``span``."""
    parts = []
    step = _nice_step(span)
    tick = 0.0
    while tick <= span + step * 1e-9:
        x = left + tick / span * width
        parts.append(
            f'<line class="axis" x1="{x:.1f}" y1="{top - 6}" x2="{x:.1f}" y2="{bottom:.0f}"/>'
            f'<text class="tick" x="{x:.1f}" y="{top - 10}" text-anchor="middle">'
            f"{escape(fmt_seconds(tick, axis=True))}</text>"
        )
        tick += step
    return "".join(parts)


def _lane_key(record: TaskRecord, agent_order: dict[str, int]) -> tuple[int, int, str]:
    replica = record.replica
    number = replica if isinstance(replica, int) else -1
    return (agent_order[record.agent], number, str(replica))


def gantt_svg(report: RunReport, *, width: int = 1180) -> str:
    """One lane per agent replica, one bar per task attempt span (empty if nothing ran)."""
    ran = [t for t in report.tasks if t.started_at is not None]
    if not ran:
        return ""
    t0, t1, span = time_range(report, ran)
    agent_order: dict[str, int] = {}
    for record in report.tasks:
        agent_order.setdefault(record.agent, len(agent_order))
    lanes: dict[str, tuple[int, int, str]] = {}
    for record in ran:
        lanes.setdefault(record.lane, _lane_key(record, agent_order))
    ordered = sorted(lanes, key=lambda lane: lanes[lane])
    row = {lane: i for i, lane in enumerate(ordered)}
    label_w = min(260.0, max(120.0, 7.0 * max(len(lane) for lane in ordered) + 24))
    top, lane_h, bar_h = 28.0, 30.0, 20.0
    plot_w = width - label_w - 16
    height = top + len(ordered) * lane_h + 8

    def x_of(moment: dt.datetime) -> float:
        return label_w + (moment - t0).total_seconds() / span * plot_w

    parts = [
        f'<svg class="gantt" width="{width}" height="{height}" viewBox="0 0 {width} {height}" '
        'role="img" aria-label="timeline">'
    ]
    for lane, i in row.items():
        y = top + i * lane_h
        if i % 2 == 0:
            parts.append(
                f'<rect class="lane-bg" x="0" y="{y}" width="{width}" height="{lane_h}" rx="4"/>'
            )
        parts.append(
            f'<text class="lane" x="10" y="{y + lane_h / 2 + 4:.1f}">'
            f"{escape(_short(lane, int((label_w - 20) // 7)))}</text>"
        )
    parts.append(time_axis(span, left=label_w, width=plot_w, top=top, bottom=height - 4))
    next_start: dict[str, float] = {}  # where the next bar of the same lane begins
    by_lane: dict[str, list[TaskRecord]] = {}
    for record in ran:
        by_lane.setdefault(record.lane, []).append(record)
    for records in by_lane.values():
        records.sort(key=lambda r: r.started_at or t0)
        for here, after in itertools.pairwise(records):
            next_start[here.name] = x_of(after.started_at or t1)
    for record in ran:
        assert record.started_at is not None
        end = record.finished_at or t1
        x = x_of(record.started_at)
        w = max(3.0, x_of(end) - x)
        y = top + row[record.lane] * lane_h + (lane_h - bar_h) / 2
        fill, stroke = STATUS_COLOURS.get(record.status, STATUS_COLOURS["pending"])
        seconds = (end - record.started_at).total_seconds()
        tip = (
            f"{record.name} on {record.lane}: {record.status}, {fmt_seconds(seconds)}, "
            f"{record.attempts} attempt(s)"
        )
        parts.append(
            f'<g><title>{escape(tip)}</title><rect x="{x:.1f}" y="{y:.1f}" width="{w:.1f}" '
            f'height="{bar_h}" rx="4" fill="{fill}" stroke="{stroke}" stroke-width="1.4"/>'
        )
        label_w_px = 6.5 * len(record.name) + 12
        if w > label_w_px:
            label_x = x + 6
        elif x + w + label_w_px < min(float(width), next_start.get(record.name, width)):
            label_x = x + w + 5  # beside a short bar, if the lane is free there
        else:
            label_x = None
        if label_x is not None:
            parts.append(
                f'<text class="bar-label" x="{label_x:.1f}" y="{y + bar_h / 2 + 4:.1f}">'
                f"{escape(record.name)}</text>"
            )
        parts.append("</g>")
    parts.append("</svg>")
    return "".join(parts)


def histogram_svg(edges: Sequence[float], counts: Sequence[int], *, width: int = 300) -> str:
    """Bars of a histogram with its range underneath; an empty string if there is nothing."""
    if not counts or len(edges) != len(counts) + 1:
        return ""
    height, base, pad = 120.0, 100.0, 4.0
    tallest = max(max(counts), 1)
    bar_w = (width - 2 * pad) / len(counts)
    parts = [
        f'<svg class="hist" width="{width}" height="{height}" viewBox="0 0 {width} {height}" '
        'role="img" aria-label="histogram">',
        f'<line class="axis" x1="{pad}" y1="{base + 0.5}" x2="{width - pad}" y2="{base + 0.5}"/>',
    ]
    for i, count in enumerate(counts):
        h = (base - 8) * count / tallest
        x = pad + i * bar_w
        last = i == len(counts) - 1
        interval = f"[{fmt_number(edges[i])}, {fmt_number(edges[i + 1])}{']' if last else ')'}"
        parts.append(
            f'<rect class="hbar" x="{x + 0.75:.1f}" y="{base - h:.1f}" '
            f'width="{max(bar_w - 1.5, 1):.1f}" height="{h:.1f}" rx="1.5">'
            f"<title>{escape(interval)}: {count}</title></rect>"
        )
    parts.append(
        f'<text class="tick" x="{pad}" y="{height - 4}">{escape(fmt_number(edges[0]))}</text>'
        f'<text class="tick" x="{width - pad}" y="{height - 4}" text-anchor="end">'
        f"{escape(fmt_number(edges[-1]))}</text>"
        f'<text class="tick" x="{width / 2:.0f}" y="{height - 4}" text-anchor="middle">'
        f"peak {tallest}</text>"
    )
    parts.append("</svg>")
    return "".join(parts)
